#include "hamail/directory/ldap_connection.hpp"

#include <ldap.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>

#include "hamail/core/log.hpp"

namespace hamail::directory {

namespace {

using clock = ldap_connection::clock;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

timeval to_timeval(clock::duration d) {
  // A zero timeval means "poll" to libldap; never hand it less than a millisecond.
  const auto us = std::max<std::int64_t>(
      1000, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

/// libldap's TLS context set-up is not documented as thread-safe across handles.
std::mutex tls_context_mutex;

/// Scheme (lower case) and host of `uri`; nullopt when it is not an LDAP URL.
std::optional<std::pair<std::string, std::string>> scheme_and_host(const std::string& uri) {
  LDAPURLDesc* desc = nullptr;
  if (ldap_url_parse(uri.c_str(), &desc) != LDAP_URL_SUCCESS || desc == nullptr) {
    return std::nullopt;
  }
  std::pair<std::string, std::string> out{lower(desc->lud_scheme ? desc->lud_scheme : ""),
                                          desc->lud_host ? desc->lud_host : ""};
  ldap_free_urldesc(desc);
  return out;
}

/// libldap built with GnuTLS (Debian's) ignores LDAP_OPT_X_TLS_PROTOCOL_MIN: there the
/// TLS versions are set through the cipher-suite option, which is a GnuTLS priority
/// string. With OpenSSL, PROTOCOL_MIN works and this does nothing.
bool restrict_gnutls_versions(LDAP* ld) {
  char* package = nullptr;
  if (ldap_get_option(nullptr, LDAP_OPT_X_TLS_PACKAGE, &package) != LDAP_OPT_SUCCESS ||
      package == nullptr) {
    return true;
  }
  const bool gnutls = std::string_view(package) == "GnuTLS";
  ldap_memfree(package);
  if (!gnutls) return true;
  static const char* const priorities = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
  return ldap_set_option(ld, LDAP_OPT_X_TLS_CIPHER_SUITE, priorities) == LDAP_OPT_SUCCESS;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

/// libldap's LDAPMod array with the storage it points into.
class mod_array {
 public:
  mod_array(const std::vector<ldap_change>& changes, bool for_add) {
    mods_.reserve(changes.size());
    values_.reserve(changes.size());
    value_ptrs_.reserve(changes.size());
    for (const auto& c : changes) {
      auto& vals = values_.emplace_back();
      for (const auto& v : c.values) {
        vals.push_back(berval{static_cast<ber_len_t>(v.size()), const_cast<char*>(v.data())});
      }
      auto& ptrs = value_ptrs_.emplace_back();
      for (auto& b : vals) ptrs.push_back(&b);
      ptrs.push_back(nullptr);
      LDAPMod m{};
      int op = LDAP_MOD_REPLACE;
      if (for_add || c.op == ldap_change::operation::add) op = LDAP_MOD_ADD;
      if (!for_add && c.op == ldap_change::operation::remove) op = LDAP_MOD_DELETE;
      m.mod_op = op | LDAP_MOD_BVALUES;
      m.mod_type = const_cast<char*>(c.attribute.c_str());
      m.mod_bvalues = c.values.empty() ? nullptr : ptrs.data();
      mods_.push_back(m);
    }
    for (auto& m : mods_) mod_ptrs_.push_back(&m);
    mod_ptrs_.push_back(nullptr);
  }
  LDAPMod** get() { return mod_ptrs_.data(); }

 private:
  std::vector<std::vector<berval>> values_;
  std::vector<std::vector<berval*>> value_ptrs_;
  std::vector<LDAPMod> mods_;
  std::vector<LDAPMod*> mod_ptrs_;
};

const std::vector<std::string> no_values;

int to_ldap_scope(ldap_scope scope) {
  switch (scope) {
    case ldap_scope::base:
      return LDAP_SCOPE_BASE;
    case ldap_scope::one_level:
      return LDAP_SCOPE_ONELEVEL;
    case ldap_scope::subtree:
      break;
  }
  return LDAP_SCOPE_SUBTREE;
}

/// NULL-terminated attribute list for libldap; empty `attributes` asks for all.
std::vector<char*> attribute_list(const std::vector<std::string>& attributes) {
  std::vector<char*> attrs;
  for (const auto& a : attributes) attrs.push_back(const_cast<char*>(a.c_str()));
  attrs.push_back(nullptr);
  return attrs;
}

void read_entries(LDAP* ld, LDAPMessage* answer, std::vector<ldap_entry>& out) {
  for (LDAPMessage* e = ldap_first_entry(ld, answer); e != nullptr; e = ldap_next_entry(ld, e)) {
    ldap_entry entry;
    if (char* dn = ldap_get_dn(ld, e)) {
      entry.dn = dn;
      ldap_memfree(dn);
    }
    BerElement* ber = nullptr;
    for (char* name = ldap_first_attribute(ld, e, &ber); name != nullptr;
         name = ldap_next_attribute(ld, e, ber)) {
      auto& list = entry.attributes[lower(name)];
      if (berval** values = ldap_get_values_len(ld, e, name)) {
        for (berval** v = values; *v != nullptr; ++v) list.emplace_back((*v)->bv_val, (*v)->bv_len);
        ldap_value_free_len(values);
      }
      ldap_memfree(name);
    }
    if (ber != nullptr) ber_free(ber, 0);
    out.push_back(std::move(entry));
  }
}

using message_ptr = std::unique_ptr<LDAPMessage, int (*)(LDAPMessage*)>;

}  // namespace

ldap_failure_kind classify_ldap_result(int code, bool is_bind) noexcept {
  switch (code) {
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
    case LDAP_TIMEOUT:
    case LDAP_UNAVAILABLE:
    case LDAP_BUSY:
    case LDAP_TIMELIMIT_EXCEEDED:
    case LDAP_LOCAL_ERROR:
      return ldap_failure_kind::temporary;
    case LDAP_INVALID_CREDENTIALS:
    case LDAP_INAPPROPRIATE_AUTH:
    case LDAP_INSUFFICIENT_ACCESS:
      return is_bind ? ldap_failure_kind::bind_rejected : ldap_failure_kind::permanent;
    case LDAP_CONFIDENTIALITY_REQUIRED:
      return is_bind ? ldap_failure_kind::plaintext_refused : ldap_failure_kind::permanent;
    default:
      return ldap_failure_kind::permanent;
  }
}

bool ldap_failure::no_such_object() const noexcept { return code == LDAP_NO_SUCH_OBJECT; }
bool ldap_failure::already_exists() const noexcept {
  return code == LDAP_ALREADY_EXISTS || code == LDAP_TYPE_OR_VALUE_EXISTS;
}
bool ldap_failure::size_limit_exceeded() const noexcept { return code == LDAP_SIZELIMIT_EXCEEDED; }

const std::vector<std::string>& ldap_entry::values(std::string_view attribute) const {
  const auto it = attributes.find(lower(attribute));
  return it == attributes.end() ? no_values : it->second;
}

std::string ldap_entry::first(std::string_view attribute) const {
  const auto& v = values(attribute);
  return v.empty() ? std::string() : v.front();
}

bool ldap_entry::has(std::string_view attribute) const { return !values(attribute).empty(); }

result<std::string> read_secret_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return error::permanent(
        errc::config_error, "invalid configuration",
        "cannot read bind_secret_file " + path.string() + ": " + std::strerror(errno));
  }
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    return error::permanent(errc::config_error, "invalid configuration",
                            "bind_secret_file " + path.string() + " is empty");
  }
  if (secret.find_first_of("\r\n") != std::string::npos) {
    return error::permanent(errc::config_error, "invalid configuration",
                            "bind_secret_file " + path.string() +
                                " holds more than one line (the password is one line)");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    log::warning("bind_secret_file {} is accessible to group or others; chmod 0600 it",
                 path.string());
  }
  return secret;
}

ldap_connection::~ldap_connection() { close(); }

void ldap_connection::close() noexcept {
  if (ld_ != nullptr) ldap_unbind_ext(ld_, nullptr, nullptr);
  ld_ = nullptr;
  uri_.clear();
}

ldap_failure ldap_connection::fail(int code, std::string_view what, bool is_bind) const {
  std::string text(what);
  text += ": ";
  text += ldap_err2string(code);
  char* diagnostic = nullptr;
  if (ld_ != nullptr && ldap_get_option(ld_, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diagnostic) == 0 &&
      diagnostic != nullptr) {
    if (*diagnostic != '\0') {
      text += " (";
      text += diagnostic;
      text += ")";
    }
    ldap_memfree(diagnostic);
  }
  return ldap_failure{code, classify_ldap_result(code, is_bind), std::move(text)};
}

std::optional<ldap_failure> ldap_connection::open(const ldap_connection_settings& s,
                                                  std::size_t index, clock::duration budget,
                                                  std::string_view dn, std::string_view password) {
  close();
  const std::string& uri = s.uris.at(index);
  const auto parsed = scheme_and_host(uri);
  if (!parsed) {
    return ldap_failure{LDAP_PARAM_ERROR, ldap_failure_kind::permanent, "not an LDAP URI: " + uri};
  }
  const auto& [scheme, host] = *parsed;
  if (scheme != "ldap" && scheme != "ldaps" && scheme != "ldapi") {
    return ldap_failure{LDAP_PARAM_ERROR, ldap_failure_kind::permanent,
                        "not an ldap://, ldaps:// or ldapi:// URI: " + uri};
  }
  const bool tls = scheme == "ldaps";
  const bool local = scheme == "ldapi" || is_loopback(host);
  const bool use_starttls = s.starttls && scheme == "ldap";
  if (!password.empty() && !tls && !use_starttls && !local && !s.allow_plaintext_bind) {
    return ldap_failure{LDAP_CONFIDENTIALITY_REQUIRED, ldap_failure_kind::plaintext_refused,
                        "refusing to send a password in plaintext to " + uri +
                            ": use StartTLS, ldaps://, or allow plaintext binds"};
  }
  LDAP* ld = nullptr;
  int rc = ldap_initialize(&ld, uri.c_str());
  if (rc != LDAP_SUCCESS || ld == nullptr) {
    return ldap_failure{rc, ldap_failure_kind::permanent,
                        uri + ": ldap_initialize: " + ldap_err2string(rc)};
  }
  ld_ = ld;  // close() frees it on every failure below
  uri_ = uri;

  const int version = LDAP_VERSION3;
  const timeval tv = to_timeval(budget);
  // Keep-alive probes find a dead peer behind an idle pooled connection.
  const int keepalive_idle = 60;
  const int keepalive_probes = 3;
  const int keepalive_interval = 10;
  if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_IDLE, &keepalive_idle) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_PROBES, &keepalive_probes) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_INTERVAL, &keepalive_interval) != LDAP_OPT_SUCCESS) {
    close();
    return ldap_failure{LDAP_LOCAL_ERROR, ldap_failure_kind::temporary,
                        "cannot set libldap options for " + uri};
  }
  if (tls || use_starttls) {
    const int require = LDAP_OPT_X_TLS_DEMAND;
    const int min_version = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
    const int is_server = 0;
    std::lock_guard lock(tls_context_mutex);
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min_version) != LDAP_OPT_SUCCESS ||
        !restrict_gnutls_versions(ld) ||
        (!s.ca_file.empty() &&
         ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, s.ca_file.c_str()) != LDAP_OPT_SUCCESS) ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server) != LDAP_OPT_SUCCESS) {
      close();
      return ldap_failure{LDAP_LOCAL_ERROR, ldap_failure_kind::permanent,
                          "cannot set up TLS for " + uri +
                              (s.ca_file.empty() ? "" : " (ca_file " + s.ca_file + ")")};
    }
  }
  if (use_starttls) {
    rc = ldap_start_tls_s(ld, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) {
      // A refused StartTLS or a failed handshake: this server cannot be used.
      auto f = fail(rc, "StartTLS with " + uri);
      f.kind = ldap_failure_kind::temporary;
      close();
      return f;
    }
  }
  berval credentials{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
  const std::string bind_dn(dn);
  rc = ldap_sasl_bind_s(ld, bind_dn.empty() ? nullptr : bind_dn.c_str(), LDAP_SASL_SIMPLE,
                        &credentials, nullptr, nullptr, nullptr);
  if (rc != LDAP_SUCCESS) {
    auto f = fail(
        rc,
        "bind" + (bind_dn.empty() ? std::string(" (anonymous)") : " as " + bind_dn) + " at " + uri,
        true);
    close();
    return f;
  }
  server_ = index;
  opened_at_ = clock::now();
  return std::nullopt;
}

std::optional<ldap_failure> ldap_connection::open_first(
    const ldap_connection_settings& s, const std::vector<std::size_t>& order,
    clock::time_point deadline, std::string_view dn, std::string_view password,
    const std::function<void(std::size_t, const ldap_failure&)>& on_failure) {
  // A plain value and a flag rather than std::optional: GCC 12 at -O2 warns
  // (maybe-uninitialized) about the optional's payload after the move below.
  ldap_failure last;
  bool have_last = false;
  std::string failures;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const auto now = clock::now();
    if (now >= deadline) {
      last = ldap_failure{LDAP_TIMEOUT, ldap_failure_kind::temporary,
                          "no time left to try " + s.uris.at(order[k])};
      have_last = true;
      if (!failures.empty()) failures += "; ";
      failures += last.text;
      break;
    }
    const auto budget = (deadline - now) / static_cast<int>(order.size() - k);
    auto f = open(s, order[k], budget, dn, password);
    if (!f) return std::nullopt;
    if (on_failure) on_failure(order[k], *f);
    if (!failures.empty()) failures += "; ";
    failures += f->text;
    last = std::move(*f);
    have_last = true;
    if (last.kind == ldap_failure_kind::bind_rejected) break;
  }
  if (!have_last) {
    return ldap_failure{LDAP_PARAM_ERROR, ldap_failure_kind::permanent,
                        "no LDAP server configured"};
  }
  last.text = std::move(failures);
  return last;
}

std::optional<ldap_failure> ldap_connection::search(const std::string& base, ldap_scope scope,
                                                    const std::string& filter,
                                                    const std::vector<std::string>& attributes,
                                                    clock::duration budget, std::size_t size_limit,
                                                    std::vector<ldap_entry>& out) {
  if (ld_ == nullptr) {
    return ldap_failure{LDAP_SERVER_DOWN, ldap_failure_kind::temporary, "not connected"};
  }
  auto attrs = attribute_list(attributes);
  timeval tv = to_timeval(budget);
  LDAPMessage* answer = nullptr;
  const int rc = ldap_search_ext_s(
      ld_, base.c_str(), to_ldap_scope(scope), filter.c_str(), attrs.data(), 0, nullptr, nullptr,
      &tv, size_limit == 0 ? LDAP_NO_LIMIT : static_cast<int>(size_limit), &answer);
  message_ptr guard(answer, ldap_msgfree);
  if (answer != nullptr) read_entries(ld_, answer, out);
  if (rc != LDAP_SUCCESS) return fail(rc, "search " + filter + " under " + base + " at " + uri_);
  return std::nullopt;
}

std::optional<ldap_failure> ldap_connection::paged_search(
    const std::string& base, ldap_scope scope, const std::string& filter,
    const std::vector<std::string>& attributes, clock::duration budget, std::size_t page_size,
    std::vector<ldap_entry>& out) {
  if (ld_ == nullptr) {
    return ldap_failure{LDAP_SERVER_DOWN, ldap_failure_kind::temporary, "not connected"};
  }
  auto attrs = attribute_list(attributes);
  const std::string what = "search " + filter + " under " + base + " at " + uri_;
  berval cookie{0, nullptr};
  const auto free_cookie = [&cookie] {
    if (cookie.bv_val != nullptr) ber_memfree(cookie.bv_val);
    cookie = berval{0, nullptr};
  };
  for (;;) {
    LDAPControl* page = nullptr;
    int rc = ldap_create_page_control(ld_, static_cast<ber_int_t>(page_size),
                                      cookie.bv_val != nullptr ? &cookie : nullptr, 0, &page);
    free_cookie();
    if (rc != LDAP_SUCCESS) return fail(rc, what);
    LDAPControl* server_controls[] = {page, nullptr};
    timeval tv = to_timeval(budget);
    LDAPMessage* answer = nullptr;
    rc = ldap_search_ext_s(ld_, base.c_str(), to_ldap_scope(scope), filter.c_str(), attrs.data(), 0,
                           server_controls, nullptr, &tv, LDAP_NO_LIMIT, &answer);
    ldap_control_free(page);
    message_ptr guard(answer, ldap_msgfree);
    if (rc == LDAP_NO_SUCH_OBJECT) return std::nullopt;
    if (rc != LDAP_SUCCESS) return fail(rc, what);
    read_entries(ld_, answer, out);

    LDAPControl** controls = nullptr;
    int err = LDAP_SUCCESS;
    rc = ldap_parse_result(ld_, answer, &err, nullptr, nullptr, nullptr, &controls, 0);
    if (rc != LDAP_SUCCESS) return fail(rc, what);
    std::unique_ptr<LDAPControl*, void (*)(LDAPControl**)> controls_guard(controls,
                                                                          ldap_controls_free);
    LDAPControl* response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls, nullptr);
    if (response == nullptr) return std::nullopt;  // the server sent everything at once
    ber_int_t estimate = 0;
    rc = ldap_parse_pageresponse_control(ld_, response, &estimate, &cookie);
    if (rc != LDAP_SUCCESS) return fail(rc, what);
    if (cookie.bv_val == nullptr || cookie.bv_len == 0) {
      free_cookie();
      return std::nullopt;
    }
  }
}

std::optional<ldap_failure> ldap_connection::add(const std::string& dn,
                                                 const std::vector<ldap_change>& attributes,
                                                 clock::duration budget) {
  if (ld_ == nullptr) {
    return ldap_failure{LDAP_SERVER_DOWN, ldap_failure_kind::temporary, "not connected"};
  }
  const timeval tv = to_timeval(budget);
  ldap_set_option(ld_, LDAP_OPT_TIMEOUT, &tv);
  mod_array mods(attributes, true);
  const int rc = ldap_add_ext_s(ld_, dn.c_str(), mods.get(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return fail(rc, "add " + dn + " at " + uri_);
  return std::nullopt;
}

std::optional<ldap_failure> ldap_connection::modify(const std::string& dn,
                                                    const std::vector<ldap_change>& changes,
                                                    clock::duration budget) {
  if (ld_ == nullptr) {
    return ldap_failure{LDAP_SERVER_DOWN, ldap_failure_kind::temporary, "not connected"};
  }
  const timeval tv = to_timeval(budget);
  ldap_set_option(ld_, LDAP_OPT_TIMEOUT, &tv);
  mod_array mods(changes, false);
  const int rc = ldap_modify_ext_s(ld_, dn.c_str(), mods.get(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return fail(rc, "modify " + dn + " at " + uri_);
  return std::nullopt;
}

std::optional<ldap_failure> ldap_connection::remove(const std::string& dn, clock::duration budget) {
  if (ld_ == nullptr) {
    return ldap_failure{LDAP_SERVER_DOWN, ldap_failure_kind::temporary, "not connected"};
  }
  const timeval tv = to_timeval(budget);
  ldap_set_option(ld_, LDAP_OPT_TIMEOUT, &tv);
  const int rc = ldap_delete_ext_s(ld_, dn.c_str(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return fail(rc, "delete " + dn + " at " + uri_);
  return std::nullopt;
}

}  // namespace hamail::directory

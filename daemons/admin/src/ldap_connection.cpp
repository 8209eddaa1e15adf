#include "hamail/admin/ldap_connection.hpp"

#include <ldap.h>

#include <cstring>
#include <memory>

#include "hamail/admin/errors.hpp"
#include "hamail/admin/validate.hpp"

namespace hamail::admin {
namespace {

constexpr int page_size = 500;

bool is_connection_failure(int rc) noexcept {
  return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
         rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_TIMELIMIT_EXCEEDED;
}

std::string diagnostic(LDAP* ld) {
  char* msg = nullptr;
  if (ld == nullptr || ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) != LDAP_OPT_SUCCESS ||
      msg == nullptr) {
    return {};
  }
  std::string text(msg);
  ldap_memfree(msg);
  return text;
}

std::string describe(LDAP* ld, int rc) {
  std::string text = ldap_err2string(rc);
  const std::string diag = diagnostic(ld);
  if (!diag.empty()) text += " (" + diag + ")";
  return text;
}

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

/// Scheme and host of `uri`: "ldap", "ldaps" or "ldapi", and the host name.
std::pair<std::string, std::string> scheme_and_host(const std::string& uri) {
  LDAPURLDesc* desc = nullptr;
  if (ldap_url_parse(uri.c_str(), &desc) != LDAP_URL_SUCCESS || desc == nullptr) return {};
  std::pair<std::string, std::string> out{lower_ascii(desc->lud_scheme ? desc->lud_scheme : ""),
                                          desc->lud_host ? desc->lud_host : ""};
  ldap_free_urldesc(desc);
  return out;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

/// libldap's LDAPMod array with the storage it points into.
class mod_array {
 public:
  mod_array(const std::vector<attribute_change>& changes, bool for_add) {
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
      if (for_add || c.op == attribute_change::operation::add) op = LDAP_MOD_ADD;
      if (!for_add && c.op == attribute_change::operation::remove) op = LDAP_MOD_DELETE;
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

struct ldap_closer {
  void operator()(LDAP* ld) const noexcept { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};

}  // namespace

const std::vector<std::string>& ldap_entry::values(std::string_view attribute) const {
  const auto it = values_.find(lower_ascii(attribute));
  return it == values_.end() ? no_values : it->second;
}

std::string ldap_entry::first(std::string_view attribute) const {
  const auto& v = values(attribute);
  return v.empty() ? std::string() : v.front();
}

bool ldap_entry::has(std::string_view attribute) const { return !values(attribute).empty(); }

directory_connection::directory_connection(connection_settings settings)
    : settings_(std::move(settings)), timeout_ms_(static_cast<int>(settings_.timeout.count())) {}

void directory_connection::connect() {
  if (ld_ != nullptr) return;
  const connection_settings& settings = settings_;
  std::string secret;
  if (!settings.bind_dn.empty()) secret = read_secret_file(settings.bind_secret_file);
  std::vector<std::string> failures;
  for (const auto& uri : settings.uris) {
    const auto [scheme, host] = scheme_and_host(uri);
    if (scheme != "ldap" && scheme != "ldaps" && scheme != "ldapi") {
      throw admin_error(exit_status::invalid_input, "not an LDAP URI: " + uri);
    }
    LDAP* ld = nullptr;
    int rc = ldap_initialize(&ld, uri.c_str());
    if (rc != LDAP_SUCCESS) {
      throw admin_error(exit_status::invalid_input, uri + ": " + ldap_err2string(rc));
    }
    std::unique_ptr<LDAP, ldap_closer> handle(ld);
    const int version = LDAP_VERSION3;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    const timeval tv = to_timeval(timeout_ms_);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    const int demand = LDAP_OPT_X_TLS_DEMAND;
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
    if (!settings.ca_file.empty()) {
      ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, settings.ca_file.c_str());
    }
    const int is_server = 0;
    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server);

    bool encrypted = scheme != "ldap";
    if (settings.starttls && scheme == "ldap") {
      rc = ldap_start_tls_s(ld, nullptr, nullptr);
      if (rc != LDAP_SUCCESS) {
        failures.push_back(uri + ": StartTLS failed: " + describe(ld, rc));
        continue;
      }
      encrypted = true;
    }
    if (!settings.bind_dn.empty() && !encrypted && !is_loopback(host) &&
        !settings.allow_plaintext) {
      throw admin_error(exit_status::config_error,
                        uri +
                            ": refusing to send the bind password unencrypted; use StartTLS "
                            "(--starttls), ldaps://, or set allow_plaintext = true in [ldap]");
    }
    berval cred{static_cast<ber_len_t>(secret.size()), secret.data()};
    rc = ldap_sasl_bind_s(ld, settings.bind_dn.empty() ? nullptr : settings.bind_dn.c_str(),
                          LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
    if (rc == LDAP_SUCCESS) {
      ld_ = handle.release();
      uri_ = uri;
      return;
    }
    if (is_connection_failure(rc)) {
      failures.push_back(uri + ": " + describe(ld, rc));
      continue;
    }
    throw admin_error(exit_status::ldap_error,
                      uri + ": bind as " +
                          (settings.bind_dn.empty() ? std::string("anonymous") : settings.bind_dn) +
                          " refused: " + describe(ld, rc));
  }
  std::string message = "no directory server could be reached:";
  for (const auto& f : failures) message += "\n  " + f;
  throw admin_error(exit_status::unreachable, message);
}

directory_connection::~directory_connection() {
  if (ld_ != nullptr) ldap_unbind_ext_s(ld_, nullptr, nullptr);
}

void directory_connection::fail(int rc, const std::string& what) const {
  const std::string text = what + ": " + describe(ld_, rc);
  if (is_connection_failure(rc)) throw admin_error(exit_status::unreachable, text);
  if (rc == LDAP_NO_SUCH_OBJECT) throw admin_error(exit_status::not_found, text);
  if (rc == LDAP_ALREADY_EXISTS || rc == LDAP_TYPE_OR_VALUE_EXISTS) {
    throw admin_error(exit_status::conflict, text);
  }
  throw admin_error(exit_status::ldap_error, text);
}

std::vector<ldap_entry> directory_connection::search(const std::string& base, search_scope scope,
                                                     const std::string& filter,
                                                     const std::vector<std::string>& attributes) {
  connect();
  int ldap_scope = LDAP_SCOPE_SUBTREE;
  if (scope == search_scope::base) ldap_scope = LDAP_SCOPE_BASE;
  if (scope == search_scope::one_level) ldap_scope = LDAP_SCOPE_ONELEVEL;
  std::vector<char*> attrs;
  for (const auto& a : attributes) attrs.push_back(const_cast<char*>(a.c_str()));
  attrs.push_back(nullptr);

  std::vector<ldap_entry> out;
  berval cookie{0, nullptr};
  timeval tv = to_timeval(timeout_ms_);
  while (true) {
    LDAPControl* page = nullptr;
    int rc = ldap_create_page_control(ld_, page_size, cookie.bv_val ? &cookie : nullptr, 0, &page);
    if (cookie.bv_val) ber_memfree(cookie.bv_val);
    cookie = berval{0, nullptr};
    if (rc != LDAP_SUCCESS) fail(rc, "search " + filter);
    LDAPControl* server_controls[] = {page, nullptr};
    LDAPMessage* res = nullptr;
    rc = ldap_search_ext_s(ld_, base.c_str(), ldap_scope, filter.c_str(), attrs.data(), 0,
                           server_controls, nullptr, &tv, LDAP_NO_LIMIT, &res);
    ldap_control_free(page);
    std::unique_ptr<LDAPMessage, int (*)(LDAPMessage*)> result(res, &ldap_msgfree);
    if (rc == LDAP_NO_SUCH_OBJECT) return out;
    if (rc != LDAP_SUCCESS) fail(rc, "search under " + base + " for " + filter);

    for (LDAPMessage* e = ldap_first_entry(ld_, res); e != nullptr; e = ldap_next_entry(ld_, e)) {
      ldap_entry entry;
      char* dn = ldap_get_dn(ld_, e);
      if (dn != nullptr) {
        entry.dn = dn;
        ldap_memfree(dn);
      }
      BerElement* ber = nullptr;
      for (char* a = ldap_first_attribute(ld_, e, &ber); a != nullptr;
           a = ldap_next_attribute(ld_, e, ber)) {
        auto& vals = entry.values_[lower_ascii(a)];
        berval** bvals = ldap_get_values_len(ld_, e, a);
        for (int i = 0; bvals != nullptr && bvals[i] != nullptr; ++i) {
          vals.emplace_back(bvals[i]->bv_val, bvals[i]->bv_len);
        }
        if (bvals != nullptr) ldap_value_free_len(bvals);
        ldap_memfree(a);
      }
      if (ber != nullptr) ber_free(ber, 0);
      out.push_back(std::move(entry));
    }

    LDAPControl** controls = nullptr;
    int err = LDAP_SUCCESS;
    rc = ldap_parse_result(ld_, res, &err, nullptr, nullptr, nullptr, &controls, 0);
    if (rc != LDAP_SUCCESS) fail(rc, "search under " + base);
    LDAPControl* response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls, nullptr);
    bool more = false;
    if (response != nullptr) {
      ber_int_t estimate = 0;
      if (ldap_parse_pageresponse_control(ld_, response, &estimate, &cookie) == LDAP_SUCCESS) {
        more = cookie.bv_val != nullptr && cookie.bv_len > 0;
      }
    }
    ldap_controls_free(controls);
    if (!more) {
      if (cookie.bv_val) ber_memfree(cookie.bv_val);
      return out;
    }
  }
}

std::optional<ldap_entry> directory_connection::read(const std::string& dn,
                                                     const std::vector<std::string>& attributes) {
  auto entries = search(dn, search_scope::base, "(objectClass=*)", attributes);
  if (entries.empty()) return std::nullopt;
  return std::move(entries.front());
}

void directory_connection::add(const std::string& dn,
                               const std::vector<attribute_change>& attributes) {
  connect();
  mod_array mods(attributes, true);
  const int rc = ldap_add_ext_s(ld_, dn.c_str(), mods.get(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) fail(rc, "add " + dn);
}

void directory_connection::modify(const std::string& dn,
                                  const std::vector<attribute_change>& changes) {
  connect();
  mod_array mods(changes, false);
  const int rc = ldap_modify_ext_s(ld_, dn.c_str(), mods.get(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) fail(rc, "modify " + dn);
}

void directory_connection::remove(const std::string& dn) {
  connect();
  const int rc = ldap_delete_ext_s(ld_, dn.c_str(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) fail(rc, "delete " + dn);
}

}  // namespace hamail::admin

#include <ldap.h>

#include <cctype>

#include "hamail/core/config.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "ldap_check.hpp"

namespace hamail::directory {

namespace detail {

std::optional<std::string> check_ldap_uri(const std::string& uri, ldap_uri_info& info) {
  if (uri.find_first_of(" \t,") != std::string::npos) {
    return "one server per URI: list several servers as several array elements";
  }
  LDAPURLDesc* desc = nullptr;
  if (ldap_url_parse(uri.c_str(), &desc) != LDAP_URL_SUCCESS || desc == nullptr) {
    return "not an LDAP URI (ldap://host:port, ldaps://host:port or ldapi://)";
  }
  std::string scheme = desc->lud_scheme != nullptr ? desc->lud_scheme : "";
  const std::string host = desc->lud_host != nullptr ? desc->lud_host : "";
  ldap_free_urldesc(desc);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "ldap" && scheme != "ldaps" && scheme != "ldapi") {
    return "scheme must be ldap, ldaps or ldapi";
  }
  if (scheme != "ldapi" && host.empty()) return "names no host";
  info.tls = scheme == "ldaps";
  info.local =
      scheme == "ldapi" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
  return std::nullopt;
}

std::optional<std::string> check_dn(const std::string& dn) {
  if (dn.empty()) return "is empty";
  LDAPDN parsed = nullptr;
  const int rc = ldap_str2dn(dn.c_str(), &parsed, LDAP_DN_FORMAT_LDAPV3);
  if (parsed != nullptr) ldap_dnfree(parsed);
  if (rc != LDAP_SUCCESS) return "not a valid DN (RFC 4514)";
  return std::nullopt;
}

}  // namespace detail

void read_ldap_settings(config::section& s, ldap_settings& out) {
  using std::chrono::milliseconds;
  if (const auto type = s.get_string("type", "ldap"); type != "ldap") {
    s.add_problem("type", "expected \"ldap\" here, found " + config::quote(type));
  }
  out.uris = s.get_string_list("uris");
  if (out.uris.empty() && !s.has("uris")) {
    s.add_problem("uris", "missing required key: list at least one server URI");
  } else if (out.uris.empty()) {
    s.add_problem("uris", "list at least one server URI");
  }
  for (const auto& uri : out.uris) {
    detail::ldap_uri_info info;
    if (auto why = detail::check_ldap_uri(uri, info)) {
      s.add_problem("uris", config::quote(uri) + ": " + *why);
    }
  }
  out.base_dn = s.require_string("base_dn");
  if (!out.base_dn.empty()) {
    if (auto why = detail::check_dn(out.base_dn)) s.add_problem("base_dn", *why);
  }
  out.bind_dn = s.get_string("bind_dn", "");
  if (!out.bind_dn.empty()) {
    if (auto why = detail::check_dn(out.bind_dn)) s.add_problem("bind_dn", *why);
  }
  out.bind_secret_file = s.get_string("bind_secret_file", "");
  if (!out.bind_dn.empty() && out.bind_secret_file.empty()) {
    s.add_problem("bind_secret_file", "required with bind_dn (the file holding its password)");
  }
  if (out.bind_dn.empty() && !out.bind_secret_file.empty()) {
    s.add_problem("bind_dn", "bind_secret_file is set but bind_dn is not");
  }
  if (!out.bind_secret_file.empty() && !out.bind_secret_file.is_absolute()) {
    s.add_problem("bind_secret_file", "must be an absolute path");
  }
  out.starttls = s.get_bool("starttls", out.starttls);
  out.ca_file = s.get_string("ca_file", "");
  if (!out.ca_file.empty() && !std::filesystem::path(out.ca_file).is_absolute()) {
    s.add_problem("ca_file", "must be an absolute path");
  }
  out.timeout = s.get_duration("timeout", out.timeout);
  if (out.timeout <= milliseconds::zero()) {
    s.add_problem("timeout", "must be more than 0");
    out.timeout = std::chrono::seconds(5);
  }
  out.pool_size = static_cast<std::size_t>(
      s.get_integer("pool_size", static_cast<std::int64_t>(out.pool_size), 1, 64));
  out.retry_interval = s.get_duration("retry_interval", out.retry_interval);
  out.allow_plaintext_bind = s.get_bool("allow_plaintext_bind", out.allow_plaintext_bind);
  out.cache.positive_ttl = s.get_duration("cache_ttl", out.cache.positive_ttl);
  out.cache.negative_ttl = s.get_duration("negative_cache_ttl", out.cache.negative_ttl);
  out.cache.max_entries = static_cast<std::size_t>(s.get_integer(
      "cache_size", static_cast<std::int64_t>(out.cache.max_entries), 0, 100'000'000));
  if (!out.bind_dn.empty() && !out.starttls && !out.allow_plaintext_bind) {
    for (const auto& uri : out.uris) {
      detail::ldap_uri_info info;
      if (!detail::check_ldap_uri(uri, info) && !info.tls && !info.local) {
        s.add_problem("uris", config::quote(uri) +
                                  " would carry the bind password in plaintext: use ldaps://, "
                                  "starttls = true, or allow_plaintext_bind = true");
      }
    }
  }
}

}  // namespace hamail::directory

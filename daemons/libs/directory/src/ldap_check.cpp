#include "ldap_check.hpp"

#include <ldap.h>

#include <cctype>

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

}  // namespace hamail::directory

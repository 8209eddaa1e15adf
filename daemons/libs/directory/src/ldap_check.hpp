#pragma once

#include <optional>
#include <string>

namespace hamail::directory::detail {

/// What a configured LDAP URI is, as far as hamail cares.
struct ldap_uri_info {
  bool tls = false;    ///< ldaps://
  bool local = false;  ///< ldapi:// or a loopback host
};

/// Parses one ldap://, ldaps:// or ldapi:// URI naming one server; on success
/// fills `info` and returns nullopt, else returns the reason for an operator.
std::optional<std::string> check_ldap_uri(const std::string& uri, ldap_uri_info& info);

/// Nullopt when `dn` is a valid LDAPv3 DN (RFC 4514), else the reason.
std::optional<std::string> check_dn(const std::string& dn);

}  // namespace hamail::directory::detail

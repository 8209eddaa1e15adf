#pragma once

// Putting values into LDAP filters and DNs, with libldap's own escaping: every value a
// user, client or peer supplies goes through one of these before it reaches the
// directory. No hand-written escaper.

#include <optional>
#include <string>
#include <string_view>

namespace hamail::directory {

/// `value` as an assertion value inside a search filter (RFC 4515), escaped by
/// libldap's ldap_bv2escaped_filter_value: '*', '(', ')', '\', NUL (and whatever
/// else libldap escapes) become "\hh". Any octets are accepted.
std::string escape_filter_value(std::string_view value);

/// The DN of the entry `attribute=value` directly under `parent` (e.g. "uid", "alice",
/// "ou=accounts,dc=example,dc=org"), built by libldap (an LDAPAVA joined to the parsed
/// parent, written by ldap_dn2bv in RFC 4514 form), so ',', '+', '"', '\', '<', '>',
/// ';', '=', a leading '#' or space and a trailing space in `value` are escaped.
/// Nullopt when `parent` is not a valid DN, `attribute` is empty or `value` is empty
/// or not valid UTF-8.
std::optional<std::string> make_child_dn(std::string_view attribute, std::string_view value,
                                         std::string_view parent);

/// The value of the first RDN's `attribute` in `dn` (unescaped, any case of the
/// attribute name), or nullopt when `dn` is not a valid DN or its first RDN has none.
std::optional<std::string> first_rdn_value(std::string_view dn, std::string_view attribute);

}  // namespace hamail::directory

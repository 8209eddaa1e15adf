#pragma once

#include <string>
#include <string_view>

namespace hamail::admin {

/// `value` escaped as an RFC 4515 filter assertion value: '*', '(', ')', '\',
/// NUL and other control bytes become "\hh". Use for every value put in a filter.
std::string escape_filter_value(std::string_view value);

/// `value` escaped as an RFC 4514 attribute value inside a DN: '"', '+', ',',
/// ';', '<', '>', '=', '\', a leading '#' or space and a trailing space get a
/// backslash; NUL and other control bytes become "\hh". Use for every value put in a DN.
std::string escape_dn_value(std::string_view value);

}  // namespace hamail::admin

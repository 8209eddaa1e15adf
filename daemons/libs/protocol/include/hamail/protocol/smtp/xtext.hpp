#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hamail::smtp {

/// Decodes RFC 3461 xtext ("+HH" escapes, printable ASCII otherwise, no "=");
/// returns the decoded octets, or nullopt when `text` is not xtext. Lower-case
/// hex digits are accepted: some clients send them and they are unambiguous.
std::optional<std::string> decode_xtext(std::string_view text);

/// Encodes octets as RFC 3461 xtext with upper-case "+HH" escapes; never fails.
std::string encode_xtext(std::string_view octets);

}  // namespace hamail::smtp

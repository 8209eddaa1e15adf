#pragma once

#include <string>
#include <string_view>

namespace hamail::directory {

/// `value` escaped for use as an assertion value inside an LDAP search filter
/// (RFC 4515): `*`, `(`, `)`, `\`, NUL, every other control character (0x01-0x1F,
/// 0x7F) and every byte that is not part of well-formed UTF-8 become `\XX` (two
/// upper-case hex digits); well-formed UTF-8 sequences pass unchanged. Every value a
/// user, client or peer supplies goes through this before it reaches a filter.
std::string escape_filter_value(std::string_view value);

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace hamail::directory

#pragma once

// The one UTF-8 validator and decoder of the tree (RFC 3629): SMTP's SMTPUTF8 checks,
// mailbox names, LDAP values and account data all use these.

#include <string_view>
#include <vector>

namespace hamail {

/// True when `text` is well-formed UTF-8 (RFC 3629 §4): no overlong forms, no
/// surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
/// ASCII, including NUL and control characters, is well-formed.
bool is_valid_utf8(std::string_view text) noexcept;

/// Appends the code points of `text` to `out`; false (with `out` partly filled) when
/// `text` is not well-formed UTF-8 by the rules of is_valid_utf8.
bool decode_utf8(std::string_view text, std::vector<char32_t>& out);

}  // namespace hamail

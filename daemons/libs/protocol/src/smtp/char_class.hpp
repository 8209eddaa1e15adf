#pragma once

// Character classes and small string helpers shared by the SMTP parsers.
// Internal: not part of the public headers.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hamail/core/utf8.hpp"

namespace hamail::smtp::detail {

/// True for an ASCII letter.
constexpr bool is_alpha(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
/// True for an ASCII decimal digit.
constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }
/// True for an ASCII hexadecimal digit of either case.
constexpr bool is_hex(unsigned char c) noexcept {
  return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}
/// Returns the value of a hex digit; only valid when is_hex(c).
constexpr unsigned hex_value(unsigned char c) noexcept {
  return is_digit(c) ? unsigned(c - '0') : unsigned((c | 0x20) - 'a' + 10);
}
/// True for a letter or digit (RFC 5321 Let-dig).
constexpr bool is_let_dig(unsigned char c) noexcept { return is_alpha(c) || is_digit(c); }
/// True for RFC 5322 atext (the ASCII part).
constexpr bool is_atext(unsigned char c) noexcept {
  if (is_let_dig(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}
/// True for a byte that is not ASCII (part of a UTF-8 sequence, if well formed).
constexpr bool is_non_ascii(unsigned char c) noexcept { return c >= 0x80; }
/// True for printable ASCII, SP excluded (VCHAR).
constexpr bool is_vchar(unsigned char c) noexcept { return c >= 0x21 && c <= 0x7e; }

/// Returns c in ASCII upper case.
constexpr char to_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
}

/// Case-insensitive ASCII comparison.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  }
  return true;
}
/// Case-insensitive ASCII prefix test.
constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

/// True when s holds only ASCII.
constexpr bool is_ascii(std::string_view s) noexcept {
  for (char c : s) {
    if (is_non_ascii(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

/// The tree's one UTF-8 validator (core/utf8.hpp): RFC 3629, no overlong forms, no
/// surrogates, nothing above U+10FFFF.
using hamail::is_valid_utf8;

/// Parses 1..20 decimal digits into a uint64; false on any other form or overflow.
constexpr bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 20) return false;
  std::uint64_t v = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!is_digit(c)) return false;
    const std::uint64_t d = c - '0';
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

/// Removes trailing SP and HTAB.
constexpr std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace hamail::smtp::detail

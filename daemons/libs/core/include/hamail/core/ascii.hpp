#pragma once

// ASCII case handling for protocol words (IMAP atoms, SMTP verbs, header
// field names): locale-independent, never touching octets above 0x7f.

#include <cstddef>
#include <string>
#include <string_view>

namespace hamail {

/// 'A'..'Z' to 'a'..'z'; every other octet unchanged.
constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}
/// 'a'..'z' to 'A'..'Z'; every other octet unchanged.
constexpr char ascii_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
}

/// True when `a` and `b` are equal ignoring ASCII case.
constexpr bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

/// True when `s` starts with `prefix`, ignoring ASCII case.
constexpr bool ascii_istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && ascii_iequals(s.substr(0, prefix.size()), prefix);
}

/// `s` with ASCII letters upper-cased.
inline std::string ascii_upper_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_upper(c);
  return out;
}

}  // namespace hamail

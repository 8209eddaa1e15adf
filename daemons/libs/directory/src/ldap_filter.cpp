#include "hamail/directory/ldap_filter.hpp"

#include <cstddef>
#include <cstdint>

namespace hamail::directory {

namespace {

/// Length of the well-formed UTF-8 sequence starting at `pos`, or 0 when the bytes
/// there are not one (RFC 3629 table of well-formed byte sequences).
std::size_t utf8_sequence_length(std::string_view s, std::size_t pos) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[pos + i]); };
  const auto in = [](std::uint8_t b, std::uint8_t lo, std::uint8_t hi) {
    return b >= lo && b <= hi;
  };
  const std::size_t left = s.size() - pos;
  const std::uint8_t b0 = byte(0);
  if (b0 < 0x80) return 1;
  if (in(b0, 0xC2, 0xDF)) return left >= 2 && in(byte(1), 0x80, 0xBF) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3) return 0;
    const std::uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
    const std::uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;  // no UTF-16 surrogates
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4) return 0;
    const std::uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;  // no overlong forms
    const std::uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF) ? 4 : 0;
  }
  return 0;  // 0x80-0xC1 (continuation or overlong lead) and 0xF5-0xFF never start one
}

void append_escaped(std::string& out, std::uint8_t b) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  out += '\\';
  out += hex[b >> 4];
  out += hex[b & 0x0F];
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t n = utf8_sequence_length(text, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

std::string escape_filter_value(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 8);
  for (std::size_t pos = 0; pos < value.size();) {
    const auto b = static_cast<std::uint8_t>(value[pos]);
    const std::size_t n = utf8_sequence_length(value, pos);
    if (n == 0) {
      append_escaped(out, b);  // not UTF-8: escape the byte, resynchronise on the next
      ++pos;
    } else if (n == 1) {
      const bool special = b == '*' || b == '(' || b == ')' || b == '\\' || b < 0x20 || b == 0x7F;
      if (special) {
        append_escaped(out, b);
      } else {
        out += static_cast<char>(b);
      }
      ++pos;
    } else {
      out.append(value.substr(pos, n));
      pos += n;
    }
  }
  return out;
}

}  // namespace hamail::directory

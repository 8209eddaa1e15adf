#include "char_class.hpp"
#include "hamail/protocol/smtp/xtext.hpp"

namespace hamail::smtp {

std::optional<std::string> decode_xtext(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '+') {
      if (text.size() - i < 3) return std::nullopt;
      const auto h = static_cast<unsigned char>(text[i + 1]);
      const auto l = static_cast<unsigned char>(text[i + 2]);
      if (!detail::is_hex(h) || !detail::is_hex(l)) return std::nullopt;
      out.push_back(static_cast<char>(detail::hex_value(h) * 16 + detail::hex_value(l)));
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e && c != '=') {
      out.push_back(static_cast<char>(c));
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string encode_xtext(std::string_view octets) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(octets.size());
  for (char ch : octets) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x21 && c <= 0x7e && c != '+' && c != '=') {
      out.push_back(ch);
    } else {
      out.push_back('+');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0x0f]);
    }
  }
  return out;
}

}  // namespace hamail::smtp

#include "hamail/admin/escape.hpp"

namespace hamail::admin {
namespace {

void append_hex(std::string& out, unsigned char c) {
  constexpr std::string_view hex = "0123456789abcdef";
  out += '\\';
  out += hex[c >> 4];
  out += hex[c & 0x0f];
}

}  // namespace

std::string escape_filter_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '*' || c == '(' || c == ')' || c == '\\' || u < 0x20 || u == 0x7f) {
      append_hex(out, u);
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_dn_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      append_hex(out, u);
      continue;
    }
    const bool special = c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' ||
                         c == '\\' || c == '=';
    const bool leading = i == 0 && (c == '#' || c == ' ');
    const bool trailing = i + 1 == value.size() && c == ' ';
    if (special || leading || trailing) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace hamail::admin

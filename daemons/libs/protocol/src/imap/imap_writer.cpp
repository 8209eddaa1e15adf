#include <cstdlib>

#include "hamail/core/utf8.hpp"
#include "hamail/protocol/imap/writer.hpp"

namespace hamail::imap {

namespace {

// RFC 3501 ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ].
constexpr bool is_atom_char(unsigned char c) noexcept {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case '(':
    case ')':
    case '{':
    case '%':
    case '*':
    case '"':
    case '\\':
    case ']':
      return false;
    default:
      return true;
  }
}

constexpr bool is_nil(std::string_view v) noexcept {
  return v.size() == 3 && (v[0] | 0x20) == 'n' && (v[1] | 0x20) == 'i' && (v[2] | 0x20) == 'l';
}

}  // namespace

bool can_quote(std::string_view value, const write_options& options) noexcept {
  if (value.size() > options.max_quoted) return false;
  bool eight_bit = false;
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r' || c == '\n' || c == 0) return false;
    if (c >= 0x80) eight_bit = true;
  }
  return !eight_bit || (options.utf8 && is_valid_utf8(value));
}

bool is_atom(std::string_view value) noexcept {
  if (value.empty() || is_nil(value)) return false;
  for (char c : value) {
    if (!is_atom_char(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool is_astring_atom(std::string_view value) noexcept {
  if (value.empty() || is_nil(value)) return false;
  for (char c : value) {
    if (c != ']' && !is_atom_char(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void append_number(std::string& out, std::uint64_t value) {
  char digits[20];
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) out.push_back(digits[--n]);
}

void append_literal_header(std::string& out, std::size_t size, bool binary) {
  if (binary) out.push_back('~');
  out.push_back('{');
  append_number(out, size);
  out.append("}\r\n");
}

void append_literal(std::string& out, std::string_view value, bool binary) {
  append_literal_header(out, value.size(), binary);
  out.append(value);
}

void append_string(std::string& out, std::string_view value, const write_options& options) {
  if (can_quote(value, options)) {
    out.reserve(out.size() + value.size() + 2);
    out.push_back('"');
    for (char c : value) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
    return;
  }
  // A NUL is only legal inside literal8. Without it the octets still go out
  // as a plain literal: the data is the client's, and dropping or rewriting it
  // would be worse than the RFC violation most clients tolerate.
  const bool binary = options.literal8 && value.find('\0') != std::string_view::npos;
  append_literal(out, value, binary);
}

void append_nstring(std::string& out, std::optional<std::string_view> value,
                    const write_options& options) {
  if (!value) {
    out.append("NIL");
    return;
  }
  append_string(out, *value, options);
}

void append_astring(std::string& out, std::string_view value, const write_options& options) {
  if (is_astring_atom(value)) {
    out.append(value);
    return;
  }
  append_string(out, value, options);
}

list_writer::list_writer(std::string& out, write_options options) : out_(out), options_(options) {
  out_.push_back('(');
  first_.push_back(true);
}

std::string& list_writer::separate() {
  if (first_.empty()) std::abort();  // writing after the outermost list was closed
  if (!first_.back()) out_.push_back(' ');
  first_.back() = false;
  return out_;
}

list_writer& list_writer::open() {
  separate().push_back('(');
  first_.push_back(true);
  return *this;
}

list_writer& list_writer::close() {
  if (first_.empty()) std::abort();
  first_.pop_back();
  out_.push_back(')');
  return *this;
}

list_writer& list_writer::atom(std::string_view value) {
  separate().append(value);
  return *this;
}

list_writer& list_writer::number(std::uint64_t value) {
  append_number(separate(), value);
  return *this;
}

list_writer& list_writer::string(std::string_view value) {
  append_string(separate(), value, options_);
  return *this;
}

list_writer& list_writer::nstring(std::optional<std::string_view> value) {
  append_nstring(separate(), value, options_);
  return *this;
}

list_writer& list_writer::astring(std::string_view value) {
  append_astring(separate(), value, options_);
  return *this;
}

list_writer& list_writer::nil() {
  separate().append("NIL");
  return *this;
}

list_writer& list_writer::raw(std::string_view wire) {
  separate().append(wire);
  return *this;
}

}  // namespace hamail::imap

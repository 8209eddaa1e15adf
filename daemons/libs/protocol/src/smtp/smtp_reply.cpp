#include <cassert>

#include "hamail/protocol/smtp/reply.hpp"

namespace hamail::smtp {
namespace {

std::string sanitise(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out.push_back(' ');  // CR and LF here would split the reply: never pass them
    } else if (c >= 0x80) {
      out.push_back('?');
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

void append_line(std::string& out, int code, std::string_view enhanced, std::string_view text,
                 bool last) {
  out += std::to_string(code);
  // "250\r\n" rather than "250 \r\n" when there is nothing to say; a 334
  // challenge keeps its space even when empty, as SASL clients expect.
  if (!last) {
    out.push_back('-');
  } else if (!enhanced.empty() || !text.empty() || code == 334) {
    out.push_back(' ');
  }
  if (!enhanced.empty()) {
    out += enhanced;
    if (!text.empty()) out.push_back(' ');
  }
  out += text;
  out += "\r\n";
}

// Splits text into pieces of at most `width` octets, preferring to break at a
// space (which is then dropped).
std::vector<std::string_view> wrap(std::string_view text, std::size_t width) {
  std::vector<std::string_view> pieces;
  while (text.size() > width) {
    auto cut = text.rfind(' ', width);
    if (cut == std::string_view::npos || cut == 0) {
      pieces.push_back(text.substr(0, width));
      text.remove_prefix(width);
    } else {
      pieces.push_back(text.substr(0, cut));
      text.remove_prefix(cut + 1);
    }
  }
  pieces.push_back(text);
  return pieces;
}

}  // namespace

reply::reply(int code, std::string_view enhanced) : code_(code), enhanced_(sanitise(enhanced)) {
  assert(code >= 200 && code <= 599);
}

reply::reply(const status_code& s) : reply(s.code, s.enhanced) {
  if (!s.text.empty()) add_line(s.text);
}

reply::reply(const status_code& s, std::string_view text) : reply(s.code, s.enhanced) {
  add_line(text);
}

reply& reply::add_line(std::string_view text) {
  lines_.push_back(sanitise(text));
  return *this;
}

void reply::append_wire(std::string& out) const {
  // "ddd-" + enhanced + " " + text + CRLF must fit in max_reply_line.
  const std::size_t overhead = 4 + (enhanced_.empty() ? 0 : enhanced_.size() + 1) + 2;
  const std::size_t width = max_reply_line > overhead + 1 ? max_reply_line - overhead : 1;
  std::vector<std::string_view> wire_lines;
  for (const auto& line : lines_) {
    for (auto piece : wrap(line, width)) wire_lines.push_back(piece);
  }
  if (wire_lines.empty()) wire_lines.emplace_back();
  for (std::size_t i = 0; i < wire_lines.size(); ++i) {
    append_line(out, code_, enhanced_, wire_lines[i], i + 1 == wire_lines.size());
  }
}

std::string reply::wire() const {
  std::string out;
  append_wire(out);
  return out;
}

reply ehlo_reply(std::string_view greeting, std::span<const std::string_view> extensions) {
  reply r(250);
  r.add_line(greeting);
  for (auto e : extensions) r.add_line(e);
  return r;
}

reply ehlo_reply(std::string_view greeting, std::initializer_list<std::string_view> extensions) {
  return ehlo_reply(greeting,
                    std::span<const std::string_view>(extensions.begin(), extensions.size()));
}

const status_code& status_for(parse_error code) noexcept {
  switch (code) {
    case parse_error::line_too_long:
      return status::line_too_long;
    case parse_error::bare_lf:
      return status::command_bare_lf;
    case parse_error::bare_cr:
      return status::command_bare_cr;
    case parse_error::unknown_command:
      return status::unknown_command;
    case parse_error::syntax:
      return status::syntax;
    case parse_error::bad_sender_address:
      return status::bad_sender_syntax;
    case parse_error::bad_recipient_address:
      return status::bad_recipient_syntax;
    case parse_error::utf8_not_permitted:
      return status::utf8_not_permitted;
    case parse_error::bad_parameter_syntax:
      return status::bad_parameter_syntax;
    case parse_error::unsupported_parameter:
      return status::unsupported_parameter;
    case parse_error::bad_base64:
      return status::bad_base64;
  }
  return status::syntax;
}

const status_code& status_for(data_status code) noexcept {
  switch (code) {
    case data_status::ok:
      return status::message_accepted;
    case data_status::bare_lf:
      return status::bare_lf;
    case data_status::bare_cr:
      return status::bare_cr;
    case data_status::too_big:
      return status::too_big;
    case data_status::line_too_long:
      return status::message_line_too_long;
  }
  return status::transaction_failed;
}

reply reply_for(const command_error& error) {
  const auto& s = status_for(error.code);
  return error.detail.empty() ? reply(s) : reply(s, error.detail);
}

}  // namespace hamail::smtp

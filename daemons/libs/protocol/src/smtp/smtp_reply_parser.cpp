#include <algorithm>

#include "char_class.hpp"
#include "hamail/protocol/smtp/reply_parser.hpp"

namespace hamail::smtp {

namespace {

// A line must hold at least "ddd" and CRLF; below that no reply fits.
constexpr std::size_t min_reply_line = 16;

// The length of an RFC 3463 enhanced code "c.sss.ddd" at the start of text
// whose class c matches the basic code's first digit, followed by a space or
// the end; 0 when there is none.
std::size_t enhanced_length(std::string_view text, int code) {
  if (text.size() < 5 || text[0] != static_cast<char>('0' + code / 100) || text[1] != '.') return 0;
  std::size_t i = 2;
  auto digits = [&](std::size_t max) {
    const std::size_t from = i;
    while (i < text.size() && detail::is_digit(static_cast<unsigned char>(text[i])) &&
           i - from < max)
      ++i;
    return i > from && (i == text.size() || !detail::is_digit(static_cast<unsigned char>(text[i])));
  };
  if (!digits(3) || i >= text.size() || text[i] != '.') return 0;
  ++i;
  if (!digits(3)) return 0;
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

}  // namespace

std::string server_reply::text() const {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += ' ';
    out += l;
  }
  return out;
}

std::string server_reply::describe() const {
  std::string out = std::to_string(code);
  if (!enhanced.empty()) out += ' ' + enhanced;
  const auto t = text();
  if (!t.empty()) out += ' ' + t;
  return out;
}

std::string_view to_string(reply_error e) noexcept {
  switch (e) {
    case reply_error::none:
      return "none";
    case reply_error::line_too_long:
      return "line_too_long";
    case reply_error::too_many_lines:
      return "too_many_lines";
    case reply_error::bad_syntax:
      return "bad_syntax";
    case reply_error::code_mismatch:
      return "code_mismatch";
    case reply_error::bare_lf:
      return "bare_lf";
    case reply_error::bare_cr:
      return "bare_cr";
  }
  return "unknown";
}

reply_parser::reply_parser(reply_limits limits)
    : limits_(limits),
      lines_reader_(line_limits{.max_line = std::max(limits.max_line, min_reply_line),
                                .max_extended_line = std::max(limits.max_line, min_reply_line),
                                .extended_prefix = {},
                                .bare_lf = limits.bare_lf}) {
  limits_.max_line = std::max(limits_.max_line, min_reply_line);
  limits_.max_lines = std::max<std::size_t>(limits_.max_lines, 1);
}

void reply_parser::reset() noexcept {
  lines_reader_.reset();
  current_ = {};
  lines_ = 0;
}

reply_step reply_parser::fail(std::size_t consumed, reply_error e) {
  current_ = {};
  lines_ = 0;
  return reply_step{consumed, parse_status::error, std::nullopt, e};
}

reply_step reply_parser::feed(std::string_view input) {
  std::size_t consumed = 0;
  for (;;) {
    const auto step = lines_reader_.feed(input.substr(consumed));
    consumed += step.consumed;
    if (step.status == parse_status::need_more) return reply_step{consumed};
    if (step.status == parse_status::error) {
      switch (step.error) {
        case line_error::line_too_long:
          return fail(consumed, reply_error::line_too_long);
        case line_error::bare_lf:
          return fail(consumed, reply_error::bare_lf);
        default:
          return fail(consumed, reply_error::bare_cr);
      }
    }

    // "ddd", "ddd text" (last line) or "ddd-text" (more follow).
    const std::string_view line = step.line;
    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        !detail::is_digit(static_cast<unsigned char>(line[2])) ||
        (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
      return fail(consumed, reply_error::bad_syntax);
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    const bool last = line.size() == 3 || line[3] == ' ';
    std::string_view text = line.size() > 3 ? line.substr(4) : std::string_view{};

    if (lines_ == 0) {
      current_.code = code;
      const auto n = enhanced_length(text, code);
      if (n > 0) {
        current_.enhanced.assign(text.substr(0, n));
        text.remove_prefix(std::min(n + 1, text.size()));
      }
    } else {
      if (code != current_.code) return fail(consumed, reply_error::code_mismatch);
      // Servers repeat the enhanced code on every line; keep the text only.
      if (!current_.enhanced.empty() &&
          text.substr(0, current_.enhanced.size()) == current_.enhanced &&
          (text.size() == current_.enhanced.size() || text[current_.enhanced.size()] == ' '))
        text.remove_prefix(std::min(current_.enhanced.size() + 1, text.size()));
    }
    if (!last && lines_ + 1 >= limits_.max_lines)
      return fail(consumed, reply_error::too_many_lines);
    current_.lines.emplace_back(text);
    ++lines_;
    if (last) {
      reply_step out{consumed, parse_status::complete, std::move(current_), reply_error::none};
      current_ = {};
      lines_ = 0;
      return out;
    }
    if (consumed == input.size()) return reply_step{consumed};
  }
}

}  // namespace hamail::smtp

#include <algorithm>
#include <cstring>

#include "char_class.hpp"
#include "hamail/protocol/smtp/line_reader.hpp"

namespace hamail::smtp {

namespace {
// Below this a limit cannot hold a command; clamping also keeps the extended
// prefix shorter than every limit, which limit_for relies on.
constexpr std::size_t min_line_limit = 16;
constexpr std::size_t max_prefix = 15;
}  // namespace

line_reader::line_reader(line_limits limits) : limits_(limits) {
  limits_.max_line = std::max(limits_.max_line, min_line_limit);
  limits_.max_extended_line = std::max(limits_.max_extended_line, limits_.max_line);
  if (limits_.extended_prefix.size() > max_prefix) limits_.extended_prefix = {};
  buffer_.reserve(std::min<std::size_t>(limits_.max_line, 1024));
}

void line_reader::reset() noexcept {
  buffer_.clear();
  skipping_ = false;
  buffer_is_line_ = false;
}

// The limit of the line whose first octets are head followed by tail. While
// fewer octets than the prefix are known the answer is max_line, which is
// safe: so short a line is below every limit.
std::size_t line_reader::limit_for(std::string_view head, std::string_view tail) const noexcept {
  const auto& prefix = limits_.extended_prefix;
  if (prefix.empty() || head.size() + tail.size() < prefix.size()) return limits_.max_line;
  char start[max_prefix];
  const std::size_t from_head = std::min(head.size(), prefix.size());
  std::memcpy(start, head.data(), from_head);
  std::memcpy(start + from_head, tail.data(), prefix.size() - from_head);
  return detail::iequals(std::string_view(start, prefix.size()), prefix) ? limits_.max_extended_line
                                                                         : limits_.max_line;
}

line_step line_reader::finish(std::string_view line, std::size_t consumed) {
  // `line` ends with its LF.
  line_step step;
  step.consumed = consumed;
  line.remove_suffix(1);
  const bool crlf = !line.empty() && line.back() == '\r';
  if (crlf) line.remove_suffix(1);
  if (!crlf && limits_.bare_lf == bare_lf_policy::reject) {
    step.status = parse_status::error;
    step.error = line_error::bare_lf;
  } else if (!line.empty() && std::memchr(line.data(), '\r', line.size()) != nullptr) {
    step.status = parse_status::error;
    step.error = line_error::bare_cr;
  } else {
    step.status = parse_status::complete;
    step.line = line;
  }
  return step;
}

line_step line_reader::feed(std::string_view input) {
  if (buffer_is_line_) {
    buffer_.clear();
    buffer_is_line_ = false;
  }
  const void* lf = input.empty() ? nullptr : std::memchr(input.data(), '\n', input.size());

  if (skipping_) {
    if (lf == nullptr)
      return line_step{input.size(), parse_status::need_more, {}, line_error::none};
    skipping_ = false;
    const auto used = static_cast<std::size_t>(static_cast<const char*>(lf) - input.data()) + 1;
    return line_step{used, parse_status::error, {}, line_error::line_too_long};
  }

  if (lf == nullptr) {
    // No line end yet: keep what can still become a valid line; once even an
    // immediate LF would make it too long, drop it and skip to the LF.
    if (buffer_.size() + input.size() >= limit_for(buffer_, input)) {
      buffer_.clear();
      skipping_ = true;
    } else {
      buffer_.append(input);
    }
    return line_step{input.size(), parse_status::need_more, {}, line_error::none};
  }

  const auto used = static_cast<std::size_t>(static_cast<const char*>(lf) - input.data()) + 1;
  const auto rest = input.substr(0, used);
  if (buffer_.size() + used > limit_for(buffer_, rest)) {
    buffer_.clear();
    return line_step{used, parse_status::error, {}, line_error::line_too_long};
  }
  if (buffer_.empty()) return finish(rest, used);  // the whole line is in the caller's buffer
  buffer_.append(rest);
  buffer_is_line_ = true;
  return finish(buffer_, used);
}

}  // namespace hamail::smtp

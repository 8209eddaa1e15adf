#include <cstring>

#include "hamail/protocol/pop3/dot_stuffer.hpp"

namespace hamail::pop3 {

dot_stuffer dot_stuffer::top(std::uint32_t lines) noexcept {
  dot_stuffer s;
  s.body_lines_ = lines;
  return s;
}

void dot_stuffer::terminate(std::string& out) {
  out.append(".\r\n");
  done_ = true;
}

void dot_stuffer::end_line(std::string& out) {
  out.append("\r\n");
  const bool blank = !line_started_;
  line_started_ = false;
  if (!body_lines_) return;
  if (!in_body_) {
    if (!blank) return;
    in_body_ = true;  // the blank line between header and body
  } else {
    ++body_sent_;
  }
  if (body_sent_ >= *body_lines_) terminate(out);
}

stuff_step dot_stuffer::feed(std::string_view input, std::string& out) {
  std::size_t i = 0;
  const std::size_t n = input.size();
  while (i < n && !done_) {
    if (cr_pending_) {
      cr_pending_ = false;
      if (input[i] == '\n') {
        ++i;
        end_line(out);
        continue;
      }
      out.push_back('\r');  // a bare CR is line content
      line_started_ = true;
    }
    const char c = input[i];
    if (c == '\n') {
      ++i;
      end_line(out);
      continue;
    }
    if (c == '\r') {
      ++i;
      cr_pending_ = true;
      continue;
    }
    if (!line_started_ && c == '.') out.push_back('.');
    // Copy up to the next CR or LF in one go.
    std::size_t j = i + 1;
    while (j < n && input[j] != '\r' && input[j] != '\n') ++j;
    out.append(input.data() + i, j - i);
    line_started_ = true;
    i = j;
  }
  return stuff_step{i, done_};
}

void dot_stuffer::finish(std::string& out) {
  if (done_) return;
  if (cr_pending_) {
    cr_pending_ = false;
    out.push_back('\r');
    line_started_ = true;
  }
  if (line_started_) out.append("\r\n");
  line_started_ = false;
  terminate(out);
}

}  // namespace hamail::pop3

#include <cstring>

#include "hamail/protocol/smtp/data_reader.hpp"

namespace hamail::smtp {

std::string_view to_string(data_status code) noexcept {
  switch (code) {
    case data_status::ok:
      return "ok";
    case data_status::bare_lf:
      return "bare_lf";
    case data_status::bare_cr:
      return "bare_cr";
    case data_status::too_big:
      return "too_big";
    case data_status::line_too_long:
      return "line_too_long";
  }
  return "unknown";
}

namespace detail {

void body_writer::reset() noexcept {
  counts_ = data_result{};
  line_length_ = 0;
  failed_ = false;
  used_ = 0;
}

data_result body_writer::result() const noexcept {
  data_result r = counts_;
  const bool reject = limits_.bare_newlines == bare_newline_policy::reject;
  if (reject && r.saw_bare_lf) {
    r.status = data_status::bare_lf;
  } else if (reject && r.saw_bare_cr) {
    r.status = data_status::bare_cr;
  } else if (r.over_size) {
    r.status = data_status::too_big;
  } else if (r.over_line_length) {
    r.status = data_status::line_too_long;
  } else {
    r.status = data_status::ok;
  }
  return r;
}

void body_writer::line_input(std::size_t n) {
  if (raw_) return;
  line_length_ += n;
  if (line_length_ > limits_.max_line_length) {
    counts_.over_line_length = true;
    failed_ = true;
  }
}

void body_writer::emit(std::string_view bytes, output_sink& sink) {
  counts_.octets += bytes.size();
  if (counts_.octets > limits_.max_message_size) {
    counts_.over_size = true;
    failed_ = true;
  }
  // A failed body is refused whatever follows: stop writing, keep counting.
  if (failed_) {
    used_ = 0;
    return;
  }
  if (bytes.size() <= buffer_.size() - used_) {
    std::memcpy(buffer_.data() + used_, bytes.data(), bytes.size());
    used_ += bytes.size();
    return;
  }
  flush(sink);
  if (bytes.size() >= buffer_.size() / 2) {
    sink.write(bytes);  // large runs go straight from the caller's buffer
  } else {
    std::memcpy(buffer_.data(), bytes.data(), bytes.size());
    used_ = bytes.size();
  }
}

void body_writer::flush(output_sink& sink) {
  if (used_ != 0 && !failed_) sink.write(std::string_view(buffer_.data(), used_));
  used_ = 0;
}

void body_writer::text(std::string_view run, output_sink& sink) {
  if (run.empty()) return;
  line_input(run.size());
  emit(run, sink);
}

void body_writer::dot(output_sink& sink) { emit(".", sink); }

void body_writer::crlf(output_sink& sink) {
  line_input(2);
  line_length_ = 0;
  ++counts_.lines;
  emit("\r\n", sink);
}

void body_writer::bare_newline(output_sink& sink) {
  line_input(1);
  line_length_ = 0;
  ++counts_.lines;
  if (limits_.bare_newlines == bare_newline_policy::reject) {
    ++counts_.octets;  // counted as received, so octets is the size of what was sent
    failed_ = true;
    used_ = 0;
    return;
  }
  ++counts_.normalized;
  emit("\r\n", sink);
}

void body_writer::bare_lf(output_sink& sink) {
  counts_.saw_bare_lf = true;
  bare_newline(sink);
}

void body_writer::bare_cr(output_sink& sink) {
  counts_.saw_bare_cr = true;
  bare_newline(sink);
}

}  // namespace detail

namespace {

// Finds the next CR and LF at or after a position, scanning each octet at
// most once per feed even when CRs and LFs alternate far apart.
class newline_finder {
 public:
  explicit newline_finder(std::string_view input) : input_(input) {}

  std::size_t next(std::size_t from) {
    refresh('\r', cr_, cr_known_, from);
    refresh('\n', lf_, lf_known_, from);
    return cr_ < lf_ ? cr_ : lf_;
  }

 private:
  void refresh(char c, std::size_t& at, bool& known, std::size_t from) {
    if (known && at >= from) return;
    const void* p = std::memchr(input_.data() + from, c, input_.size() - from);
    at = p != nullptr ? static_cast<std::size_t>(static_cast<const char*>(p) - input_.data())
                      : input_.size();
    known = true;
  }

  std::string_view input_;
  std::size_t cr_ = 0, lf_ = 0;
  bool cr_known_ = false, lf_known_ = false;
};

}  // namespace

data_reader::data_reader(data_limits limits) : writer_(limits) {}

void data_reader::reset(bool after_crlf) noexcept {
  writer_.reset();
  state_ = state::line_start;
  after_crlf_ = after_crlf;
}

data_step data_reader::feed(std::string_view input, output_sink& sink) {
  if (state_ == state::done) return data_step{0, true};
  const std::size_t n = input.size();
  newline_finder finder(input);
  std::size_t i = 0;
  while (i < n) {
    switch (state_) {
      case state::line_start:
        if (input[i] == '.') {
          writer_.line_input(1);  // held until the next octet says what it is
          state_ = state::dot;
          ++i;
        } else {
          state_ = state::in_line;
        }
        break;
      case state::dot:
        if (input[i] == '\r') {
          state_ = state::dot_cr;
          ++i;
        } else if (input[i] == '\n') {
          // "." then bare LF: a line holding one dot, never an end marker.
          writer_.dot(sink);
          writer_.bare_lf(sink);
          after_crlf_ = false;
          state_ = state::line_start;
          ++i;
        } else {
          state_ = state::in_line;  // a stuffed dot: dropped
        }
        break;
      case state::dot_cr:
        if (input[i] == '\n') {
          ++i;
          if (after_crlf_) {
            state_ = state::done;
            writer_.flush(sink);
            return data_step{i, true};
          }
          // "<LF>.<CR><LF>" or "<CR>.<CR><LF>": the dot line is content.
          writer_.dot(sink);
          writer_.crlf(sink);
          after_crlf_ = true;
        } else {
          writer_.dot(sink);  // "." then bare CR; the octet after it starts a line
          writer_.bare_cr(sink);
          after_crlf_ = false;
        }
        state_ = state::line_start;
        break;
      case state::in_line: {
        const std::size_t at = finder.next(i);
        writer_.text(input.substr(i, at - i), sink);
        i = at;
        if (i == n) break;
        if (input[i] == '\r') {
          state_ = state::cr;
        } else {
          writer_.bare_lf(sink);
          after_crlf_ = false;
          state_ = state::line_start;
        }
        ++i;
        break;
      }
      case state::cr:
        if (input[i] == '\n') {
          writer_.crlf(sink);
          after_crlf_ = true;
          ++i;
        } else {
          writer_.bare_cr(sink);  // the octet after the CR starts the next line
          after_crlf_ = false;
        }
        state_ = state::line_start;
        break;
      case state::done:
        break;
    }
  }
  writer_.flush(sink);
  return data_step{n, false};
}

bdat_filter::bdat_filter(data_limits limits, bool binary) : writer_(limits), binary_(binary) {
  writer_.set_raw(binary);
}

void bdat_filter::reset(bool binary) noexcept {
  writer_.reset();
  binary_ = binary;
  writer_.set_raw(binary);
  pending_cr_ = false;
}

void bdat_filter::feed(std::string_view chunk, output_sink& sink) {
  const std::size_t n = chunk.size();
  if (binary_) {
    writer_.text(chunk, sink);
    writer_.flush(sink);
    return;
  }
  std::size_t i = 0;
  if (pending_cr_ && n != 0) {
    pending_cr_ = false;
    if (chunk[0] == '\n') {
      writer_.crlf(sink);
      i = 1;
    } else {
      writer_.bare_cr(sink);
    }
  }
  newline_finder finder(chunk);
  while (i < n) {
    const std::size_t at = finder.next(i);
    writer_.text(chunk.substr(i, at - i), sink);
    i = at;
    if (i == n) break;
    if (chunk[i] == '\n') {
      writer_.bare_lf(sink);
      ++i;
    } else if (i + 1 == n) {
      pending_cr_ = true;  // its LF may start the next chunk
      ++i;
    } else if (chunk[i + 1] == '\n') {
      writer_.crlf(sink);
      i += 2;
    } else {
      writer_.bare_cr(sink);
      ++i;
    }
  }
  writer_.flush(sink);
}

data_result bdat_filter::finish(output_sink& sink) {
  if (pending_cr_) {
    pending_cr_ = false;
    writer_.bare_cr(sink);
  }
  writer_.flush(sink);
  return writer_.result();
}

}  // namespace hamail::smtp

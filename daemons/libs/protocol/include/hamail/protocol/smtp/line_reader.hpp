#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hamail::smtp {

/// What to do with a line that ends in a bare LF instead of CRLF.
enum class bare_lf_policy {
  reject,  ///< report bare_lf for that line
  accept,  ///< take LF alone as a line ending
};

/// Progress of a sans-I/O parser after one feed.
enum class parse_status {
  need_more,  ///< all input was consumed; no line ended yet
  complete,   ///< a line (or command) ended; see the step's value
  error,      ///< a line ended but was refused; see the step's error
};

/// Why a line was refused.
enum class line_error {
  none,
  line_too_long,  ///< longer than the limit; it was skipped up to its LF
  bare_lf,        ///< ended by LF alone under bare_lf_policy::reject
  bare_cr,        ///< held a CR that was not followed by LF
};

/// Limits of a line_reader.
struct line_limits {
  std::size_t max_line = 512;           ///< octets including CRLF (RFC 5321 §4.5.3.1.4)
  std::size_t max_extended_line = 512;  ///< limit for lines starting with `extended_prefix`
  std::string_view extended_prefix;     ///< case-insensitive, e.g. "AUTH "; empty for none
  bare_lf_policy bare_lf = bare_lf_policy::reject;
};

/// One step of a line_reader.
struct line_step {
  std::size_t consumed = 0;                       ///< octets of the input used, <= its size
  parse_status status = parse_status::need_more;  ///< whether line or error is set
  std::string_view line;  ///< when complete: the line without its ending; valid until the next feed
  line_error error = line_error::none;  ///< when error
};

/// Splits a byte stream into CRLF lines, at most one line per feed, holding at
/// most one line's worth of octets. An over-long line is skipped up to its LF
/// and reported once, so memory stays bounded whatever the peer sends.
/// Used for commands and for SASL continuation lines.
class line_reader {
 public:
  /// Makes a reader with the given limits.
  explicit line_reader(line_limits limits = {});

  /// Consumes input up to and including the end of the next line; returns
  /// need_more (everything consumed), complete (the line) or error.
  line_step feed(std::string_view input);

  /// Number of octets of an unfinished line held inside; never above the limit.
  std::size_t buffered() const noexcept { return buffer_is_line_ ? 0 : buffer_.size(); }
  /// Drops any partial line, e.g. after STARTTLS.
  void reset() noexcept;
  /// The limits in force.
  const line_limits& limits() const noexcept { return limits_; }

 private:
  std::size_t limit_for(std::string_view head, std::string_view tail) const noexcept;
  line_step finish(std::string_view line, std::size_t consumed);

  line_limits limits_;
  std::string buffer_;           // start of an unfinished line, or the last line returned
  bool skipping_ = false;        // inside an over-long line, discarding up to its LF
  bool buffer_is_line_ = false;  // buffer_ backs the view returned by the last feed
};

}  // namespace hamail::smtp

#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "hamail/protocol/pop3/command.hpp"
#include "hamail/protocol/smtp/line_reader.hpp"

namespace hamail::pop3 {

// The line splitting is the SMTP one (same CRLF rules, same bounded skipping
// of over-long lines); its small enums are shared.
using smtp::bare_lf_policy;
using smtp::parse_status;

/// Limits and leniencies of a command_parser.
struct command_limits {
  std::size_t max_line = 255;  ///< octets incl. CRLF (RFC 2449 §4)
  /// For "AUTH ..." lines and AUTH continuation lines (RFC 5034 §4 lets a
  /// server take longer initial responses; PLAIN with long names needs it).
  std::size_t max_auth_line = 8192;
  bare_lf_policy bare_lf = bare_lf_policy::accept;  ///< LF-only line ends, as most servers take
};

/// What the next line is: a command, or the client's answer to a SASL challenge.
enum class input_mode {
  command,            ///< lines are POP3 commands
  auth_continuation,  ///< one line of base64, or "*" to cancel (RFC 5034 §4)
};

/// One step of the command parser: at most one of cmd, response, error is set.
struct parse_step {
  std::size_t consumed = 0;                       ///< octets of the input used, <= its size
  parse_status status = parse_status::need_more;  ///< complete: cmd or response; error: error
  std::optional<command> cmd;                     ///< complete in input_mode::command
  /// Complete in input_mode::auth_continuation: the base64 line (may be empty)
  /// or "*"; a view valid until the next feed.
  std::optional<std::string_view> response;
  std::optional<command_error> error;  ///< set when error
};

/// Sans-I/O POP3 command parser. Each feed consumes at most one line, so the
/// session acts on it (STLS, AUTH, QUIT) before the bytes after it are looked
/// at; pipelined commands (RFC 2449 PIPELINING) stay in the caller's buffer.
/// Holds at most one line's worth of octets; over-long lines are skipped to
/// their LF and reported once.
class command_parser {
 public:
  /// Makes a parser with the given limits.
  explicit command_parser(command_limits limits = {});

  /// Consumes input up to the end of the next line; returns need_more (all
  /// input consumed), complete or error.
  parse_step feed(std::string_view input);

  /// Parses one command line without its line end (input_mode::command rules).
  static parse_step parse_line(std::string_view line);
  /// Checks one AUTH continuation line without its line end.
  static parse_step parse_response(std::string_view line);

  /// Switches what the next line is; the session sets auth_continuation after
  /// sending a "+ " challenge and command once the exchange ends.
  void set_mode(input_mode mode) noexcept { mode_ = mode; }
  /// What the next line is taken as.
  input_mode mode() const noexcept { return mode_; }
  /// Octets of an unfinished line held inside; below the larger limit.
  std::size_t buffered() const noexcept { return commands_.buffered() + responses_.buffered(); }
  /// Drops any partial line and returns to command mode (after STLS).
  void reset() noexcept;

 private:
  smtp::line_reader commands_;   // command lines, "AUTH " lines get the larger limit
  smtp::line_reader responses_;  // AUTH continuation lines
  input_mode mode_ = input_mode::command;
};

}  // namespace hamail::pop3

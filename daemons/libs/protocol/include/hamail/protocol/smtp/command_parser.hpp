#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "hamail/protocol/smtp/command.hpp"
#include "hamail/protocol/smtp/line_reader.hpp"

namespace hamail::smtp {

/// Limits and leniencies of a command_parser; tighter before login is the caller's choice.
struct command_limits {
  std::size_t max_line = 512;         ///< octets incl. CRLF (RFC 5321 §4.5.3.1.4)
  std::size_t max_auth_line = 12288;  ///< for "AUTH ..." lines, whose initial response may be long
  bare_lf_policy bare_lf = bare_lf_policy::reject;  ///< how to treat LF-only command lines
};

/// Why a command line was refused; each maps to one reply (status_for in reply.hpp).
enum class parse_error {
  line_too_long,          ///< 500 5.5.2
  bare_lf,                ///< 500 5.5.2: line ended by LF alone
  bare_cr,                ///< 500 5.5.2: CR inside a line
  unknown_command,        ///< 500 5.5.1
  syntax,                 ///< 501 5.5.4
  bad_sender_address,     ///< 501 5.1.7
  bad_recipient_address,  ///< 501 5.1.3
  utf8_not_permitted,     ///< 553 5.6.7: non-ASCII address without SMTPUTF8
  bad_parameter_syntax,   ///< 501 5.5.4: malformed, duplicated or out-of-range ESMTP parameter
  unsupported_parameter,  ///< 555 5.5.4: known keyword with an unsupported value
  bad_base64,             ///< 501 5.5.2: AUTH initial response is not base64
};

/// Returns the stable lowercase name of a parse error ("line_too_long"), for logs and tests.
std::string_view to_string(parse_error code) noexcept;

/// A refused command line: the condition, and a static text naming the defect.
struct command_error {
  parse_error code = parse_error::syntax;
  std::string_view detail;  ///< static storage; may go into the reply text
  friend bool operator==(const command_error&, const command_error&) = default;
};

/// One step of the command parser.
struct parse_step {
  std::size_t consumed = 0;                       ///< octets of the input used, <= its size
  parse_status status = parse_status::need_more;  ///< whether cmd or error is set
  std::optional<command> cmd;                     ///< set when complete
  std::optional<command_error> error;             ///< set when error
};

/// Sans-I/O SMTP/LMTP command parser. Each feed consumes at most one command
/// line, so the session acts on it (STARTTLS, DATA, BDAT) before the bytes
/// after it are looked at; pipelined input stays in the caller's buffer.
class command_parser {
 public:
  /// Makes a parser with the given limits.
  explicit command_parser(command_limits limits = {});

  /// Consumes input up to the end of the next command line; returns need_more
  /// (all input consumed and held, bounded by the limits), complete or error.
  parse_step feed(std::string_view input);

  /// Parses one command line without its CRLF; returns the command or the error.
  parse_step parse_line(std::string_view line) const;

  /// Tells the parser the transaction was opened with MAIL ... SMTPUTF8, so RCPT
  /// addresses may hold UTF-8 (RFC 6531); the session clears it when the transaction ends.
  void set_utf8_transaction(bool on) noexcept { utf8_transaction_ = on; }
  /// Returns whether RCPT addresses may hold UTF-8.
  bool utf8_transaction() const noexcept { return utf8_transaction_; }
  /// Octets of an unfinished line held inside.
  std::size_t buffered() const noexcept { return lines_.buffered(); }
  /// Drops any partial line and the transaction flag (after STARTTLS, or RSET).
  void reset() noexcept;

 private:
  line_reader lines_;
  bool utf8_transaction_ = false;
};

}  // namespace hamail::smtp

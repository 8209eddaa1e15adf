#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hamail::pop3 {

/// A command line as the client sent it: the keyword in upper case and its
/// arguments. PASS keeps the whole rest of the line as its one argument.
struct command {
  std::string keyword;            ///< upper case, e.g. "RETR"
  std::vector<std::string> args;  ///< split on single spaces (PASS: the rest of the line)
  friend bool operator==(const command&, const command&) = default;
};

/// Why a line or a command was refused; each maps to one -ERR text (see response.hpp).
enum class parse_error {
  line_too_long,       ///< over the line limit; the line was skipped up to its LF
  bare_cr,             ///< CR inside the line
  bare_lf,             ///< line ended by LF alone under bare_lf_policy::reject
  control_character,   ///< NUL or another control octet in the line
  empty_line,          ///< nothing between line ends
  unknown_command,     ///< keyword not known
  syntax,              ///< wrong number of arguments, empty argument
  bad_message_number,  ///< not a decimal 1..2^31-1
  bad_line_count,      ///< TOP's line count not a decimal 0..2^31-1
  wrong_state,         ///< command not valid in the session's current state
  unsupported,         ///< known but not offered (APOP)
  bad_mechanism,       ///< AUTH mechanism name malformed
  bad_base64,          ///< AUTH initial response or continuation line is not base64
};

/// Returns the stable lowercase name of a parse error ("line_too_long"), for logs and tests.
std::string_view to_string(parse_error code) noexcept;

/// A refused line or command: the condition and a static text naming the defect,
/// suitable for the -ERR line.
struct command_error {
  parse_error code = parse_error::syntax;
  std::string_view detail;  ///< static storage; goes into the -ERR text
  friend bool operator==(const command_error&, const command_error&) = default;
};

/// The POP3 session states in which commands are read (RFC 1939 §3); UPDATE
/// reads none.
enum class session_state {
  authorization,  ///< before login: USER, PASS, AUTH, STLS, CAPA, QUIT
  transaction,    ///< after login: the mailbox commands, CAPA, QUIT
};

/// The commands hamail knows.
enum class verb {
  user,
  pass,
  apop,
  auth,
  stls,
  capa,
  quit,
  stat,
  list,
  retr,
  dele,
  noop,
  rset,
  top,
  uidl,
  xclient  ///< XCLIENT NAME=VALUE ...: the client's address, from a trusted proxy
};

/// Returns the keyword of a verb in upper case ("RETR").
std::string_view to_string(verb v) noexcept;

/// A command whose arguments were checked: the values the session acts on.
struct request {
  verb what = verb::noop;
  std::optional<std::uint32_t> msg;    ///< LIST n, RETR, DELE, TOP, UIDL n: 1-based message number
  std::optional<std::uint32_t> lines;  ///< TOP: body lines to send
  std::string text;  ///< USER name, PASS string (may hold spaces), AUTH mechanism (upper case)
  std::optional<std::string> initial_response;  ///< AUTH: base64 as sent, "=" for empty
  /// XCLIENT: (NAME upper case, VALUE as sent) pairs.
  std::vector<std::pair<std::string, std::string>> attributes;
  friend bool operator==(const request&, const request&) = default;
};

/// A request or the reason it was refused: exactly one is set.
struct checked_command {
  std::optional<request> req;          ///< set when the command is valid here
  std::optional<command_error> error;  ///< set otherwise
};

/// Checks a command against the table of POP3 commands: known keyword, valid
/// in `state`, the right number and shape of arguments. APOP is known and
/// refused as unsupported.
checked_command validate(const command& cmd, session_state state);

/// Parses a message number: decimal digits only, 1..2^31-1 (leading zeros are
/// allowed, a sign is not). Returns nullopt when malformed or out of range.
std::optional<std::uint32_t> parse_message_number(std::string_view text) noexcept;

/// Returns whether `text` is base64 (RFC 4648 alphabet, padded, length a multiple of 4);
/// the empty string is base64.
bool is_base64(std::string_view text) noexcept;

}  // namespace hamail::pop3

#pragma once

// Sans-I/O IMAP command parser (RFC 3501 §9, RFC 9051 §9, RFC 7888 LITERAL+/-,
// RFC 3516 literal8, RFC 6855 UTF8=ACCEPT): bytes in, one command (tag, name,
// argument tree) out. The parser keeps its state between feeds, so input may be
// cut anywhere and nothing is scanned twice.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hamail::imap {

/// Which non-synchronizing literals ({n+}) a client may send.
enum class literal_mode {
  synchronizing_only,  ///< no LITERAL+ / LITERAL- advertised: {n+} is a syntax error
  literal_plus,        ///< LITERAL+ (RFC 7888): any size within the limits
  literal_minus,       ///< LITERAL- (RFC 7888): {n+} only up to 4096 octets
};

/// Limits of a command_parser; the session passes tighter ones before login.
struct command_limits {
  std::size_t max_line = 65536;         ///< octets of one line outside literals, CRLF included
  std::size_t max_literal = 64u << 20;  ///< octets of one literal
  std::size_t max_command = (64u << 20) + 65536;  ///< octets of a whole command, literals included
  std::size_t max_depth = 16;                     ///< nesting of parenthesised lists and [section]s
  std::size_t max_arguments = 10000;              ///< values in the command at any depth
  literal_mode non_sync = literal_mode::literal_plus;  ///< accepted {n+} literals

  /// Limits for a connection that has not logged in: enough for LOGIN,
  /// AUTHENTICATE, ID, CAPABILITY and STARTTLS, not for APPEND.
  static command_limits before_login() noexcept {
    return {.max_line = 8192,
            .max_literal = 4096,
            .max_command = 16384,
            .max_depth = 4,
            .max_arguments = 64,
            .non_sync = literal_mode::literal_minus};
  }
};

/// The kind of a value in a command's argument tree.
enum class value_kind {
  atom,     ///< a bare token: keyword, flag, sequence set, search key, section item
  number,   ///< an atom of 1..20 digits that fits in 64 bits
  nil,      ///< the atom NIL (any case)
  quoted,   ///< a quoted string, unescaped
  literal,  ///< a {n} literal, or ~{n} literal8 (see value::literal8)
  list,     ///< a parenthesised list; its elements are in items
};

/// The <offset.count> after a FETCH section.
struct partial_range {
  std::uint64_t offset = 0;
  std::uint64_t count = 0;
  friend bool operator==(const partial_range&, const partial_range&) = default;
};

/// One argument. An atom among BODY, BODY.PEEK, BINARY, BINARY.PEEK and
/// BINARY.SIZE (any case) may carry a [section] whose elements are in items,
/// and then a <offset.count>.
struct value {
  value_kind kind = value_kind::atom;
  std::string text;                      ///< atom/nil/number as sent; quoted or literal contents
  std::uint64_t number = 0;              ///< for number
  bool literal8 = false;                 ///< a literal sent as ~{n}
  bool has_section = false;              ///< an atom followed by [section]; elements in items
  std::vector<value> items;              ///< list elements, or the section's elements
  std::optional<partial_range> partial;  ///< <offset.count> after a section

  /// True for an atom (not NIL or number) equal to `word`, ignoring ASCII case.
  bool is_atom(std::string_view word) const noexcept;
  /// True for a value that can stand for a string: quoted, literal, atom, number or NIL
  /// as an astring (never one with a section).
  bool is_astring() const noexcept;
  friend bool operator==(const value&, const value&) = default;
};

/// A parsed command line: "a1 UID FETCH 1:* FLAGS" gives tag "a1", name "FETCH", uid.
struct command {
  std::string tag;
  std::string name;  ///< upper-cased
  bool uid = false;  ///< sent as "UID <name>"
  std::vector<value> args;
  friend bool operator==(const command&, const command&) = default;
};

/// Progress of the parser after one feed.
enum class parse_status {
  need_more,          ///< all input consumed; feed more
  need_continuation,  ///< a synchronizing literal fits the limits: send "+ ..." and feed more
  complete,           ///< a command (or, in line mode, a line) ended; see the step
  error,              ///< refused; see the step's error
};

/// Why a command was refused.
enum class parse_error {
  syntax,                 ///< malformed: BAD
  empty_line,             ///< a line with nothing on it: BAD
  bad_tag,                ///< no tag, or a tag with forbidden octets: untagged BAD
  line_too_long,          ///< a line over max_line: BAD
  literal_too_large,      ///< a literal over max_literal: BAD (sync), BYE (non-sync)
  command_too_large,      ///< the command would exceed max_command: BAD
  non_sync_not_allowed,   ///< {n+} without LITERAL+/LITERAL-: BAD (or BYE when it can't be skipped)
  non_sync_too_large,     ///< {n+} over 4096 under LITERAL-: BAD [TOOBIG] (RFC 7888 §4)
  too_deep,               ///< lists nested deeper than max_depth: BAD
  too_many_arguments,     ///< more than max_arguments values: BAD
  eight_bit_not_allowed,  ///< 8-bit octets outside a literal without UTF8=ACCEPT: BAD
  bad_utf8,               ///< 8-bit text that is not valid UTF-8: BAD
  nul_in_literal,         ///< a NUL inside a {n} literal (allowed only in ~{n}): BAD
};

/// Returns the stable lowercase name of a parse error ("line_too_long").
std::string_view to_string(parse_error code) noexcept;

/// What the session must do after an error.
enum class error_action {
  reply_bad,  ///< the rest of the command was consumed: answer BAD (tagged if a tag is known)
  close,      ///< the stream can't be resynchronised: send "* BYE" and close
};

/// A refused command.
struct command_error {
  parse_error code = parse_error::syntax;
  error_action action = error_action::reply_bad;
  std::string tag;          ///< the command's tag when it was read, else empty
  std::string_view detail;  ///< static text naming the defect; may go into the reply
};

/// One step of the parser.
struct parse_step {
  std::size_t consumed = 0;                       ///< octets of the input used, <= its size
  parse_status status = parse_status::need_more;  ///< which of the members below is set
  std::optional<command> cmd;                     ///< when complete in command mode
  std::optional<std::string> line;                ///< when complete in line mode
  std::optional<command_error> error;             ///< when error
};

/// Sans-I/O IMAP command parser. Each feed consumes input up to the end of one
/// command (or to a synchronizing literal's header, or an error) and no
/// further, so the session acts on the command before later bytes are looked
/// at. Recoverable errors are reported once the rest of the command (its line
/// and any non-synchronizing literals announced on it) has been consumed.
class command_parser {
 public:
  /// Makes a parser with the given limits.
  explicit command_parser(command_limits limits = {});

  /// Consumes input; returns need_more (everything consumed and held, bounded
  /// by the limits), need_continuation, complete or error.
  parse_step feed(std::string_view input);

  /// Replaces the limits, e.g. after login; takes effect at the next command.
  void set_limits(const command_limits& limits) noexcept { limits_ = limits; }
  /// The limits in force.
  const command_limits& limits() const noexcept { return limits_; }
  /// Accepts UTF-8 in quoted strings and atoms (after ENABLE UTF8=ACCEPT, RFC 6855).
  void set_utf8_accept(bool on) noexcept { utf8_ = on; }
  /// Returns whether UTF-8 is accepted.
  bool utf8_accept() const noexcept { return utf8_; }
  /// Makes the next feed return one raw line (IDLE's DONE, an AUTHENTICATE
  /// response) instead of a command, under the same line limit.
  void expect_line() noexcept;
  /// Octets held for the command being parsed (line text and literal data).
  std::size_t buffered() const noexcept;
  /// Drops any partial command (after STARTTLS).
  void reset() noexcept;

 private:
  enum class state : unsigned char;
  enum class outcome : unsigned char {
    go_on,             // octet handled; take the next one
    redo,              // handle the same octet again in the new state
    redo_at_boundary,  // a value ended: handle the same octet as a separator
    done,              // return result_
  };

  void start_command() noexcept;
  void begin_skip(parse_error code, std::string_view detail);
  parse_step report(std::size_t consumed);
  parse_step fatal(std::size_t consumed, parse_error code, std::string_view detail);
  void place(value v);
  bool count_value();
  bool check_text();
  bool end_atom();
  bool open_frame(value v);
  outcome boundary(unsigned char c, std::size_t consumed);
  outcome end_line(std::size_t consumed);
  void start_literal();
  outcome end_literal_header(std::size_t consumed);
  void start_literal_data(std::uint64_t size);
  bool end_literal();

  command_limits limits_;
  bool utf8_ = false;
  bool line_mode_ = false;

  state state_;
  parse_step result_;          // the step an outcome::done returns
  command cmd_;                // tag and name being read; args as they complete
  std::vector<value> frames_;  // open lists and sections, innermost last
  std::string token_;          // the atom, quoted string, literal or line being read
  bool token_eight_bit_ = false;
  bool tag_known_ = false;            // the tag has been read in full
  bool name_done_ = false;            // the command name has been read
  std::optional<value> held_;         // a closed [section] waiting for its <offset.count>
  std::uint64_t literal_size_ = 0;    // announced size of the literal being read
  std::uint64_t literal_left_ = 0;    // octets of it still to come (reading or skipping)
  bool literal8_ = false;             // the literal being read is ~{n}
  bool literal_plus_ = false;         // its header held '+'
  unsigned literal_digits_ = 0;       // digits seen in its header
  std::uint64_t partial_offset_ = 0;  // <offset.count> being read
  unsigned partial_digits_ = 0;
  std::size_t line_octets_ = 0;     // octets of the current line segment
  std::size_t command_octets_ = 0;  // octets of the command so far
  std::size_t values_ = 0;          // values in the command so far

  // Skipping the rest of a refused command: a pending error, and a small
  // recogniser for a "{n+}" at the end of a skipped line.
  std::optional<command_error> pending_;
  unsigned skip_brace_ = 0;  // 0 none, 1 digits, 2 after '+', 3 "{n}", 4 "{n+}"
  std::uint64_t skip_size_ = 0;
};

}  // namespace hamail::imap

#pragma once

// Primitives for writing IMAP responses (RFC 3501 §9, RFC 9051 §9): strings in
// the form the client can read back (atom, quoted, literal), NIL, numbers and
// parenthesised lists. They append to a std::string; no I/O.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hamail::imap {

/// How strings may be written on this connection.
struct write_options {
  bool utf8 = false;              ///< UTF8=ACCEPT enabled (RFC 6855): valid UTF-8 may be quoted
  bool literal8 = false;          ///< a ~{n} literal may be sent (BINARY fetch data, RFC 3516)
  std::size_t max_quoted = 1024;  ///< longer values go out as literals
};

/// True when `value` may be sent as an IMAP quoted string under `options`:
/// no CR, LF or NUL, 8-bit only as valid UTF-8 in UTF8 mode, not over max_quoted.
bool can_quote(std::string_view value, const write_options& options = {}) noexcept;
/// True when `value` may be sent as an atom (RFC 3501 ATOM-CHAR only, not empty, not "NIL").
bool is_atom(std::string_view value) noexcept;
/// True when `value` may be sent as a bare astring (ATOM-CHAR or ']', not empty, not "NIL").
bool is_astring_atom(std::string_view value) noexcept;

/// Appends a literal header "{n}\r\n", or "~{n}\r\n" when `binary`.
void append_literal_header(std::string& out, std::size_t size, bool binary = false);
/// Appends a literal: its header then the octets.
void append_literal(std::string& out, std::string_view value, bool binary = false);
/// Appends `value` quoted ("a\"b") when it can be, else as a literal; a NUL
/// forces "~{n}" when options.literal8 allows it and "{n}" otherwise.
void append_string(std::string& out, std::string_view value, const write_options& options = {});
/// Appends NIL for no value, else as append_string.
void append_nstring(std::string& out, std::optional<std::string_view> value,
                    const write_options& options = {});
/// Appends `value` bare when it is a safe astring atom, else as append_string.
void append_astring(std::string& out, std::string_view value, const write_options& options = {});
/// Appends a decimal number.
void append_number(std::string& out, std::uint64_t value);

/// Builds a parenthesised list into a string, with nested lists, putting one
/// SP between items: list_writer(out).atom("\\Seen").open().number(1).close().close().
/// The outermost list is opened by the constructor and closed by the last close().
class list_writer {
 public:
  /// Opens a list at the end of `out`.
  explicit list_writer(std::string& out, write_options options = {});

  /// Opens a nested list as the next item; returns *this.
  list_writer& open();
  /// Closes the innermost open list; returns *this. Aborts when none is open.
  list_writer& close();
  /// Appends an atom (the caller vouches it is one: flags, keywords); returns *this.
  list_writer& atom(std::string_view value);
  /// Appends a number; returns *this.
  list_writer& number(std::uint64_t value);
  /// Appends a string (quoted or literal); returns *this.
  list_writer& string(std::string_view value);
  /// Appends an nstring (NIL when empty optional); returns *this.
  list_writer& nstring(std::optional<std::string_view> value);
  /// Appends an astring; returns *this.
  list_writer& astring(std::string_view value);
  /// Appends NIL; returns *this.
  list_writer& nil();
  /// Appends pre-formatted octets as one item; returns *this.
  list_writer& raw(std::string_view wire);

  /// Number of lists still open (0 once the outermost is closed).
  std::size_t depth() const noexcept { return first_.size(); }

 private:
  std::string& separate();

  std::string& out_;
  write_options options_;
  std::vector<bool> first_;  // per open list: no item written yet
};

}  // namespace hamail::imap

#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hamail::pop3 {

/// One step of a dot_stuffer.
struct stuff_step {
  std::size_t consumed = 0;  ///< octets of the input used; < its size only when done
  bool done = false;         ///< the terminator was written; read no more of the message
};

/// Streams a stored message into the wire form of a POP3 multi-line response
/// body (RFC 1939 §3), sans-I/O: fed the message file's bytes in chunks split
/// anywhere, it appends to the caller's output
///   - every LF, with or without its CR, as CRLF;
///   - a CR not followed by LF unchanged, as part of the line;
///   - an extra "." before a line that starts with ".";
///   - CRLF after a last line without a line end, then ".\r\n".
/// In TOP mode it stops after the header, the blank line and `lines` body
/// lines, writes the terminator and reports done (a message without a blank
/// line is all header). Memory is constant: no line is buffered, at most one
/// CR is held between feeds.
class dot_stuffer {
 public:
  /// Makes an encoder for RETR (the whole message).
  dot_stuffer() = default;
  /// Makes an encoder for TOP msg `lines`.
  static dot_stuffer top(std::uint32_t lines) noexcept;

  /// Appends the wire form of `input` to `out`: at most 2 * input.size() + 5
  /// octets. Consumes all input unless the TOP limit is reached inside it.
  stuff_step feed(std::string_view input, std::string& out);
  /// At the end of the message: appends what is still owed (a held CR, the
  /// last line's CRLF, ".\r\n"); nothing once done.
  void finish(std::string& out);
  /// True once the terminator has been written.
  bool done() const noexcept { return done_; }

 private:
  void end_line(std::string& out);
  void terminate(std::string& out);

  std::optional<std::uint32_t> body_lines_;  // TOP: body lines to send; nullopt for RETR
  std::uint32_t body_sent_ = 0;              // body lines written so far
  bool in_body_ = false;                     // the blank line after the header was written
  bool line_started_ = false;                // octets of the current line were written
  bool cr_pending_ = false;                  // a CR ended the last feed, its meaning unknown
  bool done_ = false;
};

}  // namespace hamail::pop3

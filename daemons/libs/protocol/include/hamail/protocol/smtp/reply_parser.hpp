#pragma once

// The client side of reply.hpp: parses the replies an SMTP or LMTP server
// sends (RFC 5321 §4.2, enhanced codes RFC 3463/2034), for hamail's relay
// client. Sans-I/O: bytes in, complete replies out.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/smtp/line_reader.hpp"

namespace hamail::smtp {

/// One complete reply a server sent: "250-first\r\n250 2.1.5 last\r\n".
struct server_reply {
  int code = 0;          ///< the basic code, 200..599
  std::string enhanced;  ///< "x.y.z" taken from the first line, empty when absent
  /// The text of each line without code, separator and (where it repeats the
  /// first line's) enhanced code; one entry per line, possibly empty.
  std::vector<std::string> lines;

  /// True for 2xx.
  bool positive() const noexcept { return code >= 200 && code < 300; }
  /// True for 3xx (354 after DATA, 334 in AUTH).
  bool intermediate() const noexcept { return code >= 300 && code < 400; }
  /// True for 4xx: try again later.
  bool temporary() const noexcept { return code >= 400 && code < 500; }
  /// True for 5xx: do not try again.
  bool permanent() const noexcept { return code >= 500 && code < 600; }
  /// The lines joined by a space, for logs and for passing the reply on.
  std::string text() const;
  /// "250 2.1.5 text" on one line, for logs.
  std::string describe() const;
};

/// Why input was refused. After an error the parser starts afresh at the next line.
enum class reply_error {
  none,
  line_too_long,   ///< a line above reply_limits::max_line (skipped up to its LF)
  too_many_lines,  ///< a continuation line beyond reply_limits::max_lines
  bad_syntax,      ///< not "ddd", "ddd text" or "ddd-text" with ddd in [2-5][0-5][0-9]
  code_mismatch,   ///< a line of a multi-line reply carries another code
  bare_lf,         ///< a line ended by LF alone under bare_lf_policy::reject
  bare_cr,         ///< a CR not followed by LF inside a line
};

/// Returns the stable lowercase name of an error, for logs and tests.
std::string_view to_string(reply_error e) noexcept;

/// Limits of a reply_parser. The defaults leave slack above RFC 5321's 512
/// octets, as servers (long EHLO lines, verbose rejections) exceed it.
struct reply_limits {
  std::size_t max_line = 2048;  ///< octets per line including CRLF
  std::size_t max_lines = 100;  ///< lines per reply
  /// Bare LF is accepted by default: unlike DATA there is no smuggling risk
  /// in a reply (the client decides where replies end, line by line), and
  /// refusing would only fail delivery to sloppy servers.
  bare_lf_policy bare_lf = bare_lf_policy::accept;
};

/// One step of a reply_parser.
struct reply_step {
  std::size_t consumed = 0;                       ///< octets of the input used
  parse_status status = parse_status::need_more;  ///< need_more, complete or error
  std::optional<server_reply> reply;              ///< when complete
  reply_error error = reply_error::none;          ///< when error
};

/// Splits server output into replies, at most one per feed, holding at most
/// one line plus the lines of one reply (max_line * max_lines octets).
class reply_parser {
 public:
  /// Makes a parser with the given limits.
  explicit reply_parser(reply_limits limits = {});

  /// Consumes input up to the end of the next reply or error; need_more
  /// consumes everything. Feed the unconsumed rest again.
  reply_step feed(std::string_view input);

  /// True while part of a reply (a line or continuation lines) is held.
  bool in_reply() const noexcept { return lines_ > 0 || lines_reader_.buffered() > 0; }
  /// Drops any partial reply, e.g. after STARTTLS.
  void reset() noexcept;
  /// The limits in force.
  const reply_limits& limits() const noexcept { return limits_; }

 private:
  reply_step fail(std::size_t consumed, reply_error e);

  reply_limits limits_;
  line_reader lines_reader_;
  server_reply current_;
  std::size_t lines_ = 0;  // lines of current_ seen so far
};

}  // namespace hamail::smtp

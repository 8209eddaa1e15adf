#pragma once

// A small sans-I/O HTTP/1.1 request parser (RFC 9112) for the daemons'
// operational endpoints (/metrics, /ready, /live): request line and header
// fields only. Bodies are not supported: a request announcing one
// (Content-Length > 0, any Transfer-Encoding) is refused, which keeps the
// parser free of body framing and request smuggling.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hamail::http {

/// The request methods the parser tells apart; the others are kept by name.
enum class method { get, head, other };

/// One header field: the name lower-cased, the value without surrounding whitespace.
struct header_field {
  std::string name;
  std::string value;
};

/// A parsed request head.
struct request {
  method verb = method::other;
  std::string method_name;  ///< as sent ("GET", "POST", ...), case-sensitive per RFC 9110
  std::string target;       ///< the request-target as sent ("/metrics?x=1", "*")
  int version_minor = 1;    ///< HTTP/1.<version_minor>: 0 or 1
  std::vector<header_field> headers;

  /// The path of an origin-form target (before '?'); the target itself otherwise.
  std::string_view path() const noexcept;
  /// The value of the first field named `lower_name` (lower case), if any.
  std::optional<std::string_view> header(std::string_view lower_name) const noexcept;
  /// True when the connection may carry another request: HTTP/1.1 unless
  /// "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
  bool keep_alive() const noexcept;
};

/// Why a request was refused; each maps to one response status.
enum class request_error {
  bad_request,            ///< 400: malformed request line or field, bare CR, obs-fold
  missing_host,           ///< 400: HTTP/1.1 without exactly one Host field
  body_not_allowed,       ///< 400: Content-Length > 0 or invalid
  uri_too_long,           ///< 414: request line over max_request_line
  headers_too_large,      ///< 431: header section over max_header_bytes or max_headers
  transfer_encoding,      ///< 501: Transfer-Encoding present
  version_not_supported,  ///< 505: HTTP/2.0 and other major versions
};

/// The status code to answer with (400, 414, 431, 501, 505).
int status_code(request_error e) noexcept;
/// A short stable name ("bad_request", ...), for logs and tests.
std::string_view to_string(request_error e) noexcept;
/// A one-line explanation suitable for the response body.
std::string_view describe(request_error e) noexcept;

/// The parser's limits (RFC 9112 §2.3 and §5 leave them to the server).
struct request_limits {
  std::size_t max_request_line = 1024;  ///< octets of the request line, without its line end
  std::size_t max_header_bytes = 8192;  ///< octets of the header section, line ends included
  std::size_t max_headers = 50;         ///< header fields
};

/// Where a feed ended.
enum class parse_status { need_more, complete, error };

/// One step of the parser: `req` set when complete, `error` when error.
struct parse_step {
  std::size_t consumed = 0;  ///< octets of the input used, <= its size
  parse_status status = parse_status::need_more;
  std::optional<request> req;
  std::optional<request_error> error;
};

/// Sans-I/O parser of one request head at a time. Feed it what arrived; it
/// consumes octets up to the end of the head (the empty line) and no further,
/// so pipelined requests stay in the caller's buffer. Input may be cut
/// anywhere. Lines end in CRLF or LF (RFC 9112 §2.2); a CR elsewhere is an
/// error. Empty lines before the request line are skipped (counted against
/// max_request_line). The octets held inside never exceed the larger limit
/// plus the fields parsed so far (both bounded). After an error the parser
/// keeps returning that error (consuming nothing) until reset(): HTTP cannot
/// resynchronise, the connection is to be closed.
class request_parser {
 public:
  /// Makes a parser with the given limits.
  explicit request_parser(request_limits limits = {});

  /// Consumes input; returns need_more (all input consumed), complete or error.
  parse_step feed(std::string_view input);
  /// Octets of an unfinished line held inside.
  std::size_t buffered() const noexcept { return line_.size(); }
  /// True between requests: no octet of the next request consumed yet (an
  /// idle keep-alive connection rather than a slow request).
  bool idle() const noexcept {
    return state_ == state::request_line && line_.empty() && skipped_ == 0;
  }
  /// Forgets any partial request and error: ready for the next request.
  void reset() noexcept;

 private:
  enum class state { request_line, headers, failed };
  parse_step fail(request_error e, std::size_t consumed);
  std::optional<request_error> on_request_line(std::string_view line);
  std::optional<request_error> on_header_line(std::string_view line);
  std::optional<request_error> finish();

  request_limits limits_;
  state state_ = state::request_line;
  std::string line_;         // the current line so far, without its LF
  std::size_t skipped_ = 0;  // empty lines' octets before the request line
  std::size_t header_bytes_ = 0;
  request req_;
  request_error error_ = request_error::bad_request;
};

}  // namespace hamail::http

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace hamail::smtp {

/// Where a message body goes, in chunks, as it is read (typically a file being written).
class output_sink {
 public:
  virtual ~output_sink() = default;
  /// Takes the next chunk of message content; the view is valid only during the call.
  virtual void write(std::string_view chunk) = 0;
};

/// An output_sink calling a function object, for lambdas.
template <class F>
class function_sink final : public output_sink {
 public:
  /// Wraps f, called as f(std::string_view) for each chunk.
  explicit function_sink(F f) : f_(std::move(f)) {}
  void write(std::string_view chunk) override { f_(chunk); }

 private:
  F f_;
};

/// What to do with a LF not preceded by CR, or a CR not followed by LF, in a body.
enum class bare_newline_policy {
  reject,     ///< read to the real end of data, then refuse the message (bare_lf / bare_cr)
  normalize,  ///< turn each into CRLF in the output; never part of an end-of-data marker
};

/// Limits of a body reader.
struct data_limits {
  std::uint64_t max_message_size = 64u * 1024 * 1024;  ///< octets of output; above it: too_big
  std::size_t max_line_length =
      10000;  ///< octets incl. line ending; RFC 5321's 1000 is too strict in practice
  bare_newline_policy bare_newlines = bare_newline_policy::reject;  ///< see the policy
};

/// The verdict on a body. Only `ok` bodies may be accepted; for the others the
/// reader stops writing to the sink at the point of failure, and the session
/// discards what was written (see status_for in reply.hpp for the replies).
enum class data_status {
  ok,
  bare_lf,        ///< 550 5.5.2: LF without CR under bare_newline_policy::reject
  bare_cr,        ///< 550 5.5.2: CR without LF under bare_newline_policy::reject
  too_big,        ///< 552 5.3.4: over max_message_size
  line_too_long,  ///< 554 5.6.0: a line over max_line_length
};

/// Returns the stable lowercase name of a body verdict ("bare_lf"), for logs and tests.
std::string_view to_string(data_status code) noexcept;

/// Counters and verdict of a body; final once the body is complete.
struct data_result {
  data_status status =
      data_status::ok;  ///< bare_lf > bare_cr > too_big > line_too_long when several apply
  std::uint64_t octets =
      0;  ///< content octets (a refused bare newline counts 1), also past a failure
  std::uint64_t lines = 0;        ///< line endings in the content
  std::uint64_t normalized = 0;   ///< bare newlines turned into CRLF (normalize policy)
  bool saw_bare_lf = false;       ///< a bare LF occurred (either policy)
  bool saw_bare_cr = false;       ///< a bare CR occurred (either policy)
  bool over_size = false;         ///< max_message_size was exceeded
  bool over_line_length = false;  ///< max_line_length was exceeded
};

/// One step of a data_reader.
struct data_step {
  std::size_t consumed = 0;  ///< octets of the input used, <= its size
  bool complete = false;  ///< end-of-data was consumed; bytes after it belong to the next command
};

namespace detail {
/// Line, size and newline accounting shared by DATA and BDAT bodies, with a
/// small fixed buffer that merges short pieces into larger sink writes.
class body_writer {
 public:
  explicit body_writer(const data_limits& limits) : limits_(limits) {}

  void text(std::string_view run, output_sink& sink);  // octets without CR or LF
  void line_input(std::size_t n);  // input octets not (yet) emitted, e.g. a stuffing dot
  void dot(output_sink& sink);     // a held '.' that turned out to be content
  void crlf(output_sink& sink);
  void bare_lf(output_sink& sink);
  void bare_cr(output_sink& sink);
  void flush(output_sink& sink);
  void reset() noexcept;
  data_result result() const noexcept;
  void set_raw(bool raw) noexcept { raw_ = raw; }

 private:
  void emit(std::string_view bytes, output_sink& sink);
  void bare_newline(output_sink& sink);

  data_limits limits_;
  data_result counts_;
  std::size_t line_length_ = 0;
  bool failed_ = false;
  bool raw_ = false;  // binary content: no line accounting, newlines passed through
  std::size_t used_ = 0;
  std::array<char, 4096> buffer_{};
};
}  // namespace detail

/// Sans-I/O reader of a DATA body (RFC 5321 §4.5.2): removes dot-stuffing and
/// ends ONLY at <CR><LF>.<CR><LF>, where the first CRLF may be the one ending
/// the DATA command. Bare CR or LF never forms part of an end marker, which
/// closes the SMTP smuggling hole. Content goes to the sink as it is read; the
/// reader itself holds a few bytes of state and a fixed 4 KiB write buffer.
class data_reader {
 public:
  /// Makes a reader for one body, positioned just after the DATA command's line.
  explicit data_reader(data_limits limits = {});

  /// Consumes input up to and including end-of-data; returns how much was
  /// used and whether the body is complete. All content is written to the sink
  /// before it returns.
  data_step feed(std::string_view input, output_sink& sink);

  /// Returns the verdict and counters; final once feed reported complete.
  data_result result() const noexcept { return writer_.result(); }
  /// Returns whether end-of-data has been consumed.
  bool complete() const noexcept { return state_ == state::done; }
  /// Prepares for the next body. `after_crlf` says whether the DATA command line
  /// ended with CRLF; when it did not (bare_lf_policy::accept), an immediate
  /// ".\r\n" is not an end marker either.
  void reset(bool after_crlf = true) noexcept;

 private:
  enum class state { line_start, dot, dot_cr, in_line, cr, done };

  detail::body_writer writer_;
  state state_ = state::line_start;
  bool after_crlf_ = true;  // the current line was preceded by a real CRLF
};

/// Applies the DATA body rules except dot-stuffing to BDAT chunks (RFC 3030):
/// bare-newline policy, line length and size limits, counting, streaming
/// across chunk boundaries (a CRLF may be split between chunks). The session
/// reads exactly the announced octets of each chunk and passes them here.
class bdat_filter {
 public:
  /// Makes a filter; with `binary` (BODY=BINARYMIME) only the size limit applies.
  explicit bdat_filter(data_limits limits = {}, bool binary = false);

  /// Takes octets of the current chunk; writes content to the sink before returning.
  void feed(std::string_view chunk_octets, output_sink& sink);
  /// Ends the message after the LAST chunk; returns the verdict and counters.
  data_result finish(output_sink& sink);
  /// Returns the counters so far.
  data_result result() const noexcept { return writer_.result(); }
  /// Prepares for the next message.
  void reset(bool binary = false) noexcept;

 private:
  detail::body_writer writer_;
  bool binary_ = false;
  bool pending_cr_ = false;  // the last octet seen was a CR whose successor is unknown
};

}  // namespace hamail::smtp

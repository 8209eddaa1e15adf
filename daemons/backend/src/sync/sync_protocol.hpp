#pragma once

// The store-to-store sync channel's wire format (docs/sync.md, ADR 0005), sans-I/O:
// framing of CRLF lines with a length limit, the command parser (server side), the
// reply parser (client side), the reply writers, and the checks every account id,
// store name and relative path goes through before it is used. No Asio, OpenSSL or
// file system calls here.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/error.hpp"

namespace hamail::backend::sync {

/// Octets of one command line, CR excluded.
inline constexpr std::size_t max_command_line = 8192;
/// Octets of one reply line, CR excluded (a `* F` line: two numbers and a path).
inline constexpr std::size_t max_reply_line = 8192;
/// Octets of a relative path inside an account tree.
inline constexpr std::size_t max_path = 4096;
/// Octets of one path component (a file or directory name).
inline constexpr std::size_t max_path_component = 255;
/// Octets of the AUTH secret.
inline constexpr std::size_t max_secret = 1024;
/// Octets of a PULL host name or address.
inline constexpr std::size_t max_host = 253;
/// Longest lease a FENCE ... LOCKED may ask for, in seconds (one day).
inline constexpr std::uint32_t max_lease_seconds = 86400;

/// The marker file at the root of a staged or installed copy: "<source store>\n". It tells
/// PULL which move a tree belongs to; LIST never shows it and PULL never touches it.
inline constexpr std::string_view incoming_marker = "hamail-incoming";
/// Prefix of the temporary names PULL fetches into (removed by the next pass when left over).
inline constexpr std::string_view fetch_temp_prefix = ".hamail-sync.";

/// Account ids as the store accepts them: 1-255 of [a-z0-9._@+-], not starting with '.', no "..".
bool valid_account_id(std::string_view id) noexcept;
/// Store names as the directory accepts them: 1-63 of [a-z0-9_-], starting with a letter or digit.
bool valid_store_name(std::string_view name) noexcept;
/// Why `path` is not an acceptable relative path inside an account tree, or nullopt when it is:
/// 1..max_path octets, not absolute, no empty, "." or ".." component, components of at most
/// max_path_component octets, no control characters (C0, DEL).
std::optional<std::string> path_problem(std::string_view path);

/// The commands of the channel.
enum class verb { auth, list, get, fence, unfence, purge, pull, discard };
/// The command's keyword ("AUTH", ...).
std::string_view to_string(verb v) noexcept;

/// One parsed, validated command.
struct command {
  verb what = verb::auth;
  std::string secret;   ///< AUTH
  std::string account;  ///< every command but AUTH
  std::string path;     ///< GET: relative to the account root
  // FENCE
  bool moved = false;               ///< FENCE ... MOVED (else LOCKED)
  std::string store;                ///< FENCE: the destination store
  std::uint32_t lease_seconds = 0;  ///< FENCE ... LOCKED
  // PULL
  std::string host;                   ///< the source's sync listener
  std::uint16_t port = 0;             ///< ditto
  bool final = false;                 ///< PULL ... FINAL
  std::optional<std::uint64_t> rate;  ///< PULL ... RATE <bytes/s>; 0 = unlimited
};

/// A command or why the line is not one (the text of the BAD reply).
struct parsed_command {
  std::optional<command> cmd;
  std::string error;  ///< set exactly when cmd is not
};

/// Parses one command line (without its line end).
parsed_command parse_command(std::string_view line);

/// What line_splitter::feed found.
enum class line_status { need_more, line, too_long };

/// One step of line_splitter::feed.
struct line_step {
  line_status status = line_status::need_more;
  std::size_t consumed = 0;  ///< octets of the input used by this step
  std::string line;          ///< the line without CR LF (status line)
};

/// Cuts a byte stream into lines ended by LF (an optional CR before it is dropped), each at
/// most `max_line` octets without the line end. A longer line is reported once as too_long
/// and the rest of it, up to and including its LF, is skipped. Holds at most max_line + 1
/// octets of a partial line.
class line_splitter {
 public:
  explicit line_splitter(std::size_t max_line) : max_line_(max_line) {}
  /// Consumes input until one line is complete, a line is found too long, or the input is
  /// used up (need_more: everything consumed). Call again with the rest.
  line_step feed(std::string_view input);
  /// Octets of the partial line held.
  std::size_t buffered() const noexcept { return partial_.size(); }

 private:
  std::size_t max_line_;
  std::string partial_;
  bool skipping_ = false;
};

/// One reply line, parsed (client side).
struct reply {
  enum class kind_t {
    ok,        ///< OK <text>
    no,        ///< NO <code> <text>
    bad,       ///< BAD <text>
    file,      ///< * F <size> <mtime_ns> <path>
    dir,       ///< * D <path>
    data,      ///< * DATA {<octets>}: that many octets follow the line
    progress,  ///< * PROGRESS <files> <bytes> <total-files> <total-bytes>
    other,     ///< another untagged line (ignored by clients)
  };
  kind_t kind = kind_t::other;
  std::string code;                         ///< NO
  std::string text;                         ///< OK, NO, BAD, other
  std::string path;                         ///< file, dir
  std::uint64_t size = 0;                   ///< file: its size; data: the octets that follow
  std::int64_t mtime_ns = 0;                ///< file: modification time, ns since the epoch
  std::uint64_t numbers[4] = {0, 0, 0, 0};  ///< progress
};

/// A reply or why the line is not one.
struct parsed_reply {
  std::optional<reply> rep;
  std::string error;  ///< set exactly when rep is not
};

/// Parses one reply line (without its line end). Paths in F and D lines are checked as
/// path_problem() does.
parsed_reply parse_reply(std::string_view line);

/// "OK <text>\r\n" ("OK\r\n" when text is empty).
std::string format_ok(std::string_view text = {});
/// "NO <code> <text>\r\n"; `code` is one upper-case word (see docs/sync.md).
std::string format_no(std::string_view code, std::string_view text);
/// The NO code for an error of this store (docs/sync.md lists them): NONEXISTENT, EXISTS,
/// LIMIT, PROTOCOL, IO, DENIED, else UNAVAILABLE.
std::string no_code_for(const error& e);
/// "BAD <text>\r\n".
std::string format_bad(std::string_view text);
/// "* F <size> <mtime_ns> <path>\r\n".
std::string format_file(std::uint64_t size, std::int64_t mtime_ns, std::string_view path);
/// "* D <path>\r\n".
std::string format_dir(std::string_view path);
/// "* DATA {<octets>}\r\n".
std::string format_data(std::uint64_t octets);
/// "* PROGRESS <files> <bytes> <total-files> <total-bytes>\r\n".
std::string format_progress(std::uint64_t files, std::uint64_t bytes, std::uint64_t total_files,
                            std::uint64_t total_bytes);

/// Replaces control characters and cuts `text` to 200 octets, for reply texts built from
/// error details.
std::string reply_text(std::string_view text);

}  // namespace hamail::backend::sync

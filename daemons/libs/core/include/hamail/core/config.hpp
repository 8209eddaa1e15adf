#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"

// Typed, validated access to a TOML configuration file. Reading never throws and
// never stops at the first mistake: every getter type-checks, records a problem in
// the document and returns its default, so an operator sees every mistake in one run.
//
//   auto doc = config::document::load_file(path);     // I/O and syntax errors
//   if (!doc) throw std::runtime_error(doc.err().detail);
//   auto root = doc->root();
//   read_server_settings(root, {"imap", "pop3"}, settings);
//   doc->finish();                                     // unknown keys
//   if (!doc->ok()) throw std::runtime_error(doc->report());
//
// toml++ stays inside config.cpp; this header only names its own types.

namespace hamail::config {

namespace detail {
struct document_state;
}

/// One problem found in a configuration file: names file, key and reason.
struct problem {
  std::string file;        ///< the file as given to load_file/parse
  std::string key;         ///< dotted path; array elements as listener[2].port (from 0)
  std::string reason;      ///< what is wrong, for an operator
  std::uint32_t line = 0;  ///< 1-based line in `file`; 0 when unknown
  /// "file:line: key: reason"; the line and key parts are left out when unknown.
  std::string to_string() const;
};

/// A view of one TOML table inside a document; getters mark keys as read and
/// record problems into the document. Valid while its document lives (moving the
/// document keeps it valid).
class section {
 public:
  /// The string at `key`; `default_value` when absent or of the wrong type.
  std::string get_string(std::string_view key, std::string default_value = {});
  /// The string at `key`; records "missing required key" (or an empty value) and
  /// returns "" when it is absent, empty or of the wrong type.
  std::string require_string(std::string_view key);
  /// The integer at `key` within [min, max]; `default_value` when absent, of the
  /// wrong type or out of range.
  std::int64_t get_integer(std::string_view key, std::int64_t default_value,
                           std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                           std::int64_t max = std::numeric_limits<std::int64_t>::max());
  /// The boolean at `key`; `default_value` when absent or of the wrong type.
  bool get_bool(std::string_view key, bool default_value);
  /// A duration: "250ms", "30s", "5m", "2h", "1d", or a bare integer of seconds.
  /// Negative and malformed values record a problem and give `default_value`.
  std::chrono::milliseconds get_duration(std::string_view key,
                                         std::chrono::milliseconds default_value);
  /// A byte count: an integer or "512", "4k"/"4KiB", "10M"/"10MiB", "1G"/"1GiB",
  /// "1T"/"1TiB" (binary multiples). Malformed values give `default_value`.
  std::uint64_t get_size(std::string_view key, std::uint64_t default_value);
  /// An array of strings; empty when absent. Elements of another type are
  /// reported (as key[i]) and skipped.
  std::vector<std::string> get_string_list(std::string_view key);
  /// A string that must be one of `allowed`; the problem's reason lists them.
  std::string get_enum(std::string_view key, std::initializer_list<std::string_view> allowed,
                       std::string default_value);
  /// The sub-table at `key`; nullopt when absent or not a table (recorded).
  std::optional<section> table(std::string_view key);
  /// The array of tables at `key` ([[key]]); empty when absent.
  std::vector<section> tables(std::string_view key);
  /// True when `key` is present, of any type. Does not mark it as read.
  bool has(std::string_view key) const;
  /// Records a problem at `key` (or at this section for an empty key), located at
  /// the key's line when present; for cross-field validation by callers.
  void add_problem(std::string_view key, std::string reason);
  /// Dotted path of this section ("" for the root, "listener[1]", "a.b").
  std::string path() const;

 private:
  friend class document;
  section(detail::document_state* doc, std::size_t table, std::string path)
      : doc_(doc), table_(table), path_(std::move(path)) {}

  detail::document_state* doc_;
  std::size_t table_;  // index into the document's table registry
  std::string path_;
};

/// `value` in double quotes with quotes, backslashes and control characters
/// escaped, for quoting what the file said inside a problem's reason.
std::string quote(std::string_view value);

/// A parsed configuration file and the problems found while reading it.
class document {
 public:
  /// Reads and parses `path`. A missing or unreadable file or a TOML syntax error is
  /// an errc::config_error whose detail is "file:line: reason".
  static result<document> load_file(const std::filesystem::path& path);
  /// Parses `text` as if read from `file_name` (for tests and embedded defaults).
  static result<document> parse(std::string_view text, std::string file_name);

  document(document&&) noexcept;
  document& operator=(document&&) noexcept;
  document(const document&) = delete;
  document& operator=(const document&) = delete;
  ~document();

  /// The top-level table.
  section root();
  /// Records "unknown key" for every key no getter has read, anywhere in the tree,
  /// with a "did you mean" hint when a key the program asked for is close. Call once
  /// after reading; calling again adds nothing new.
  void finish();
  /// Every problem recorded so far, in the order found.
  const std::vector<problem>& problems() const;
  /// True when no problem has been recorded.
  bool ok() const;
  /// All problems as one text, one "file:line: key: reason" line each, by line.
  std::string report() const;

 private:
  explicit document(std::unique_ptr<detail::document_state> state);
  std::unique_ptr<detail::document_state> state_;
};

}  // namespace hamail::config

#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hamail::admin {

/// A JSON value for `--json` output: objects keep their keys in insertion order
/// so the output is stable.
class json_value {
 public:
  using array = std::vector<json_value>;                           ///< a JSON array
  using object = std::vector<std::pair<std::string, json_value>>;  ///< a JSON object, ordered

  /// null
  json_value() = default;
  /// true/false
  json_value(bool b) : v_(b) {}  // NOLINT(google-explicit-constructor)
  /// an integer
  json_value(int n) : v_(static_cast<std::int64_t>(n)) {}  // NOLINT
  /// an integer
  json_value(std::int64_t n) : v_(n) {}  // NOLINT
  /// an integer
  json_value(std::uint64_t n) : v_(n) {}  // NOLINT
  /// a number
  json_value(double d) : v_(d) {}  // NOLINT
  /// a string
  json_value(std::string s) : v_(std::move(s)) {}  // NOLINT
  /// a string
  json_value(std::string_view s) : v_(std::string(s)) {}  // NOLINT
  /// a string
  json_value(const char* s) : v_(std::string(s)) {}  // NOLINT
  /// an array
  json_value(array a) : v_(std::move(a)) {}  // NOLINT
  /// an object
  json_value(object o) : v_(std::move(o)) {}  // NOLINT

  /// The value as JSON text, indented by two spaces per level, no trailing newline.
  std::string dump() const;

 private:
  void dump_to(std::string& out, int indent) const;
  std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double, std::string, array,
               object>
      v_{nullptr};
};

/// `text` as a JSON string literal (quoted, escaped; bytes >= 0x80 passed through).
std::string json_quote(std::string_view text);

/// A plain-text table: a header line and one line per row, columns padded to
/// their widest cell and separated by two spaces, no trailing spaces.
std::string format_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows);

/// "key: value" lines with the keys padded to the longest one.
std::string format_fields(const std::vector<std::pair<std::string, std::string>>& fields);

/// What a command produced: the human text and the JSON form of the same facts.
struct command_output {
  std::string text;  ///< printed by default (ends in a newline when not empty)
  json_value json;   ///< printed with --json
  /// The exit status after printing: a command that ran to its end but did not do all of
  /// its work (a drain with a failed move) says so here, so --json still prints the result.
  int exit_code = 0;
  std::string error;  ///< with a non-zero exit_code: one line for stderr
};

}  // namespace hamail::admin

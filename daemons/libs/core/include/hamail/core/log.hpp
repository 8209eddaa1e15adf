#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <utility>

namespace hamail::log {

/// Severity, in syslog order.
enum class level { debug, info, notice, warning, error, critical };

/// Parses "debug", "info", "notice", "warning", "error", "critical".
bool parse_level(std::string_view text, level& out) noexcept;
std::string_view to_string(level l) noexcept;

/// Where log lines go. Both sinks may be on at once.
struct options {
  level min_level = level::info;
  bool to_stderr = true;
  bool to_syslog = false;
  std::string ident = "hamail";  ///< syslog ident, also prefixed on stderr lines
  int facility = 2 << 3;         ///< syslog facility; LOG_MAIL by default
};

/// Replaces the process-wide logging options. Thread-safe.
void configure(const options& opts);
/// The options in force.
options current();
/// True when a line at `l` would be written anywhere.
bool enabled(level l) noexcept;
/// Writes one line. `session` is a session id or empty. Thread-safe.
void write(level l, std::string_view session, std::string_view text);

/// A new short id (12 base32 characters) naming one client session in logs.
std::string new_session_id();

template <class... Args>
void at(level l, std::string_view session, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(l)) write(l, session, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
  at(level::debug, {}, f, std::forward<Args>(a)...);
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
  at(level::info, {}, f, std::forward<Args>(a)...);
}
template <class... Args>
void notice(fmt::format_string<Args...> f, Args&&... a) {
  at(level::notice, {}, f, std::forward<Args>(a)...);
}
template <class... Args>
void warning(fmt::format_string<Args...> f, Args&&... a) {
  at(level::warning, {}, f, std::forward<Args>(a)...);
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... a) {
  at(level::error, {}, f, std::forward<Args>(a)...);
}
template <class... Args>
void critical(fmt::format_string<Args...> f, Args&&... a) {
  at(level::critical, {}, f, std::forward<Args>(a)...);
}

/// A logger bound to one session id, handed to session code.
class session_logger {
 public:
  explicit session_logger(std::string id) : id_(std::move(id)) {}
  const std::string& id() const noexcept { return id_; }

  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... a) const {
    at(level::debug, id_, f, std::forward<Args>(a)...);
  }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) const {
    at(level::info, id_, f, std::forward<Args>(a)...);
  }
  template <class... Args>
  void notice(fmt::format_string<Args...> f, Args&&... a) const {
    at(level::notice, id_, f, std::forward<Args>(a)...);
  }
  template <class... Args>
  void warning(fmt::format_string<Args...> f, Args&&... a) const {
    at(level::warning, id_, f, std::forward<Args>(a)...);
  }
  template <class... Args>
  void error(fmt::format_string<Args...> f, Args&&... a) const {
    at(level::error, id_, f, std::forward<Args>(a)...);
  }

 private:
  std::string id_;
};

}  // namespace hamail::log

#include "hamail/core/log.hpp"

#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace hamail::log {

namespace {

constexpr std::array<std::string_view, 6> level_names = {"debug",   "info",  "notice",
                                                         "warning", "error", "critical"};

// Text longer than this is cut, so one client cannot make a megabyte log line.
constexpr std::size_t max_text_bytes = 8192;

struct sink_state {
  std::mutex mutex;
  options opts;
  std::string syslog_ident;  // openlog() keeps the pointer, so the string lives here
  bool syslog_open = false;
};

// Never destroyed: threads and static destructors may log during exit.
sink_state& sinks() {
  static sink_state* s = new sink_state;
  return *s;
}

std::atomic<int> min_level{static_cast<int>(options{}.min_level)};
std::atomic<bool> any_sink{options{}.to_stderr || options{}.to_syslog};

int syslog_priority(level l) noexcept {
  switch (l) {
    case level::debug:
      return LOG_DEBUG;
    case level::info:
      return LOG_INFO;
    case level::notice:
      return LOG_NOTICE;
    case level::warning:
      return LOG_WARNING;
    case level::error:
      return LOG_ERR;
    case level::critical:
      return LOG_CRIT;
  }
  return LOG_ERR;
}

/// Appends `text` with control characters escaped: a client cannot start a new
/// log line or rewrite the terminal through anything we log on its behalf.
void append_escaped(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned char c : text) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

/// "level [session] text", escaped and capped: the part both sinks share.
std::string format_message(level l, std::string_view session, std::string_view text) {
  std::string out;
  out.reserve(text.size() + session.size() + 16);
  out += to_string(l);
  out += ' ';
  if (!session.empty()) {
    out += '[';
    append_escaped(out, session);
    out += "] ";
  }
  if (text.size() > max_text_bytes) {
    append_escaped(out, text.substr(0, max_text_bytes));
    out += " [... ";
    out += std::to_string(text.size() - max_text_bytes);
    out += " more bytes]";
  } else {
    append_escaped(out, text);
  }
  return out;
}

/// "2026-11-24T15:30:01.123Z", UTC.
std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  char buffer[40];
  const auto n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buffer, n);
  const auto frac = static_cast<int>(ms % 1000);
  out += '.';
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
  out += 'Z';
  return out;
}

void write_all(int fd, std::string_view data) noexcept {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to complain to
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Apply under the sink mutex.
void apply_syslog(sink_state& s, const options& opts) {
  const bool changed = opts.ident != s.opts.ident || opts.facility != s.opts.facility;
  if (s.syslog_open && (!opts.to_syslog || changed)) {
    ::closelog();
    s.syslog_open = false;
  }
  if (opts.to_syslog && !s.syslog_open) {
    s.syslog_ident = opts.ident;
    ::openlog(s.syslog_ident.c_str(), LOG_PID | LOG_NDELAY, opts.facility);
    s.syslog_open = true;
  }
}

std::uint64_t make_seed() noexcept {
  std::uint64_t seed =
      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  seed ^= static_cast<std::uint64_t>(::getpid()) << 40;
  try {
    std::random_device rd;
    seed ^= (static_cast<std::uint64_t>(rd()) << 32) | rd();
  } catch (...) {
    // No entropy source: time and pid still differ between restarts.
  }
  return seed;
}

}  // namespace

bool parse_level(std::string_view text, level& out) noexcept {
  for (std::size_t i = 0; i < level_names.size(); ++i) {
    if (text == level_names[i]) {
      out = static_cast<level>(i);
      return true;
    }
  }
  return false;
}

std::string_view to_string(level l) noexcept {
  const auto i = static_cast<std::size_t>(l);
  return i < level_names.size() ? level_names[i] : "unknown";
}

void configure(const options& opts) {
  auto& s = sinks();
  std::lock_guard lock(s.mutex);
  apply_syslog(s, opts);
  s.opts = opts;
  min_level.store(static_cast<int>(opts.min_level), std::memory_order_relaxed);
  any_sink.store(opts.to_stderr || opts.to_syslog, std::memory_order_relaxed);
}

options current() {
  auto& s = sinks();
  std::lock_guard lock(s.mutex);
  return s.opts;
}

bool enabled(level l) noexcept {
  return any_sink.load(std::memory_order_relaxed) &&
         static_cast<int>(l) >= min_level.load(std::memory_order_relaxed);
}

void write(level l, std::string_view session, std::string_view text) {
  if (!enabled(l)) return;
  const std::string message = format_message(l, session, text);
  auto& s = sinks();
  std::lock_guard lock(s.mutex);
  // Checked again under the lock: configure() may have run since enabled().
  if (static_cast<int>(l) < static_cast<int>(s.opts.min_level)) return;
  if (s.opts.to_stderr) {
    std::string line = timestamp();
    line += ' ';
    line += s.opts.ident;
    line += '[';
    line += std::to_string(::getpid());
    line += "]: ";
    line += message;
    line += '\n';
    // One write() per line, so lines from several processes sharing the
    // descriptor do not interleave within a line.
    write_all(STDERR_FILENO, line);
  }
  if (s.opts.to_syslog && s.syslog_open) ::syslog(syslog_priority(l), "%s", message.c_str());
}

std::string new_session_id() {
  // A counter run through a bijection of 60-bit values: unique within the
  // process until 2^60 ids, and a random starting point so ids from one run
  // are unlikely to repeat those of the previous one.
  static const std::uint64_t seed = make_seed();
  static std::atomic<std::uint64_t> counter{0};
  constexpr std::uint64_t mask = (std::uint64_t{1} << 60) - 1;

  std::uint64_t x = (seed + counter.fetch_add(1, std::memory_order_relaxed)) & mask;
  // Each step (xor with a right shift, multiply by an odd constant mod 2^60) is
  // invertible, so distinct inputs give distinct ids.
  x ^= x >> 31;
  x = (x * 0x7fb5d329728ea185ULL) & mask;
  x ^= x >> 27;
  x = (x * 0x81dadef4bc2dd44dULL) & mask;
  x ^= x >> 33;

  static constexpr char alphabet[] =
      "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford base32, lowercase
  std::string id(12, '0');
  for (int i = 11; i >= 0; --i) {
    id[static_cast<std::size_t>(i)] = alphabet[x & 31];
    x >>= 5;
  }
  return id;
}

}  // namespace hamail::log

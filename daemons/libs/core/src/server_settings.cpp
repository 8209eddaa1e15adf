#include "hamail/core/server_settings.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

#include "hamail/core/config.hpp"

namespace hamail {

namespace {

struct facility_name {
  std::string_view name;
  int value;
};

constexpr std::array<facility_name, 10> facilities = {{
    {"mail", LOG_MAIL},
    {"daemon", LOG_DAEMON},
    {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3},
    {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6},
    {"local7", LOG_LOCAL7},
}};

constexpr std::size_t max_connections_limit = 10'000'000;

void read_log(config::section& log, log::options& out) {
  const std::string level_text =
      log.get_enum("level", {"debug", "info", "notice", "warning", "error", "critical"},
                   std::string(log::to_string(out.min_level)));
  log::parse_level(level_text, out.min_level);
  out.to_stderr = log.get_bool("stderr", out.to_stderr);
  out.to_syslog = log.get_bool("syslog", out.to_syslog);

  std::string default_facility = "mail";
  for (const auto& f : facilities) {
    if (f.value == out.facility) default_facility = f.name;
  }
  const std::string facility = log.get_enum("syslog_facility",
                                            {"mail", "daemon", "local0", "local1", "local2",
                                             "local3", "local4", "local5", "local6", "local7"},
                                            default_facility);
  for (const auto& f : facilities) {
    if (f.name == facility) out.facility = f.value;
  }
}

/// Records a problem at `key` unless `path` names a readable regular file.
void check_readable_file(config::section& tls, std::string_view key, const std::string& path) {
  if (path.empty()) return;
  // Daemons change directory at start-up, so a relative path would mean
  // something else by the time the file is opened again.
  if (path.front() != '/') {
    tls.add_problem(key, config::quote(path) + " must be an absolute path");
    return;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    tls.add_problem(key, "cannot read " + config::quote(path) + ": " + std::strerror(errno));
    return;
  }
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  if (!regular) tls.add_problem(key, config::quote(path) + " is not a regular file");
}

void read_tls(config::section& tls, tls_settings& out) {
  out.cert_file = tls.get_string("cert", out.cert_file);
  out.key_file = tls.get_string("key", out.key_file);
  out.chain_file = tls.get_string("chain", out.chain_file);
  out.ciphers = tls.get_string("ciphers", out.ciphers);
  out.ciphersuites = tls.get_string("ciphersuites", out.ciphersuites);
  out.min_version = tls.get_enum("min_version", {"TLSv1.2", "TLSv1.3"}, out.min_version);

  if (!out.cert_file.empty() && out.key_file.empty())
    tls.add_problem("key", "cert is set, so key is required too");
  if (out.cert_file.empty() && !out.key_file.empty())
    tls.add_problem("cert", "key is set, so cert is required too");
  check_readable_file(tls, "cert", out.cert_file);
  check_readable_file(tls, "key", out.key_file);
  check_readable_file(tls, "chain", out.chain_file);
}

/// A session deadline: 0 (none) or at least 1s.
std::chrono::milliseconds read_session_timeout(config::section& s,
                                               std::chrono::milliseconds fallback) {
  const auto t = s.get_duration("session_timeout", fallback);
  if (t.count() != 0 && t < std::chrono::seconds(1)) {
    s.add_problem("session_timeout", "must be 0 (no limit) or at least 1s");
    return fallback;
  }
  return t;
}

void read_limits(config::section& limits, limits_settings& out) {
  const auto max = static_cast<std::int64_t>(max_connections_limit);
  out.max_connections = static_cast<std::size_t>(limits.get_integer(
      "max_connections", static_cast<std::int64_t>(out.max_connections), 1, max));
  out.max_connections_per_ip = static_cast<std::size_t>(limits.get_integer(
      "max_connections_per_ip", static_cast<std::int64_t>(out.max_connections_per_ip), 1, max));
  if (out.max_connections_per_ip > out.max_connections) {
    limits.add_problem("max_connections_per_ip", std::to_string(out.max_connections_per_ip) +
                                                     " is larger than max_connections (" +
                                                     std::to_string(out.max_connections) + ")");
  }

  const auto idle = limits.get_duration("idle_timeout", out.idle_timeout);
  if (idle < std::chrono::seconds(1)) {
    limits.add_problem("idle_timeout", "must be at least 1s");
  } else {
    out.idle_timeout = idle;
  }
  out.ipv4_prefix =
      static_cast<unsigned>(limits.get_integer("ipv4_prefix", out.ipv4_prefix, 8, 32));
  out.ipv6_prefix =
      static_cast<unsigned>(limits.get_integer("ipv6_prefix", out.ipv6_prefix, 16, 128));
  out.session_timeout = read_session_timeout(limits, out.session_timeout);
  out.drain_timeout = limits.get_duration("drain_timeout", out.drain_timeout);
}

/// A listener's own connection limits, checked against each other and [limits].
void read_listener_limits(config::section& l, const limits_settings& defaults,
                          listener_settings& out) {
  const auto max = static_cast<std::int64_t>(max_connections_limit);
  if (l.has("max_connections")) {
    out.max_connections = static_cast<std::size_t>(l.get_integer(
        "max_connections", static_cast<std::int64_t>(defaults.max_connections), 1, max));
  }
  if (l.has("max_connections_per_ip")) {
    out.max_connections_per_ip = static_cast<std::size_t>(
        l.get_integer("max_connections_per_ip",
                      static_cast<std::int64_t>(defaults.max_connections_per_ip), 1, max));
  }
  const auto total = out.max_connections.value_or(defaults.max_connections);
  const auto per_ip = out.max_connections_per_ip.value_or(defaults.max_connections_per_ip);
  if (per_ip > total && (out.max_connections || out.max_connections_per_ip)) {
    l.add_problem(out.max_connections_per_ip ? "max_connections_per_ip" : "max_connections",
                  "max_connections_per_ip (" + std::to_string(per_ip) +
                      ") is larger than max_connections (" + std::to_string(total) + ")");
  }
  if (l.has("session_timeout")) {
    out.session_timeout = read_session_timeout(l, defaults.session_timeout);
  }
}

/// The address in network byte order with its family, or nullopt (and the reason).
std::optional<std::string> parse_address(const std::string& text, std::string& reason) {
  unsigned char buffer[16];
  if (::inet_pton(AF_INET, text.c_str(), buffer) == 1)
    return "4" + std::string(reinterpret_cast<char*>(buffer), 4);
  if (::inet_pton(AF_INET6, text.c_str(), buffer) == 1)
    return "6" + std::string(reinterpret_cast<char*>(buffer), 16);

  if (!text.empty() && text.front() == '[')
    reason =
        config::quote(text) + " is not a numeric address; write IPv6 addresses without brackets";
  else if (text.find('%') != std::string::npos)
    reason = config::quote(text) +
             " is not a numeric address; scoped IPv6 addresses (with %interface) are not supported";
  else if (std::any_of(text.begin(), text.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }) &&
           text.find(':') == std::string::npos)
    reason = config::quote(text) +
             " is not a numeric IPv4 or IPv6 address; host names are not resolved, give the "
             "address to listen on "
             "(\"0.0.0.0\" or \"::\" for any)";
  else
    reason = config::quote(text) + " is not a numeric IPv4 or IPv6 address";
  return std::nullopt;
}

/// An address from parse_address() as text, an IPv4-mapped IPv6 address as
/// IPv4 (as connections show their peers).
std::string address_text(const std::string& bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data() + 1);
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (bytes[0] == '4') {
    ::inet_ntop(AF_INET, raw, text, sizeof text);
  } else if (std::equal(mapped, mapped + 12, raw)) {
    ::inet_ntop(AF_INET, raw + 12, text, sizeof text);
  } else {
    ::inet_ntop(AF_INET6, raw, text, sizeof text);
  }
  return text;
}

std::string protocol_list(const std::vector<std::string>& allowed) {
  std::string out;
  for (const auto& p : allowed) {
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

void read_listeners(config::section& root, const std::vector<std::string>& allowed_protocols,
                    const tls_settings& tls, const limits_settings& limits,
                    std::vector<listener_settings>& out) {
  auto sections = root.tables("listener");
  if (sections.empty()) {
    root.add_problem("listener", "at least one [[listener]] is required");
    return;
  }

  std::map<std::string, std::string>
      bound;  // address bytes + port -> path of the listener using it
  for (auto& l : sections) {
    listener_settings listener;
    listener.protocol = l.require_string("protocol");
    if (!listener.protocol.empty() && std::find(allowed_protocols.begin(), allowed_protocols.end(),
                                                listener.protocol) == allowed_protocols.end()) {
      l.add_problem("protocol", config::quote(listener.protocol) +
                                    " is not served by this daemon; expected one of: " +
                                    protocol_list(allowed_protocols));
    }
    listener.name = l.get_string("name", listener.protocol);

    listener.address = l.require_string("address");
    std::optional<std::string> address_bytes;
    if (!listener.address.empty()) {
      std::string reason;
      address_bytes = parse_address(listener.address, reason);
      if (!address_bytes) l.add_problem("address", std::move(reason));
    }

    const bool has_port = l.has("port");
    if (!has_port) l.add_problem("port", "missing required key");
    const auto port = l.get_integer("port", -1, 0, 65535);
    if (port >= 0) listener.port = static_cast<std::uint16_t>(port);

    const std::string mode = l.get_enum("tls", {"none", "starttls", "implicit"}, "none");
    listener.tls = mode == "starttls"   ? tls_mode::starttls
                   : mode == "implicit" ? tls_mode::implicit
                                        : tls_mode::none;
    if (listener.tls != tls_mode::none && (tls.cert_file.empty() || tls.key_file.empty())) {
      l.add_problem("tls", "tls = " + config::quote(mode) + " needs cert and key in [tls]");
    }

    // Port 0 asks the kernel for a free port, so two of them never collide.
    if (address_bytes && port > 0) {
      const std::string key = *address_bytes + ":" + std::to_string(port);
      auto [it, inserted] = bound.emplace(key, l.path());
      if (!inserted) {
        l.add_problem("port", "address " + listener.address + " port " + std::to_string(port) +
                                  " is already used by " + it->second);
      }
    }
    read_listener_limits(l, limits, listener);
    for (const auto& a : l.get_string_list("proxy_protocol_from")) {
      std::string reason;
      auto bytes = parse_address(a, reason);
      if (!bytes) {
        l.add_problem("proxy_protocol_from", std::move(reason));
        continue;
      }
      listener.proxy_protocol_from.push_back(address_text(*bytes));
    }
    out.push_back(std::move(listener));
  }
}

}  // namespace

void read_server_settings(config::section& root, const std::vector<std::string>& allowed_protocols,
                          server_settings& out) {
  if (auto log = root.table("log")) read_log(*log, out.log);
  if (auto tls = root.table("tls")) read_tls(*tls, out.tls);
  if (auto limits = root.table("limits")) read_limits(*limits, out.limits);
  read_listeners(root, allowed_protocols, out.tls, out.limits, out.listeners);
}

}  // namespace hamail

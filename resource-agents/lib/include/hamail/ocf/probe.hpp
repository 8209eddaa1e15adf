#pragma once

// Protocol probes for monitor depths 10 and 20: a small blocking SMTP/LMTP client with a
// deadline, STARTTLS and AUTH PLAIN. Agents run briefly and alone, so plain blocking I/O
// with poll() is the simplest correct tool here (the daemons' data path uses Asio).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace hamail::ocf {

struct probe_target {
  std::string address;  ///< numeric IPv4/IPv6 address to connect to
  std::uint16_t port = 0;
  bool lmtp = false;          ///< LHLO instead of EHLO
  bool implicit_tls = false;  ///< TLS from the first byte (submissions, port 465)
};

struct probe_credentials {
  std::string user;
  std::string password;
};

/// The result of a probe: ok, or what went wrong in one line ("connect 10.0.0.5:25:
/// Connection refused", "NOOP answered 421 4.3.2 ...").
struct probe_result {
  bool ok = false;
  bool refused = false;  ///< nothing listens there (connection refused)
  std::string detail;
};

/// Greeting 220, EHLO/LHLO 250, NOOP 250, QUIT. With credentials: STARTTLS when offered
/// (the certificate is not verified: the agent checks its own service, by address), then
/// AUTH PLAIN must answer 235.
probe_result smtp_probe(const probe_target& target, std::chrono::steady_clock::time_point deadline,
                        const std::optional<probe_credentials>& credentials = std::nullopt);

}  // namespace hamail::ocf

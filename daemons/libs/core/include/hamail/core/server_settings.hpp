#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hamail/core/log.hpp"

namespace hamail::config {
class section;
}

namespace hamail {

/// How a listener speaks TLS.
enum class tls_mode {
  none,      ///< plain text; STARTTLS not offered
  starttls,  ///< plain text with STARTTLS (SMTP, LMTP, IMAP, POP3 STLS)
  implicit,  ///< TLS from the first byte (465, 993, 995)
};

/// Server certificate and protocol policy (`[tls]`).
struct tls_settings {
  std::string cert_file;     ///< PEM: leaf, optionally followed by its chain
  std::string key_file;      ///< PEM private key
  std::string chain_file;    ///< PEM intermediates; optional
  std::string ciphers;       ///< OpenSSL cipher list for TLS 1.2; empty = OpenSSL default
  std::string ciphersuites;  ///< TLS 1.3 suites; empty = OpenSSL default
  std::string min_version = "TLSv1.2";  ///< "TLSv1.2" or "TLSv1.3"
  bool configured() const noexcept { return !cert_file.empty(); }
};

/// One address a daemon accepts connections on (`[[listener]]`).
struct listener_settings {
  std::string name;        ///< label for logs; defaults to protocol
  std::string protocol;    ///< "smtp", "submission", "lmtp", "imap", "pop3", ...
  std::string address;     ///< numeric IPv4 or IPv6 address; "::" or "0.0.0.0" for any
  std::uint16_t port = 0;  ///< 0 lets the kernel choose (tests)
  tls_mode tls = tls_mode::none;
  /// This listener's own connection limit; unset: [limits] max_connections.
  std::optional<std::size_t> max_connections;
  /// This listener's own per-client limit; unset: [limits] max_connections_per_ip.
  std::optional<std::size_t> max_connections_per_ip;
  /// This listener's whole-session deadline; unset: [limits] session_timeout.
  std::optional<std::chrono::milliseconds> session_timeout;
  /// Load balancers (HAProxy, ...) that begin every connection with a PROXY
  /// protocol header (v1 or v2) naming the real client: their IP addresses, in
  /// the form connection::remote_address() gives. A connection from one of
  /// them must start with the header; connections from anywhere else are
  /// served as they come (a header from them is just bad protocol input).
  std::vector<std::string> proxy_protocol_from;
};

/// Connection admission and timing (`[limits]`). Each listener counts its own
/// connections, so a flood on one (SMTP on port 25) never takes the slots of
/// another (LMTP from the proxies).
struct limits_settings {
  std::size_t max_connections = 5000;       ///< per listener, unless the listener sets its own
  std::size_t max_connections_per_ip = 50;  ///< per client key (see ipv6_prefix) and listener
  unsigned ipv4_prefix = 32;                ///< IPv4 clients counted per /ipv4_prefix network
  unsigned ipv6_prefix = 64;                ///< IPv6 clients counted per /ipv6_prefix network
  std::chrono::milliseconds idle_timeout =
      std::chrono::minutes(30);  ///< no client bytes for this long (protocols without their own)
  /// A session ends after this long, whatever it does; 0 = no limit.
  std::chrono::milliseconds session_timeout = std::chrono::hours(1);
  std::chrono::milliseconds drain_timeout = std::chrono::seconds(30);  ///< SIGTERM grace period
};

/// The sections every hamail daemon shares.
struct server_settings {
  log::options log;
  tls_settings tls;
  limits_settings limits;
  std::vector<listener_settings> listeners;
};

/// Reads `[log]`, `[tls]`, `[limits]` and `[[listener]]` from `root` into `out`,
/// recording every problem in the section's document. `allowed_protocols` lists
/// the listener protocols this daemon serves.
void read_server_settings(config::section& root, const std::vector<std::string>& allowed_protocols,
                          server_settings& out);

}  // namespace hamail

#pragma once

// The configuration of one hamail-proxy instance (a frontend): what it listens
// on, how it checks logins (the same [auth] and [directory] tables as
// hamail-backend) and how it reaches the stores' backends.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/core/server_settings.hpp"
#include "hamail/directory/daemon_settings.hpp"
#include "hamail/smtpd/settings.hpp"

namespace hamail::proxy {

/// The instance (`[proxy]`).
struct instance_settings {
  std::string name = "proxy";         ///< for logs and the default runtime directory
  std::string hostname;               ///< in greetings; default: gethostname
  std::filesystem::path runtime_dir;  ///< pid file and bound-listener list; /run/hamail/<name>
  std::filesystem::path pid_file;     ///< default <runtime_dir>/hamail-proxy.pid
  /// Where SMTP message bodies wait while they are passed on to the stores:
  /// unnamed files (O_TMPFILE), gone when the transaction ends or the proxy
  /// dies. Default <runtime_dir>/spool; put it on a disk when /run is small.
  std::filesystem::path spool_dir;
  /// Upstream frontends (another hamail-proxy, a Dovecot director) whose IMAP ID
  /// x-originating-ip/x-originating-port/x-session-id/x-proxy-ttl and POP3
  /// XCLIENT ADDR/PORT/SESSION/TTL are believed: their IP addresses.
  std::vector<std::string> trusted_proxies;
};

/// A store pinned in the configuration (`[[backend.store]]`): used instead of
/// the directory's record of the store with that name.
struct static_store {
  std::string name;
  std::string address;  ///< IP address or host name of the store's service address
  std::uint16_t imap_port = 143;
  std::uint16_t pop3_port = 110;
  std::uint16_t lmtp_port = 24;
};

/// How the proxy reaches and logs in to the stores' backends (`[backend]`).
struct backend_settings {
  /// The proxy's own account on the backends (listed in their [imap]/[pop3]
  /// proxy_logins): it logs in with SASL PLAIN naming the user as
  /// authorization identity.
  std::string login;
  /// File holding that account's password (one line; a trailing newline is stripped).
  std::filesystem::path password_file;
  std::string password;  ///< read from password_file at load time; never logged
  /// TLS towards the backends: "none", "starttls" (STARTTLS/STLS after the
  /// greeting) or "implicit" (TLS from the first byte, ports 993/995 then).
  /// When set, TLS is required: a backend that does not offer it is a failure.
  tls_mode tls = tls_mode::none;
  /// PEM CA bundle the backends' certificates must chain to; empty: the system's.
  std::string ca_file;
  /// Check that the certificate names the store's service host (or address).
  bool verify_name = true;
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(3);  ///< TCP connect
  /// Greeting, TLS handshake and the login exchange of one attempt together.
  std::chrono::milliseconds login_timeout = std::chrono::seconds(10);
  /// How long a backend that refuses, times out or hangs is retried before the
  /// client gets the protocol's temporary failure: long enough to cover a
  /// store's failover.
  std::chrono::milliseconds retry_for = std::chrono::seconds(15);
  std::chrono::milliseconds retry_delay = std::chrono::milliseconds(250);  ///< first backoff
  std::chrono::milliseconds retry_max_delay = std::chrono::seconds(2);     ///< backoff cap
  /// How many proxies a login may cross (a proxy loop ends when it reaches 0).
  unsigned max_hops = 3;
  /// When an established backend connection drops, its clients are told and
  /// disconnected after a random delay up to this long, so that a failed store
  /// does not make all its clients reconnect in the same instant.
  std::chrono::milliseconds disconnect_delay = std::chrono::seconds(3);
  /// A proxied session with no byte either way for this long is closed (the
  /// backends have their own, shorter, autologout).
  std::chrono::milliseconds relay_idle_timeout = std::chrono::hours(1);
  /// How long a store's address read from the directory is used before it is read again.
  std::chrono::milliseconds store_cache_ttl = std::chrono::seconds(30);
  std::vector<static_store> stores;  ///< pinned stores
};

/// Pre-login policy of the IMAP or POP3 frontend (`[imap]`, `[pop3]`).
struct login_phase_settings {
  bool login_without_tls = false;  ///< allow passwords over plain text
  std::chrono::milliseconds idle_timeout_before_login = std::chrono::seconds(60);
  std::size_t max_errors_before_login = 5;  ///< bad commands or failed logins, then close
};

/// Where the SMTP frontend sends mail (`[smtp]`, besides the shared keys).
struct smtp_routing_settings {
  /// Domains whose mail is for the stores: an address there that the
  /// directory does not know is refused 550. Lower-case.
  std::vector<std::string> local_domains;
  /// "host" or "host:port" (port 25 by default) of the MTA that takes mail
  /// for other domains from authenticated clients; empty: such mail is refused.
  std::string smarthost;
  std::string smarthost_host;         ///< from smarthost
  std::uint16_t smarthost_port = 25;  ///< from smarthost
  /// STARTTLS towards the smarthost: "none", "opportunistic" or "required".
  std::string smarthost_tls = "opportunistic";
  /// PEM CA bundle for the smarthost's certificate; empty: the system's.
  std::string smarthost_ca_file;
};

/// The whole configuration of one hamail-proxy instance.
struct proxy_config {
  std::filesystem::path file;  ///< where it was read from
  instance_settings instance;
  backend_settings backend;
  login_phase_settings imap;
  login_phase_settings pop3;
  smtpd::smtp_settings smtp;  ///< the SMTP/submission listeners' policy
  smtp_routing_settings smtp_routing;
  directory::auth_settings auth;
  directory::directory_settings directory;
  server_settings server;
};

/// Reads and validates a proxy configuration file. The error's detail lists
/// every problem as "file:line: key: reason", one per line.
result<proxy_config> load_proxy_config(const std::filesystem::path& path);

}  // namespace hamail::proxy

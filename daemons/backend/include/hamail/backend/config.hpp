#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/core/server_settings.hpp"
#include "hamail/directory/daemon_settings.hpp"
#include "hamail/smtpd/settings.hpp"

namespace hamail::backend {

using directory::auth_settings;
using directory::directory_settings;

/// Which store this daemon serves and where it keeps its files (`[store]`).
struct store_settings {
  std::string name;                ///< the store's name as the directory records it
  std::filesystem::path data_dir;  ///< the store's volume (DRBD-backed in production)
  std::string hostname;  ///< for greetings, Received and Maildir names; default: gethostname
  std::filesystem::path
      runtime_dir;                 ///< pid file and bound-listener list; default /run/hamail/<name>
  std::filesystem::path pid_file;  ///< default <runtime_dir>/hamail-backend.pid
  bool fsync = true;               ///< false only for throwaway test stores
  unsigned blocking_threads = 8;   ///< threads for store I/O (message files, fsync, index)
};

using smtpd::sender_grant;
using smtpd::smtp_settings;

/// The IMAP service (`[imap]`).
struct imap_settings {
  bool login_without_tls = false;  ///< allow LOGIN and AUTHENTICATE PLAIN/LOGIN over plain text
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(30);  ///< logged in (RFC 9051 §5.4)
  std::chrono::milliseconds idle_timeout_before_login =
      std::chrono::seconds(60);                 ///< before LOGIN/AUTHENTICATE
  std::uint64_t max_append_size = 50ull << 20;  ///< octets of one APPEND; advertised as APPENDLIMIT
  std::size_t max_errors = 20;                  ///< BAD commands before * BYE
  std::size_t max_errors_before_login = 5;      ///< BAD or failed logins before login
  std::size_t max_line = 65536;                 ///< octets of a command line outside literals
  std::size_t max_sequence_ranges = 10000;      ///< parts of one sequence set
  std::size_t structure_cache_size = 64u << 20;  ///< octets of parsed MIME structures kept
  bool create_special_use = true;  ///< create Drafts, Sent, Trash, Junk, Archive at first login
  /// Frontends (hamail-proxy) allowed to log in for a user with SASL PLAIN's authorization
  /// identity and to give the client's address in ID x-originating-ip: their IP addresses.
  std::vector<std::string> trusted_proxies;
  /// Logins of the proxies' own accounts: from a trusted proxy address, such a login
  /// may name another account as SASL PLAIN authorization identity and acts as it.
  std::vector<std::string> proxy_logins;
};

/// The POP3 service (`[pop3]`).
struct pop3_settings {
  bool login_without_tls = false;  ///< allow USER/PASS and AUTH PLAIN/LOGIN over plain text
  /// Logged in and silent for this long: the session ends (RFC 1939 §3: at least 10 minutes).
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(10);
  std::chrono::milliseconds idle_timeout_before_login =
      std::chrono::seconds(60);             ///< before USER/PASS or AUTH succeeds
  std::size_t max_errors = 20;              ///< -ERR answers to bad commands before closing
  std::size_t max_errors_before_login = 5;  ///< bad commands or failed logins before login
  /// One POP3 session per account at a time; a second login gets -ERR [IN-USE]
  /// (RFC 1939 §4). Off by default, as in Dovecot: the snapshot view and the
  /// atomic UPDATE already keep concurrent sessions consistent.
  bool lock_mailbox = false;
  /// Messages RETR'd in a session that ends with QUIT get \Seen (as Dovecot
  /// does unless pop3_no_flag_updates), so IMAP shows them as read.
  bool mark_seen = true;
  /// Minimum time between two POP3 logins of one account (RFC 2449 LOGIN-DELAY);
  /// 0: none. Advertised in CAPA, enforced with -ERR [LOGIN-DELAY].
  std::chrono::seconds login_delay{0};
  /// The EXPIRE capability's argument (RFC 2449 §6.7): "NEVER" or a number of
  /// days; hamail itself deletes nothing, so say what the site's policy is.
  std::string expire = "NEVER";
  /// As [imap] trusted_proxies: frontends that may log in for a user and send XCLIENT.
  std::vector<std::string> trusted_proxies;
  /// As [imap] proxy_logins.
  std::vector<std::string> proxy_logins;
};

/// Default quota and what exceeding it answers (`[quota]`).
struct quota_settings {
  std::uint64_t default_bytes = 0;     ///< 0 = unlimited
  std::uint64_t default_messages = 0;  ///< 0 = unlimited
  bool permanent = false;              ///< over quota: 552 5.2.2 instead of 452 4.2.2
};

/// The store-to-store sync channel of account moves (`[sync]`, docs/sync.md).
struct sync_settings {
  /// The cluster's shared secret (first line of the file); required with a sync listener.
  std::filesystem::path secret_file;
  /// Addresses that may connect to the sync listener (as connections show them); none: all
  /// are refused.
  std::vector<std::string> allowed_from;
  /// Default PULL rate in bytes/s of fetched data when PULL gives no RATE; 0: unlimited.
  std::uint64_t rate_limit = 0;
  /// CA certificates PULL trusts for the source's certificate; empty: the system's store.
  std::string ca_file;
  /// PULL checks that the source's certificate names the host it connects to.
  bool verify_hostname = true;
  /// Longest wait for one network operation of a PULL (connect, a reply, a chunk).
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

/// The whole configuration of one hamail-backend instance.
struct backend_config {
  std::filesystem::path file;  ///< where it was read from
  store_settings store;
  smtp_settings smtp;
  bool accept_other_stores = false;  ///< [smtp]: deliver for accounts placed on another store
  /// [smtp] trusted_proxies: the hamail-proxy addresses whose XCLIENT is believed.
  std::vector<std::string> smtp_trusted_proxies;
  imap_settings imap;
  pop3_settings pop3;
  quota_settings quota;
  sync_settings sync;
  auth_settings auth;
  directory_settings directory;
  server_settings server;
};

/// Reads and validates a backend configuration file. The error's detail lists
/// every problem as "file:line: key: reason", one per line.
result<backend_config> load_backend_config(const std::filesystem::path& path);

}  // namespace hamail::backend

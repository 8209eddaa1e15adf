#pragma once

// A small blocking client connection with a deadline: a non-blocking socket driven with poll(),
// optionally TLS (OpenSSL; the certificate always verified). For short-lived programs that do a
// few sequential exchanges: the OCF agents' probes and hamail-admin's sync client. The daemons'
// data path uses Asio instead.

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace hamail::blockio {

/// What went wrong, in one line ("connect 10.0.0.5:25: Connection refused").
struct client_status {
  bool refused = false;  ///< nothing listens there (connection refused)
  std::string detail;
};

class client_connection {
 public:
  using clock = std::chrono::steady_clock;

  /// Every wait ends at `deadline`; `where` prefixes error details (e.g. "10.0.0.5:25").
  client_connection(clock::time_point deadline, std::string where);
  ~client_connection();
  client_connection(const client_connection&) = delete;
  client_connection& operator=(const client_connection&) = delete;

  /// Moves the deadline (a long exchange with progress in between).
  void set_deadline(clock::time_point deadline) noexcept { deadline_ = deadline; }

  /// Connects to a numeric IPv4/IPv6 address.
  bool connect(const std::string& address, std::uint16_t port, client_status& r);
  /// TLS client handshake (TLS 1.2 at least), the certificate verified: chain against
  /// `ca_file` (empty: the system's trust store), name against `server_name` (a DNS name, or an
  /// address for IP SANs; empty: `address` against the IP SANs).
  bool start_tls(const std::string& address, const std::string& ca_file,
                 const std::string& server_name, client_status& r);
  /// Writes all of `data`.
  bool send(const std::string& data, client_status& r);
  /// Reads one line (without its CRLF; a bare LF also ends it), at most 64 KiB.
  bool line(std::string& out, client_status& r, const char* what);
  /// Reads exactly `n` bytes (a body with a Content-Length, an IMAP literal).
  bool bytes(std::size_t n, std::string& out, client_status& r, const char* what);
  /// Reads until the server closes the connection, keeping at most `limit` bytes.
  bool until_closed(std::size_t limit, std::string& out, client_status& r, const char* what);

 private:
  bool fill(client_status& r, const char* what);
  // The end of the stream where the caller expects it (an HTTP body without a length).
  bool closed();
  bool wait(short events, client_status& r, const char* what);
  bool tls_wait(int rc, client_status& r, const char* what);
  bool sys_fail(client_status& r, const char* what);
  bool tls_fail(client_status& r);

  clock::time_point deadline_;
  std::string where_;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
  bool eof_ok_ = false;
  bool eof_ = false;
  static constexpr std::size_t max_line = 64 * 1024;
};

}  // namespace hamail::blockio

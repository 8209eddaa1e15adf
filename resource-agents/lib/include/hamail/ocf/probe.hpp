#pragma once

// Protocol probes for monitor depths 10 and 20: small blocking SMTP/LMTP, HTTP and IMAP
// clients with a deadline, STARTTLS and verified TLS. Agents run briefly and alone, so plain
// blocking I/O with poll() is the simplest correct tool here (the daemons' data path uses Asio).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "hamail/blockio/client_connection.hpp"

namespace hamail::ocf {

struct probe_target {
  std::string address;  ///< numeric IPv4/IPv6 address to connect to
  std::uint16_t port = 0;
  bool lmtp = false;          ///< LHLO instead of EHLO
  bool implicit_tls = false;  ///< TLS from the first byte (submissions, port 465)
  /// PEM file of the CAs that may sign the server's certificate; empty: the system's
  /// default trust store. The certificate is always verified when TLS is used.
  std::string ca_file;
  /// The name the certificate must carry (DNS SAN, or IP SAN for an address); empty:
  /// `address` itself, checked against the certificate's IP SANs.
  std::string server_name;
};

struct probe_credentials {
  std::string user;
  std::string password;
};

/// The result of a probe: ok, or what went wrong in one line ("connect 10.0.0.5:25:
/// Connection refused", "NOOP answered 421 4.3.2 ...").
struct probe_result : blockio::client_status {
  bool ok = false;
};

/// Greeting 220, EHLO/LHLO 250, NOOP 250, QUIT. With credentials: STARTTLS (unless the
/// listener is implicit TLS), then AUTH PLAIN must answer 235. Whenever TLS is used the
/// certificate is verified (chain against `ca_file`, name against `server_name` or the
/// address) and the TLS version is at least 1.2. Credentials are never sent in the clear:
/// a listener that does not offer STARTTLS fails the probe before AUTH.
probe_result smtp_probe(const probe_target& target, std::chrono::steady_clock::time_point deadline,
                        const std::optional<probe_credentials>& credentials = std::nullopt);

/// What an HTTP server answered: the status and (up to 64 KiB of) the body.
struct http_response {
  int status = 0;
  std::string body;
};

/// GET `path` over HTTP/1.1 (TLS from the first byte when `target.implicit_tls`, the
/// certificate verified as for smtp_probe); ok when the status is 200. Otherwise the
/// detail names the status and the body's first line ("GET /ready answered 503: no store
/// answers"). `response`, when given, receives the status and body of any answer.
probe_result http_get(const probe_target& target, const std::string& path,
                      std::chrono::steady_clock::time_point deadline,
                      http_response* response = nullptr);

/// An IMAP login: greeting `* OK`, then (unless the listener is implicit TLS) CAPABILITY
/// must list STARTTLS and STARTTLS must succeed, then `LOGIN user password` must answer
/// OK; LOGOUT ends the session. TLS is verified as for smtp_probe; the password is never
/// sent in the clear (a listener without STARTTLS fails before LOGIN).
probe_result imap_login_probe(const probe_target& target,
                              std::chrono::steady_clock::time_point deadline,
                              const probe_credentials& credentials);

}  // namespace hamail::ocf

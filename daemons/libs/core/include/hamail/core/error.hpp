#pragma once

#include <string>
#include <string_view>

namespace hamail {

/// How the consumer of an error should react: retry later, give up, or treat it
/// as a bug. Maps to SMTP 4xx/5xx, IMAP NO [UNAVAILABLE]/NO, OCF soft/hard.
enum class error_kind {
  temporary,  ///< the same request may succeed later (backend down, disk full, timeout)
  permanent,  ///< the request itself is wrong and will fail again (bad syntax, no such user)
  internal,   ///< a broken invariant or unexpected condition inside hamail
};

/// Stable, machine-readable error conditions shared by every library.
enum class errc {
  timed_out,          ///< a peer or a dependency did not answer in time
  shutting_down,      ///< the daemon is draining and takes no new work
  connection_closed,  ///< the peer closed the connection
  limit_exceeded,     ///< a configured limit (size, count, rate) was crossed
  invalid_input,      ///< the peer sent something malformed
  not_found,          ///< the named object does not exist
  already_exists,     ///< the object to create exists already
  io_error,           ///< the operating system reported a failure
  tls_error,          ///< TLS handshake or record layer failure
  config_error,       ///< configuration is missing or invalid
  unavailable,        ///< a dependency (directory, store, backend) cannot be reached
  quota_exceeded,     ///< the account is over its quota
  permission_denied,  ///< the caller may not do this
  internal,           ///< a bug
};

/// Returns the stable lowercase name of a condition, for logs and tests.
std::string_view to_string(errc code) noexcept;
/// Returns the lowercase name of a kind.
std::string_view to_string(error_kind kind) noexcept;

/// An error value. `user_text` may be shown to a client; `detail` goes to logs only
/// and may name paths, peers and system errors.
struct error {
  error_kind kind = error_kind::internal;
  errc code = errc::internal;
  std::string user_text;
  std::string detail;

  /// Makes a temporary error.
  static error temporary(errc code, std::string user_text, std::string detail = {});
  /// Makes a permanent error.
  static error permanent(errc code, std::string user_text, std::string detail = {});
  /// Makes an internal error; clients see a generic text.
  static error internal_error(std::string detail);

  bool is_temporary() const noexcept { return kind == error_kind::temporary; }
  bool is_permanent() const noexcept { return kind == error_kind::permanent; }
  /// "kind/code: user text (detail)" for logs.
  std::string describe() const;
};

}  // namespace hamail

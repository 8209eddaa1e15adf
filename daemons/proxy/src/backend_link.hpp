#pragma once

// One connection from the proxy to a store's backend: TCP connect within a
// deadline, optional TLS (implicit or after STARTTLS/STLS) with the
// certificate verified, and line reads and writes that never wait past the
// caller's deadline, so a backend that accepts TCP and then says nothing
// cannot hang a login.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "hamail/core/result.hpp"
#include "hamail/net/byte_stream.hpp"

namespace hamail::proxy {

using clock = std::chrono::steady_clock;

/// Where one backend service of a store is reached.
struct backend_target {
  std::string store;  ///< the store's name
  std::string host;   ///< IP address or host name
  std::uint16_t port = 0;
  /// The name the backend's certificate must carry (the store's service host),
  /// empty: not checked.
  std::string tls_name;
};

/// A connected backend. Not thread-safe: one session's executor.
class backend_link {
 public:
  /// Connects to `target` before `deadline` (every resolved address in turn).
  static boost::asio::awaitable<result<std::unique_ptr<backend_link>>> connect(
      boost::asio::any_io_executor ex, const backend_target& target, clock::time_point deadline);

  /// Runs a client TLS handshake on the connection (implicit TLS, or after the
  /// backend accepted STARTTLS/STLS), verifying the certificate against `ctx`
  /// and, when not empty, `tls_name`. Bytes buffered from the plain stream are
  /// dropped (nothing the backend sent in the clear is taken as sent over TLS).
  boost::asio::awaitable<result<void>> start_tls(std::shared_ptr<boost::asio::ssl::context> ctx,
                                                 const std::string& tls_name,
                                                 clock::time_point deadline);

  /// Reads one line (without its CRLF; a bare LF also ends it) of at most
  /// `max_line` octets before `deadline`.
  boost::asio::awaitable<result<std::string>> read_line(clock::time_point deadline,
                                                        std::size_t max_line = 64 * 1024);
  /// Writes all of `data` before `deadline`.
  boost::asio::awaitable<result<void>> write(std::string_view data, clock::time_point deadline);

  /// Takes the octets read beyond the last line (the relay sends them on).
  std::string take_buffered();
  /// The stream, for the relay once the login is done.
  net::byte_stream& stream() noexcept { return *stream_; }
  /// True once the stream is TLS.
  bool is_tls() const noexcept { return stream_->is_tls(); }
  /// "address:port" of the backend, for logs.
  const std::string& peer() const noexcept { return peer_; }

 private:
  backend_link(std::unique_ptr<net::byte_stream> stream, std::string peer);
  std::unique_ptr<net::byte_stream> stream_;
  std::string peer_;
  std::string in_;
};

/// A client TLS context for the backends: verify the peer against `ca_file`
/// (the system's store when empty), TLS 1.2 at least.
result<std::shared_ptr<boost::asio::ssl::context>> make_backend_tls_context(
    const std::string& ca_file);

}  // namespace hamail::proxy

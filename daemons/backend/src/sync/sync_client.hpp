#pragma once

// The client end of the sync channel: a TLS connection to another store's sync listener,
// one command at a time, replies parsed with sync_protocol.hpp. PULL uses it to talk to the
// source; tests use it as the admin tool does.

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
#include "sync/sync_protocol.hpp"

namespace hamail::backend::sync {

/// One connection to a sync listener. Every operation is bounded by the timeout given to
/// connect(); failures are values (unavailable, timed_out, tls_error, connection_closed,
/// invalid_input for a reply that does not parse).
class sync_client {
 public:
  /// Connects to host:port and runs the TLS handshake, verifying the certificate against
  /// `tls` (a client context with verification on) and, when `check_host`, that it names
  /// `host`.
  static boost::asio::awaitable<result<std::unique_ptr<sync_client>>> connect(
      boost::asio::any_io_executor ex, const std::string& host, std::uint16_t port,
      const std::shared_ptr<boost::asio::ssl::context>& tls, bool check_host,
      std::chrono::milliseconds timeout);

  /// Sends one command line (CRLF added). Not a coroutine: the line is copied before it returns.
  boost::asio::awaitable<result<void>> send(std::string_view line);
  /// Reads and parses the next reply line.
  boost::asio::awaitable<result<reply>> read_reply();
  /// Reads up to `max` octets of a payload announced by `* DATA {n}` (at least one).
  boost::asio::awaitable<result<std::string>> read_payload(std::size_t max);
  /// Sends TLS close_notify and closes.
  boost::asio::awaitable<void> close();
  /// "host:port", for logs.
  const std::string& peer() const noexcept { return peer_; }

 private:
  sync_client(std::unique_ptr<net::byte_stream> stream, std::string peer,
              std::chrono::milliseconds timeout);
  /// Reads more bytes into in_.
  boost::asio::awaitable<result<void>> fill();
  /// Writes out_ (send()'s coroutine; no parameters, see send()).
  boost::asio::awaitable<result<void>> write_out();
  /// read_payload()'s coroutine, reading up to payload_max_.
  boost::asio::awaitable<result<std::string>> read_payload_now();

  std::unique_ptr<net::byte_stream> stream_;
  std::string peer_;
  std::chrono::milliseconds timeout_;
  std::string in_;
  std::string out_;
  std::size_t payload_max_ = 0;
  line_splitter lines_{max_reply_line};
};

}  // namespace hamail::backend::sync

#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "hamail/core/result.hpp"
#include "hamail/core/server_settings.hpp"
#include "hamail/net/connection.hpp"

namespace hamail::tls {
class context_store;
}

namespace hamail::net {

/// What a listener speaks. One instance serves every connection of its
/// listener, so per-session state belongs in run()'s frame.
class protocol {
 public:
  virtual ~protocol() = default;
  /// Runs one session to its end. Reads report errc::timed_out and
  /// errc::shutting_down as values: answer with the protocol's goodbye and return.
  virtual boost::asio::awaitable<void> run(connection& conn) = 0;
  /// Sent, then the connection closed, when a connection limit is reached
  /// (e.g. "421 4.7.0 Too many connections\r\n", "* BYE Too many connections\r\n").
  virtual std::string busy_reply() const = 0;
  /// Sent when the drain deadline forces a connection closed.
  virtual std::string shutdown_reply() const = 0;
};

/// Makes the protocol for one listener; called once per listener by listen().
using protocol_factory = std::function<std::shared_ptr<protocol>(const listener_settings&)>;
/// Protocol factories by listener protocol name ("smtp", "imap", ...).
using protocol_factories = std::map<std::string, protocol_factory>;

/// Timeouts of the connections a server runs (the idle timeout comes from limits_settings).
struct server_options {
  std::chrono::milliseconds write_timeout =
      std::chrono::minutes(5);  ///< one write() may take this long
  std::chrono::milliseconds handshake_timeout =
      std::chrono::seconds(30);  ///< implicit TLS and STARTTLS handshakes
  std::chrono::milliseconds goodbye_timeout =
      std::chrono::seconds(2);  ///< busy/shutdown replies, TLS close
};

namespace detail {
struct server_state;
}

/// Accepts connections on a set of listeners and runs a protocol session on
/// each: implicit TLS handshakes, connection limits (per listener, in total and
/// per client key — an IPv4 address or IPv6 /64 by default, see client_key() —
/// answered with the protocol's busy reply), idle and whole-session timeouts,
/// and graceful drain.
///
/// Threading: everything runs on the one io_context given, driven by one
/// thread; call drain() and the accessors from that thread (post() to it from
/// elsewhere). The internals are shared with the running coroutines, so the
/// server object may be destroyed before they finish.
///
/// Lifecycle: listen() binds (errors as values), run() accepts and completes
/// once drained (acceptors closed, every connection gone), drain() starts the
/// end.
class server {
 public:
  /// Nothing is bound until listen(). `tls` may be null when no listener uses TLS.
  server(boost::asio::io_context& io, std::vector<listener_settings> listeners,
         limits_settings limits, tls::context_store* tls, protocol_factories factories,
         server_options options = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds every listener to its exact address (SO_REUSEADDR; IPv6 v6only) and
  /// listens. On any failure nothing stays bound and the error names the listener
  /// and address (config_error for settings, io_error for the bind itself).
  result<void> listen();
  /// The bound endpoints, in listener order (ports chosen by the kernel filled in).
  std::vector<boost::asio::ip::tcp::endpoint> bound_endpoints() const;
  /// Accepts until drained; completes when acceptors are closed and every
  /// connection has ended. Call once, after listen() (a second call returns at once).
  boost::asio::awaitable<void> run();
  /// Starts a graceful drain: stops accepting, interrupts idle sessions so they
  /// say goodbye, lets sessions inside a command finish. At `deadline` the
  /// remaining connections get the shutdown reply and are closed. A second
  /// call may bring the deadline forward, never back.
  void drain(std::chrono::steady_clock::time_point deadline);
  /// drain() with the configured drain_timeout from now.
  void drain();
  /// True once drain() was called.
  bool draining() const noexcept;
  /// Sessions admitted and not yet ended.
  std::size_t active_connections() const noexcept;
  /// Sessions admitted since start.
  std::size_t accepted_connections() const noexcept;
  /// Connections turned away with the busy reply since start.
  std::size_t rejected_connections() const noexcept;

 private:
  std::shared_ptr<detail::server_state> state_;
};

}  // namespace hamail::net

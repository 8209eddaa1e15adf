#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "hamail/core/log.hpp"
#include "hamail/core/result.hpp"
#include "hamail/core/server_settings.hpp"
#include "hamail/net/byte_stream.hpp"
#include "hamail/net/limits.hpp"

namespace hamail::tls {
class context_store;
}

namespace hamail::net {

class deflate_stream;

/// Why a session is reading, which decides what may interrupt the read.
enum class read_mode {
  idle,        ///< waiting for the next command: a drain interrupts it, the idle timeout applies
  in_command,  ///< inside a command (literal, DATA body): only the idle timeout applies
};

/// How long a connection waits for each kind of progress.
struct timeouts {
  std::chrono::milliseconds idle = std::chrono::minutes(30);  ///< no client bytes for this long
  std::chrono::milliseconds write = std::chrono::minutes(5);  ///< one write() may take this long
  std::chrono::milliseconds handshake =
      std::chrono::seconds(30);  ///< a TLS handshake may take this long
  std::chrono::milliseconds goodbye =
      std::chrono::seconds(2);  ///< busy/shutdown replies and TLS close
  /// The whole session: no read waits past this long after the connection was
  /// made, however steadily the client sends; 0 = no limit.
  std::chrono::milliseconds session = std::chrono::milliseconds(0);
};

/// Where a connection came from and which listener took it.
struct connection_info {
  boost::asio::ip::tcp::endpoint remote;
  boost::asio::ip::tcp::endpoint local;
  std::string listener;  ///< listener name, for logs
  std::string protocol;  ///< listener protocol ("smtp", "imap", ...)
  tls_mode tls = tls_mode::none;
  /// Set when a load balancer relayed the connection with a PROXY header: the
  /// balancer's own endpoint (`remote` and `local` are then the client's).
  std::optional<boost::asio::ip::tcp::endpoint> balancer;
};

/// One client connection, handed to protocol code: reads with idle timeout and
/// drain interruption, writes with a timeout, STARTTLS and COMPRESS in place. Every failure
/// is a value: errc::timed_out, errc::shutting_down (the daemon is draining or
/// forcing connections closed), errc::connection_closed (the peer went away),
/// errc::tls_error, errc::io_error.
///
/// Threading: a connection lives on one executor (one io_context thread per
/// daemon) and all calls must come from that thread. At most one read and one
/// write may be outstanding at a time.
class connection {
 public:
  /// Takes ownership of a connected stream. `store` supplies the context for
  /// STARTTLS (tls_context()); it may be null when the listener has no TLS.
  connection(std::unique_ptr<byte_stream> stream, connection_info info, timeouts limits,
             tls::context_store* store = nullptr);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// The session id that prefixes this connection's log lines.
  const std::string& session_id() const noexcept { return log_.id(); }
  /// A logger bound to the session id.
  const log::session_logger& log() const noexcept { return log_; }
  /// Endpoints, listener name and protocol.
  const connection_info& info() const noexcept { return info_; }
  /// The client's address as text (IPv4-mapped IPv6 shown as IPv4).
  std::string remote_address() const;
  /// Records what a load balancer's PROXY header said: `client` connected to
  /// `destination`; the balancer's endpoint moves to info().balancer.
  void set_relayed_endpoints(const boost::asio::ip::tcp::endpoint& client,
                             const boost::asio::ip::tcp::endpoint& destination);
  /// The client's port.
  std::uint16_t remote_port() const noexcept { return info_.remote.port(); }
  /// The local address the client connected to.
  std::string local_address() const;
  /// The local port the client connected to.
  std::uint16_t local_port() const noexcept { return info_.local.port(); }

  /// Reads at least one byte into `buffer`, waiting at most the idle timeout.
  /// Nothing is buffered inside the connection: every byte read is the caller's.
  boost::asio::awaitable<result<std::size_t>> read_some(boost::asio::mutable_buffer buffer,
                                                        read_mode mode);
  /// Reads at least one byte into `buffer`, waiting until `deadline` at most
  /// (a whole-command deadline that bytes do not push back). Whichever comes
  /// first of `deadline`, the session deadline and, during a transfer, the
  /// minimum-rate deadline ends the read with errc::timed_out.
  boost::asio::awaitable<result<std::size_t>> read_some(
      boost::asio::mutable_buffer buffer, read_mode mode,
      std::chrono::steady_clock::time_point deadline);

  /// Starts a transfer (a message body): from now until end_transfer() every
  /// byte read is metered, and reads end with errc::timed_out once the client
  /// falls below `rate` (see rate_meter). Replaces a transfer in progress.
  void begin_transfer(const transfer_rate& rate);
  /// Ends the transfer started by begin_transfer(); reads are no longer metered.
  void end_transfer() noexcept { meter_.reset(); }
  /// Writes all of `data` within the write timeout. After a write timeout the
  /// connection is closed (the stream state is unknown).
  boost::asio::awaitable<result<void>> write(boost::asio::const_buffer data);
  /// Writes all of `text`.
  boost::asio::awaitable<result<void>> write(std::string_view text);

  /// Upgrades the plain stream to TLS in place (STARTTLS) and runs the server
  /// handshake within the handshake timeout. The caller must discard whatever
  /// it has buffered from the plain stream before calling: bytes a client
  /// pipelined after the STARTTLS command must never be taken as sent over TLS
  /// (CVE-2011-0411). The connection itself holds no buffered bytes. On failure
  /// the connection is closed.
  boost::asio::awaitable<result<void>> start_tls(std::shared_ptr<boost::asio::ssl::context> ctx);
  /// Switches to COMPRESS=DEFLATE (RFC 4978) in place: from now on writes are
  /// compressed and reads inflated, over TLS when TLS is active (tls_protocol()
  /// and tls_cipher() keep working). Only between reads and writes, after the
  /// tagged OK was written. `already_read` are bytes the caller read beyond the
  /// command that started compression (a client that did not wait for the OK):
  /// they are compressed and are inflated first. errc::invalid_input when
  /// compression is active already.
  result<void> start_compress(std::string_view already_read = {});
  /// True once COMPRESS is active.
  bool is_compressed() const noexcept { return deflate_ != nullptr; }
  /// The server TLS context currently in force, or null when TLS is not configured.
  std::shared_ptr<boost::asio::ssl::context> tls_context() const;
  /// True once the stream is TLS (implicit or after STARTTLS).
  bool is_tls() const noexcept;
  /// Negotiated protocol ("TLSv1.3"), empty on a plain stream.
  std::string tls_protocol() const;
  /// Negotiated cipher, empty on a plain stream.
  std::string tls_cipher() const;

  /// True once the server began draining; idle reads then return errc::shutting_down.
  bool draining() const noexcept { return draining_; }
  /// Changes the idle timeout for later reads (e.g. tighter before login).
  void set_idle_timeout(std::chrono::milliseconds t) noexcept { limits_.idle = t; }
  /// The timeouts in force.
  const timeouts& limits() const noexcept { return limits_; }
  /// True once the connection has been closed.
  bool closed() const noexcept { return closed_; }
  /// When no read limit ends the session however steadily the client sends
  /// (timeouts::session counted from the connection); max() when none.
  std::chrono::steady_clock::time_point session_deadline() const noexcept {
    return session_deadline_;
  }

  /// The TCP socket of a plain connection (neither TLS nor COMPRESS), for a
  /// relay that moves bytes between sockets itself; null otherwise. Such a
  /// caller owns the reads while it uses the socket (no read_some() meanwhile),
  /// writes through it only while usable(), and leaves any write that would
  /// block to write(), which keeps the write timeout. force_close() cancels
  /// whatever waits on the socket, so a relay waiting for input ends.
  boost::asio::ip::tcp::socket* plain_socket() noexcept;
  /// True while the session may still read and write: neither force_close()
  /// nor close() ran.
  bool usable() const noexcept { return !forced_ && !closed_; }

  // The calls below belong to the server running the connection.

  /// Starts draining: an idle read in progress (and every later one) ends
  /// with errc::shutting_down; in-command reads are left alone.
  void begin_drain();
  /// Drain deadline: interrupts any read or write in progress, writes `reply`
  /// within the goodbye timeout and closes. Later calls by the session fail
  /// with errc::shutting_down.
  boost::asio::awaitable<void> force_close(std::string reply);
  /// Ends a connection whose session returned: TLS close_notify (bounded by the
  /// goodbye timeout) or TCP FIN, then close.
  boost::asio::awaitable<void> finish();
  /// Closes at once.
  void close();
  /// Writes `reply` within the goodbye timeout, ignoring drain state (busy replies).
  boost::asio::awaitable<result<void>> write_goodbye(std::string_view reply);

 private:
  enum class read_limit { deadline, session, rate };
  boost::asio::awaitable<result<void>> do_write(boost::asio::const_buffer data,
                                                std::chrono::milliseconds limit, bool goodbye);
  error shutting_down_error() const;

  std::unique_ptr<byte_stream> stream_;
  tls_stream* tls_ = nullptr;          // stream_ once it is TLS, or the stream under deflate_
  deflate_stream* deflate_ = nullptr;  // stream_ once COMPRESS is active
  connection_info info_;
  timeouts limits_;
  tls::context_store* store_;
  log::session_logger log_;
  std::chrono::steady_clock::time_point session_deadline_;  // max() when none
  std::optional<rate_meter> meter_;                         // set during a transfer
  boost::asio::steady_timer read_timer_;
  boost::asio::steady_timer write_timer_;
  boost::asio::steady_timer writes_done_;  // an event: woken when no write is in flight
  int writes_in_flight_ = 0;
  bool reading_ = false;
  bool idle_read_ = false;
  bool read_interrupted_ = false;
  bool handshaking_ = false;
  bool draining_ = false;
  bool forced_ = false;
  bool closing_ = false;
  bool closed_ = false;
};

/// The address as text, IPv4-mapped IPv6 addresses shown as IPv4 (so per-IP
/// limits and logs treat both forms of one client alike).
std::string address_text(const boost::asio::ip::address& address);

}  // namespace hamail::net

#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "hamail/core/result.hpp"

namespace hamail::net {

/// Maps an Asio/OpenSSL error to a hamail error: end of stream, reset and
/// truncation become errc::connection_closed, TLS failures errc::tls_error,
/// anything else errc::io_error. `what` names the operation for the log detail.
error to_error(const boost::system::error_code& ec, std::string_view what);
/// True for the error code a cancelled operation completes with.
bool is_cancellation(const boost::system::error_code& ec) noexcept;

/// A connected, ordered byte stream: plain TCP, TLS or in-memory. Protocol code
/// sees only this, so the same session runs over every transport.
///
/// At most one read and one write may be outstanding at a time. Operations
/// support per-operation (terminal) cancellation, which is how callers bound
/// them with timers. A cancelled operation completes with errc::io_error whose
/// detail says "cancelled"; the caller, who cancelled, knows why. Not thread-safe:
/// use from the executor's thread only.
class byte_stream {
 public:
  virtual ~byte_stream() = default;

  /// Reads at least one byte into `buffer`; errc::connection_closed at end of stream.
  virtual boost::asio::awaitable<result<std::size_t>> async_read_some(
      boost::asio::mutable_buffer buffer) = 0;
  /// Writes all of `buffer`.
  virtual boost::asio::awaitable<result<void>> async_write(boost::asio::const_buffer buffer) = 0;
  /// Ends the sending direction: TLS close_notify (not waiting for the peer's) and TCP FIN.
  virtual boost::asio::awaitable<result<void>> async_shutdown() = 0;
  /// True once bytes travel inside TLS.
  virtual bool is_tls() const noexcept = 0;
  /// Cancels outstanding operations; the stream stays usable.
  virtual void cancel() = 0;
  /// Closes at once; outstanding operations complete with an error.
  virtual void close() = 0;
  /// The executor the stream's operations run on.
  virtual boost::asio::any_io_executor get_executor() = 0;
};

/// A plain TCP stream. The socket can be taken back out for a STARTTLS upgrade.
class tcp_stream final : public byte_stream {
 public:
  /// Wraps a connected socket.
  explicit tcp_stream(boost::asio::ip::tcp::socket socket);

  boost::asio::awaitable<result<std::size_t>> async_read_some(
      boost::asio::mutable_buffer buffer) override;
  boost::asio::awaitable<result<void>> async_write(boost::asio::const_buffer buffer) override;
  boost::asio::awaitable<result<void>> async_shutdown() override;
  bool is_tls() const noexcept override { return false; }
  void cancel() override;
  void close() override;
  boost::asio::any_io_executor get_executor() override { return socket_.get_executor(); }

  /// The socket, e.g. for its endpoints.
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
  /// Moves the socket out (for TLS); the stream is unusable afterwards.
  boost::asio::ip::tcp::socket release() { return std::move(socket_); }

 private:
  boost::asio::ip::tcp::socket socket_;
};

/// A TLS stream over TCP, server or client side. It keeps the context alive
/// for as long as the connection lives, so a reload cannot pull it away.
///
/// OpenSSL reads and writes the non-blocking socket itself, through a BIO
/// that holds no buffer; the stream waits for readiness when OpenSSL asks for
/// it. With SSL_MODE_RELEASE_BUFFERS (set here on every connection) an idle
/// stream keeps no record buffers: only the SSL object and its session, a few
/// KiB. A read and a write may be outstanding at once. A write cancelled while
/// OpenSSL holds a half-sent record leaves that record (and at most the rest of
/// its 16 KiB piece) to be sent before the next write or the close_notify, so
/// the TLS stream stays valid.
class tls_stream final : public byte_stream {
 public:
  /// Which end of the handshake this stream plays.
  enum class role { server, client };

  /// Wraps a connected socket (made non-blocking); nothing is sent until
  /// async_handshake(). Throws boost::system::system_error if OpenSSL cannot
  /// make the connection object.
  tls_stream(boost::asio::ip::tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> ctx,
             role r);
  ~tls_stream() override;
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  /// Runs the TLS handshake. errc::tls_error when it fails.
  boost::asio::awaitable<result<void>> async_handshake();

  boost::asio::awaitable<result<std::size_t>> async_read_some(
      boost::asio::mutable_buffer buffer) override;
  boost::asio::awaitable<result<void>> async_write(boost::asio::const_buffer buffer) override;
  boost::asio::awaitable<result<void>> async_shutdown() override;
  bool is_tls() const noexcept override { return true; }
  void cancel() override;
  void close() override;
  boost::asio::any_io_executor get_executor() override { return socket_.get_executor(); }

  /// The OpenSSL connection, for protocol/cipher names, peer certificates and
  /// (client, before the handshake) the server name to send and verify.
  SSL* native_handle() noexcept { return ssl_; }
  /// The TCP socket underneath.
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }

 private:
  struct socket_bio;  // the BIO between OpenSSL and socket_ (tls_stream.cpp)

  /// Clears what the previous OpenSSL call left behind; call before each SSL_* call.
  void begin_call() noexcept;
  /// The error for an SSL_get_error() result other than WANT_READ/WANT_WRITE.
  boost::system::error_code failure(int ssl_error);
  /// Waits until the socket can do what `ssl_error` (WANT_READ/WANT_WRITE)
  /// asks; operation_aborted if the operation was cancelled.
  boost::asio::awaitable<boost::system::error_code> wait_for(int ssl_error);
  /// Completes the SSL_write a cancelled write left OpenSSL in the middle of.
  boost::asio::awaitable<boost::system::error_code> finish_interrupted_write();

  std::shared_ptr<boost::asio::ssl::context> ctx_;
  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  role role_;
  int last_errno_ = 0;       ///< errno of the BIO's last failed recv/send
  bool peer_eof_ = false;    ///< the BIO read end of stream
  std::string interrupted_;  ///< the piece a cancelled SSL_write must be retried with
};

/// One end of an in-memory duplex pipe, for unit tests of protocol sessions:
/// each end reads what the other wrote; close() or destruction gives the peer
/// end of stream, and writes after the peer closed fail with
/// errc::connection_closed. Writes never block (the pipe is unbounded).
class memory_stream final : public byte_stream {
 public:
  /// Two connected ends on `executor`.
  static std::pair<std::unique_ptr<memory_stream>, std::unique_ptr<memory_stream>> make_pair(
      boost::asio::any_io_executor executor);

  ~memory_stream() override;
  memory_stream(const memory_stream&) = delete;
  memory_stream& operator=(const memory_stream&) = delete;

  boost::asio::awaitable<result<std::size_t>> async_read_some(
      boost::asio::mutable_buffer buffer) override;
  boost::asio::awaitable<result<void>> async_write(boost::asio::const_buffer buffer) override;
  /// Half-close: the peer reads end of stream once it has read what was sent.
  boost::asio::awaitable<result<void>> async_shutdown() override;
  bool is_tls() const noexcept override { return false; }
  void cancel() override;
  void close() override;
  boost::asio::any_io_executor get_executor() override { return executor_; }

  /// Bytes written by the peer and not read yet.
  std::size_t available() const noexcept;

 private:
  struct pipe;
  memory_stream(boost::asio::any_io_executor executor, std::shared_ptr<pipe> in,
                std::shared_ptr<pipe> out);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<pipe> in_;   // the peer writes, this end reads
  std::shared_ptr<pipe> out_;  // this end writes, the peer reads
  bool closed_ = false;
  bool reading_ = false;
  bool cancel_requested_ = false;
};

}  // namespace hamail::net

// tls_stream: OpenSSL driven directly on the non-blocking socket. Asio's
// ssl::stream kept two 17 KiB buffers of its own plus a 2 x 17 KiB BIO pair per
// connection, busy or idle; here OpenSSL's record buffers are all there is, and
// SSL_MODE_RELEASE_BUFFERS frees them whenever the connection is idle.

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "hamail/net/byte_stream.hpp"

namespace hamail::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Plaintext handed to one SSL_write: one record's worth, which also bounds
/// what a cancelled write leaves to be retried.
constexpr std::size_t max_write_piece = 16384;

bool wants_io(int ssl_error) noexcept {
  return ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE;
}

error_code ssl_error_code(unsigned long e) {
  return {static_cast<int>(e), asio::error::get_ssl_category()};
}

error handshake_error(const error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || is_cancellation(ec))
    return to_error(ec, "TLS handshake");
  return error::temporary(errc::tls_error, "TLS handshake failed",
                          fmt::format("TLS handshake: {}", ec.message()));
}

}  // namespace

/// A source/sink BIO on the stream's socket: recv/send straight from and into
/// OpenSSL's record buffers, no buffer of its own. send() uses MSG_NOSIGNAL so
/// a peer gone away is an EPIPE error, never a signal.
struct tls_stream::socket_bio {
  static BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "hamail socket");
      if (made == nullptr) return made;
      BIO_meth_set_read(made, &read);
      BIO_meth_set_write(made, &write);
      BIO_meth_set_ctrl(made, &ctrl);
      BIO_meth_set_create(made, &create);
      return made;
    }();
    return m;
  }

  static tls_stream& stream(BIO* b) { return *static_cast<tls_stream*>(BIO_get_data(b)); }

  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static int read(BIO* b, char* out, int len) {
    BIO_clear_retry_flags(b);
    tls_stream& s = stream(b);
    if (len <= 0) return 0;
    ssize_t n;
    do {
      n = ::recv(s.socket_.native_handle(), out, static_cast<std::size_t>(len), 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) return static_cast<int>(n);
    if (n == 0) {
      s.peer_eof_ = true;
      return 0;
    }
    s.last_errno_ = errno;
    if (s.last_errno_ == EAGAIN || s.last_errno_ == EWOULDBLOCK) BIO_set_retry_read(b);
    return -1;
  }

  static int write(BIO* b, const char* data, int len) {
    BIO_clear_retry_flags(b);
    tls_stream& s = stream(b);
    if (len <= 0) return 0;
    ssize_t n;
    do {
      n = ::send(s.socket_.native_handle(), data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return static_cast<int>(n);
    s.last_errno_ = errno;
    if (s.last_errno_ == EAGAIN || s.last_errno_ == EWOULDBLOCK) BIO_set_retry_write(b);
    return -1;
  }

  static long ctrl(BIO* b, int cmd, long, void* ptr) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:  // nothing is buffered
        return 1;
      case BIO_CTRL_EOF:  // lets OpenSSL tell a truncated stream from an I/O error
        return stream(b).peer_eof_ ? 1 : 0;
      case BIO_C_GET_FD: {
        const int fd = stream(b).socket_.native_handle();
        if (ptr != nullptr) *static_cast<int*>(ptr) = fd;
        return fd;
      }
      default:
        return 0;
    }
  }
};

tls_stream::tls_stream(tcp::socket socket, std::shared_ptr<asio::ssl::context> ctx, role r)
    : ctx_(std::move(ctx)),
      socket_(std::move(socket)),
      ssl_(SSL_new(ctx_->native_handle())),
      role_(r) {
  if (ssl_ == nullptr) {
    throw boost::system::system_error(ssl_error_code(ERR_get_error()), "tls_stream: SSL_new");
  }
  BIO_METHOD* method = socket_bio::method();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl_);
    throw boost::system::system_error(ssl_error_code(ERR_get_error()), "tls_stream: BIO_new");
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, for both directions
  // Partial writes: SSL_write returns after each record, so the write loop
  // tracks progress itself. Moving buffer: a retry after a cancelled write
  // passes a copy of the piece. Release buffers: nothing kept while idle.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                         SSL_MODE_RELEASE_BUFFERS);
  if (role_ == role::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
  error_code ignored;  // a socket that is not open fails its first operation instead
  socket_.non_blocking(true, ignored);
}

tls_stream::~tls_stream() { SSL_free(ssl_); }

void tls_stream::begin_call() noexcept {
  ERR_clear_error();
  last_errno_ = 0;
}

error_code tls_stream::failure(int ssl_error) {
  error_code ec;
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      if (last_errno_ != 0) {
        ec = error_code(last_errno_, boost::system::system_category());
      } else if (const unsigned long e = ERR_peek_error(); e != 0) {
        ec = ssl_error_code(e);
      } else {
        ec = peer_eof_ ? error_code(asio::ssl::error::stream_truncated)
                       : error_code(asio::ssl::error::unspecified_system_error);
      }
      break;
    default:
      if (const unsigned long e = ERR_peek_error(); e != 0) {
        ec = ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING
                 ? error_code(asio::ssl::error::stream_truncated)
                 : ssl_error_code(e);
      } else {
        ec = asio::ssl::error::unspecified_system_error;
      }
      break;
  }
  ERR_clear_error();
  return ec;
}

asio::awaitable<error_code> tls_stream::wait_for(int ssl_error) {
  // A cancellation that arrived while this operation was not waiting (its
  // last wait had completed, not yet resumed) is honoured here.
  auto state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none) co_return asio::error::operation_aborted;
  const auto what =
      ssl_error == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write;
  auto [ec] = co_await socket_.async_wait(what, use_tuple);
  co_return ec;
}

asio::awaitable<result<void>> tls_stream::async_handshake() {
  for (;;) {
    begin_call();
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) co_return ok();
    const int e = SSL_get_error(ssl_, ret);
    if (!wants_io(e)) co_return handshake_error(failure(e));
    if (auto ec = co_await wait_for(e)) co_return handshake_error(ec);
  }
}

asio::awaitable<result<std::size_t>> tls_stream::async_read_some(asio::mutable_buffer buffer) {
  if (buffer.size() == 0) co_return std::size_t{0};
  for (;;) {
    begin_call();
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n);
    if (ret == 1) co_return n;
    const int e = SSL_get_error(ssl_, ret);
    if (!wants_io(e)) co_return to_error(failure(e), "TLS read");
    if (auto ec = co_await wait_for(e)) co_return to_error(ec, "TLS read");
  }
}

asio::awaitable<error_code> tls_stream::finish_interrupted_write() {
  // OpenSSL insists on the same piece (length and, with the moving-buffer
  // mode, not the address); the half-sent record in its buffer goes out
  // first. Once the call succeeds nothing is pending, and whatever of the
  // piece it did not take is dropped with the cancelled write.
  while (!interrupted_.empty()) {
    begin_call();
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl_, interrupted_.data(), interrupted_.size(), &n);
    if (ret == 1) {
      std::string().swap(interrupted_);
      break;
    }
    const int e = SSL_get_error(ssl_, ret);
    if (!wants_io(e)) {
      std::string().swap(interrupted_);
      co_return failure(e);
    }
    if (auto ec = co_await wait_for(e)) co_return ec;
  }
  co_return error_code();
}

asio::awaitable<result<void>> tls_stream::async_write(asio::const_buffer buffer) {
  if (auto ec = co_await finish_interrupted_write()) co_return to_error(ec, "TLS write");
  const char* data = static_cast<const char*>(buffer.data());
  std::size_t left = buffer.size();
  while (left > 0) {
    const std::size_t piece = std::min(left, max_write_piece);
    begin_call();
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl_, data, piece, &n);
    if (ret == 1) {
      data += n;
      left -= n;
      continue;
    }
    const int e = SSL_get_error(ssl_, ret);
    if (!wants_io(e)) co_return to_error(failure(e), "TLS write");
    if (auto ec = co_await wait_for(e)) {
      // OpenSSL holds part of this piece encrypted and half sent; the caller's
      // buffer may be gone by the next write, so keep a copy to retry with.
      interrupted_.assign(data, piece);
      co_return to_error(ec, "TLS write");
    }
  }
  co_return ok();
}

asio::awaitable<result<void>> tls_stream::async_shutdown() {
  error_code ec = co_await finish_interrupted_write();
  if (!ec) {
    // Sends close_notify without waiting for the peer's (RFC 8446 6.1 allows
    // it): marking the peer's as received makes SSL_shutdown complete once
    // ours is written, instead of holding the connection until the client answers.
    SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_RECEIVED_SHUTDOWN);
    for (;;) {
      begin_call();
      const int ret = SSL_shutdown(ssl_);
      if (ret >= 0) break;
      const int e = SSL_get_error(ssl_, ret);
      if (!wants_io(e)) {
        ec = failure(e);
        break;
      }
      if ((ec = co_await wait_for(e))) break;
    }
  }
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  if (ec && ec != asio::error::eof && ec != asio::ssl::error::stream_truncated)
    co_return to_error(ec, "TLS shutdown");
  co_return ok();
}

void tls_stream::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
}

void tls_stream::close() {
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace hamail::net

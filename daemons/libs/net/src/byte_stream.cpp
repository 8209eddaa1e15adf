#include "hamail/net/byte_stream.hpp"

#include <fmt/format.h>

#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace hamail::net {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(use_awaitable);

error cancelled_error(std::string_view what) {
  return error::temporary(errc::io_error, "operation cancelled",
                          fmt::format("{}: cancelled", what));
}

}  // namespace

bool is_cancellation(const error_code& ec) noexcept { return ec == asio::error::operation_aborted; }

error to_error(const error_code& ec, std::string_view what) {
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
      ec == asio::error::not_connected || ec == asio::ssl::error::stream_truncated) {
    return error::temporary(errc::connection_closed, "connection closed",
                            fmt::format("{}: {}", what, ec.message()));
  }
  if (is_cancellation(ec)) return cancelled_error(what);
  if (ec.category() == asio::error::get_ssl_category()) {
    return error::temporary(errc::tls_error, "TLS error",
                            fmt::format("{}: {}", what, ec.message()));
  }
  return error::temporary(errc::io_error, "I/O error", fmt::format("{}: {}", what, ec.message()));
}

// ---------------------------------------------------------------------------
// tcp_stream

tcp_stream::tcp_stream(tcp::socket socket) : socket_(std::move(socket)) {}

asio::awaitable<result<std::size_t>> tcp_stream::async_read_some(asio::mutable_buffer buffer) {
  auto [ec, n] = co_await socket_.async_read_some(buffer, use_tuple);
  if (ec) co_return to_error(ec, "read");
  co_return n;
}

asio::awaitable<result<void>> tcp_stream::async_write(asio::const_buffer buffer) {
  auto [ec, n] = co_await asio::async_write(socket_, buffer, use_tuple);
  if (ec) co_return to_error(ec, "write");
  co_return ok();
}

asio::awaitable<result<void>> tcp_stream::async_shutdown() {
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return to_error(ec, "shutdown");
  co_return ok();
}

void tcp_stream::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
}

void tcp_stream::close() {
  error_code ignored;
  socket_.close(ignored);
}

// tls_stream is in tls_stream.cpp.

// ---------------------------------------------------------------------------
// memory_stream

/// One direction of the pair. Reader-side flags live here too, so a pending
/// read touches only the pipe (which it holds) and never the memory_stream.
struct memory_stream::pipe {
  explicit pipe(asio::any_io_executor executor) : readable(std::move(executor)) {}

  /// Wakes a pending read (the timer is used as an event: it never expires).
  void notify() { readable.cancel(); }

  std::string data;
  bool writer_closed = false;  ///< end of stream once `data` is read
  bool reader_closed = false;  ///< the reading end is gone: writes fail
  bool reading = false;
  bool cancel_requested = false;
  asio::steady_timer readable;
};

std::pair<std::unique_ptr<memory_stream>, std::unique_ptr<memory_stream>> memory_stream::make_pair(
    asio::any_io_executor executor) {
  auto a_to_b = std::make_shared<pipe>(executor);
  auto b_to_a = std::make_shared<pipe>(executor);
  std::unique_ptr<memory_stream> a(new memory_stream(executor, b_to_a, a_to_b));
  std::unique_ptr<memory_stream> b(new memory_stream(executor, a_to_b, b_to_a));
  return {std::move(a), std::move(b)};
}

memory_stream::memory_stream(asio::any_io_executor executor, std::shared_ptr<pipe> in,
                             std::shared_ptr<pipe> out)
    : executor_(std::move(executor)), in_(std::move(in)), out_(std::move(out)) {}

memory_stream::~memory_stream() { close(); }

asio::awaitable<result<std::size_t>> memory_stream::async_read_some(asio::mutable_buffer buffer) {
  auto in = in_;  // keeps the pipe alive even if this end is destroyed meanwhile
  if (in->reader_closed)
    co_return error::temporary(errc::io_error, "stream closed", "read: stream closed");
  if (buffer.size() == 0) co_return std::size_t{0};
  auto cancellation = co_await asio::this_coro::cancellation_state;
  in->reading = true;
  in->cancel_requested = false;
  for (;;) {
    if (in->reader_closed) {
      in->reading = false;
      co_return error::temporary(errc::io_error, "stream closed", "read: stream closed");
    }
    if (!in->data.empty()) {
      const std::size_t n = std::min(buffer.size(), in->data.size());
      std::memcpy(buffer.data(), in->data.data(), n);
      in->data.erase(0, n);
      in->reading = false;
      co_return n;
    }
    if (in->writer_closed) {
      in->reading = false;
      co_return error::temporary(errc::connection_closed, "connection closed",
                                 "read: end of stream");
    }
    if (in->cancel_requested || cancellation.cancelled() != asio::cancellation_type::none) {
      in->reading = false;
      in->cancel_requested = false;
      co_return cancelled_error("read");
    }
    in->readable.expires_at(asio::steady_timer::time_point::max());
    co_await in->readable.async_wait(use_tuple);
  }
}

asio::awaitable<result<void>> memory_stream::async_write(asio::const_buffer buffer) {
  if (closed_ || out_->writer_closed) {
    co_return error::temporary(errc::io_error, "stream closed",
                               "write: stream closed or shut down");
  }
  if (out_->reader_closed)
    co_return error::temporary(errc::connection_closed, "connection closed", "write: peer closed");
  out_->data.append(static_cast<const char*>(buffer.data()), buffer.size());
  out_->notify();
  co_return ok();
}

asio::awaitable<result<void>> memory_stream::async_shutdown() {
  out_->writer_closed = true;
  out_->notify();
  co_return ok();
}

void memory_stream::cancel() {
  if (in_->reading) {
    in_->cancel_requested = true;
    in_->notify();
  }
}

void memory_stream::close() {
  if (closed_) return;
  closed_ = true;
  out_->writer_closed = true;
  out_->notify();
  in_->reader_closed = true;
  in_->data.clear();
  in_->notify();
}

std::size_t memory_stream::available() const noexcept { return in_->data.size(); }

}  // namespace hamail::net

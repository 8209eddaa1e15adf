#include "hamail/net/connection.hpp"

#include <fmt/format.h>

#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/net/deflate_stream.hpp"
#include "hamail/tls/context.hpp"
#include "hamail/tls/context_store.hpp"

namespace hamail::net {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::experimental::awaitable_operators::operator||;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(use_awaitable);

error timed_out_error(std::string_view what, std::chrono::milliseconds limit) {
  return error::temporary(errc::timed_out, "timed out",
                          fmt::format("{}: no progress for {} ms", what, limit.count()));
}

error closed_error() {
  return error::temporary(errc::connection_closed, "connection closed",
                          "connection already closed");
}

}  // namespace

void connection::set_relayed_endpoints(const asio::ip::tcp::endpoint& client,
                                       const asio::ip::tcp::endpoint& destination) {
  if (!info_.balancer) info_.balancer = info_.remote;
  info_.remote = client;
  info_.local = destination;
}

std::string address_text(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

connection::connection(std::unique_ptr<byte_stream> stream, connection_info info, timeouts limits,
                       tls::context_store* store)
    : stream_(std::move(stream)),
      info_(std::move(info)),
      limits_(limits),
      store_(store),
      log_(log::new_session_id()),
      session_deadline_(limits.session.count() > 0 ? clock::now() + limits.session
                                                   : clock::time_point::max()),
      read_timer_(stream_->get_executor()),
      write_timer_(stream_->get_executor()),
      writes_done_(stream_->get_executor()) {
  tls_ = dynamic_cast<tls_stream*>(stream_.get());
}

connection::~connection() { close(); }

std::string connection::remote_address() const { return address_text(info_.remote.address()); }

std::string connection::local_address() const { return address_text(info_.local.address()); }

error connection::shutting_down_error() const {
  return error::temporary(errc::shutting_down, "server shutting down",
                          "connection interrupted by drain");
}

asio::awaitable<result<std::size_t>> connection::read_some(asio::mutable_buffer buffer,
                                                           read_mode mode) {
  co_return co_await read_some(buffer, mode, clock::now() + limits_.idle);
}

void connection::begin_transfer(const transfer_rate& rate) {
  if (rate.enabled()) {
    meter_.emplace(rate, clock::now());
  } else {
    meter_.reset();
  }
}

asio::awaitable<result<std::size_t>> connection::read_some(asio::mutable_buffer buffer,
                                                           read_mode mode,
                                                           clock::time_point deadline) {
  if (forced_) co_return shutting_down_error();
  if (closed_) co_return closed_error();
  if (mode == read_mode::idle && draining_) co_return shutting_down_error();
  if (reading_) co_return error::internal_error("connection: a read is already in progress");

  // The nearest of the caller's deadline, the session's and the rate's wins.
  auto limit = read_limit::deadline;
  auto until = deadline;
  if (session_deadline_ < until) {
    until = session_deadline_;
    limit = read_limit::session;
  }
  if (meter_ && meter_->deadline() < until) {
    until = meter_->deadline();
    limit = read_limit::rate;
  }

  reading_ = true;
  idle_read_ = mode == read_mode::idle;
  read_interrupted_ = false;
  read_timer_.expires_at(until);
  // Whichever finishes first wins; the other is cancelled and awaited, so
  // nothing refers to the buffer once this returns.
  auto outcome = co_await (stream_->async_read_some(buffer) || read_timer_.async_wait(use_tuple));
  reading_ = false;
  idle_read_ = false;

  if (outcome.index() == 0) {
    auto r = std::get<0>(std::move(outcome));
    if (!r && (forced_ || read_interrupted_)) co_return shutting_down_error();
    if (r && meter_) meter_->add(*r, clock::now());
    co_return r;
  }
  if (forced_ || read_interrupted_) co_return shutting_down_error();
  switch (limit) {
    case read_limit::session:
      log_.info("session timeout: the session lasted {} ms", limits_.session.count());
      co_return error::temporary(
          errc::timed_out, "timed out",
          fmt::format("session: longer than {} ms", limits_.session.count()));
    case read_limit::rate:
      log_.info("too slow: fewer than {} octets/s", meter_->rate().min_bytes_per_second);
      co_return error::temporary(
          errc::timed_out, "too slow",
          fmt::format("transfer: below {} octets/s", meter_->rate().min_bytes_per_second));
    case read_limit::deadline:
      break;
  }
  log_.info("read timeout: no complete input from client in time");
  co_return error::temporary(errc::timed_out, "timed out", "read: deadline passed");
}

asio::awaitable<result<void>> connection::write(asio::const_buffer data) {
  if (forced_) co_return shutting_down_error();
  if (closed_) co_return closed_error();
  co_return co_await do_write(data, limits_.write, false);
}

asio::awaitable<result<void>> connection::write(std::string_view text) {
  co_return co_await write(asio::buffer(text.data(), text.size()));
}

asio::awaitable<result<void>> connection::write_goodbye(std::string_view reply) {
  if (closed_) co_return closed_error();
  co_return co_await do_write(asio::buffer(reply.data(), reply.size()), limits_.goodbye, true);
}

asio::awaitable<result<void>> connection::do_write(asio::const_buffer data,
                                                   std::chrono::milliseconds limit, bool goodbye) {
  ++writes_in_flight_;
  write_timer_.expires_after(limit);
  auto outcome = co_await (stream_->async_write(data) || write_timer_.async_wait(use_tuple));
  if (--writes_in_flight_ == 0) writes_done_.cancel();

  if (outcome.index() == 0) {
    auto r = std::get<0>(std::move(outcome));
    if (!r && forced_ && !goodbye) co_return shutting_down_error();
    co_return r;
  }
  if (forced_ && !goodbye) co_return shutting_down_error();
  // Part of the data may have gone out: the stream cannot be used any more.
  log_.info("write timeout: client took no data for {} ms", limit.count());
  close();
  co_return timed_out_error("write", limit);
}

asio::awaitable<result<void>> connection::start_tls(std::shared_ptr<asio::ssl::context> ctx) {
  if (forced_) co_return shutting_down_error();
  if (closed_) co_return closed_error();
  if (!ctx)
    co_return error::permanent(errc::config_error, "TLS not available",
                               "start_tls: no TLS context");
  if (tls_ != nullptr)
    co_return error::permanent(errc::invalid_input, "TLS already active", "start_tls: already TLS");
  if (reading_ || writes_in_flight_ > 0) {
    co_return error::internal_error("start_tls: a read or write is in progress");
  }
  auto* plain = dynamic_cast<tcp_stream*>(stream_.get());
  if (plain == nullptr) {
    co_return error::internal_error("start_tls: this stream cannot be upgraded to TLS");
  }

  // The socket moves into the TLS stream: the plain stream had no read-ahead,
  // so there is nothing left over to carry across.
  auto upgraded =
      std::make_unique<tls_stream>(plain->release(), std::move(ctx), tls_stream::role::server);
  tls_ = upgraded.get();
  stream_ = std::move(upgraded);

  handshaking_ = true;
  reading_ = true;
  read_interrupted_ = false;
  read_timer_.expires_after(limits_.handshake);
  auto outcome = co_await (tls_->async_handshake() || read_timer_.async_wait(use_tuple));
  reading_ = false;
  handshaking_ = false;

  if (outcome.index() == 0) {
    auto r = std::get<0>(std::move(outcome));
    if (r) {
      log_.info("TLS established: {} {}", tls_protocol(), tls_cipher());
      co_return ok();
    }
    close();
    if (forced_) co_return shutting_down_error();
    log_.info("TLS handshake failed: {}", r.err().detail);
    co_return r;
  }
  close();
  if (forced_) co_return shutting_down_error();
  log_.info("TLS handshake timeout after {} ms", limits_.handshake.count());
  co_return timed_out_error("TLS handshake", limits_.handshake);
}

result<void> connection::start_compress(std::string_view already_read) {
  if (forced_) return shutting_down_error();
  if (closed_) return closed_error();
  if (deflate_ != nullptr) {
    return error::permanent(errc::invalid_input, "compression already active",
                            "start_compress: already compressed");
  }
  if (reading_ || writes_in_flight_ > 0) {
    return error::internal_error("start_compress: a read or write is in progress");
  }
  // The TLS stream (if any) moves inside the deflate stream; tls_ keeps
  // pointing at it for the protocol and cipher names.
  auto compressed = std::make_unique<deflate_stream>(std::move(stream_), already_read);
  deflate_ = compressed.get();
  stream_ = std::move(compressed);
  log_.info("COMPRESS=DEFLATE active{}", already_read.empty() ? "" : " (with pipelined input)");
  return ok();
}

std::shared_ptr<asio::ssl::context> connection::tls_context() const {
  return store_ != nullptr ? store_->current() : nullptr;
}

bool connection::is_tls() const noexcept { return tls_ != nullptr; }

asio::ip::tcp::socket* connection::plain_socket() noexcept {
  if (tls_ != nullptr || deflate_ != nullptr) return nullptr;
  auto* plain = dynamic_cast<tcp_stream*>(stream_.get());
  return plain != nullptr ? &plain->socket() : nullptr;
}

std::string connection::tls_protocol() const {
  return tls_ != nullptr ? tls::protocol_name(tls_->native_handle()) : "";
}

std::string connection::tls_cipher() const {
  return tls_ != nullptr ? tls::cipher_name(tls_->native_handle()) : "";
}

void connection::begin_drain() {
  if (draining_) return;
  draining_ = true;
  if (reading_ && idle_read_) {
    read_interrupted_ = true;
    // Cancels a pending wait, or makes one not yet started complete at once.
    read_timer_.expires_at(clock::now());
  }
}

asio::awaitable<void> connection::force_close(std::string reply) {
  if (closed_ || forced_) co_return;
  forced_ = true;
  const bool was_closing = closing_;
  read_timer_.expires_at(clock::now());
  write_timer_.expires_at(clock::now());
  // A relay reading plain_socket() itself waits on the socket, not on read_timer_.
  if (auto* socket = plain_socket()) {
    boost::system::error_code ignored;
    socket->cancel(ignored);
  }
  // A write interrupted half-way must complete before another may start.
  while (writes_in_flight_ > 0) {
    writes_done_.expires_at(clock::time_point::max());
    co_await writes_done_.async_wait(use_tuple);
  }
  if (!closed_ && !handshaking_ && !was_closing && !reply.empty()) {
    auto r = co_await do_write(asio::buffer(reply), limits_.goodbye, true);
    if (!r) log_.debug("shutdown reply not delivered: {}", r.err().describe());
  }
  close();
}

asio::awaitable<void> connection::finish() {
  if (closed_ || forced_ || closing_) co_return;
  closing_ = true;
  if (tls_ != nullptr) {
    write_timer_.expires_after(limits_.goodbye);
    co_await (stream_->async_shutdown() || write_timer_.async_wait(use_tuple));
  } else {
    auto r = co_await stream_->async_shutdown();
    (void)r;  // the peer may be gone already; closing follows either way
  }
  close();
}

void connection::close() {
  if (closed_) return;
  closed_ = true;
  if (deflate_ != nullptr) {
    log_.info("compressed: {} octets sent as {}", deflate_->plain_bytes_out(),
              deflate_->compressed_bytes_out());
  }
  stream_->close();
}

}  // namespace hamail::net

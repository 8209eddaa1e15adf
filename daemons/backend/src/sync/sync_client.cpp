#include "sync/sync_client.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <variant>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/tls/context.hpp"

namespace hamail::backend::sync {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator||;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

error timed_out(std::string_view what, const std::string& peer) {
  return error::temporary(errc::timed_out, "sync peer timed out",
                          fmt::format("{}: {} did not answer in time", what, peer));
}

}  // namespace

sync_client::sync_client(std::unique_ptr<net::byte_stream> stream, std::string peer,
                         std::chrono::milliseconds timeout)
    : stream_(std::move(stream)), peer_(std::move(peer)), timeout_(timeout) {}

asio::awaitable<result<std::unique_ptr<sync_client>>> sync_client::connect(
    asio::any_io_executor ex, const std::string& host, std::uint16_t port,
    const std::shared_ptr<asio::ssl::context>& tls, bool check_host,
    std::chrono::milliseconds timeout) {
  const std::string peer = fmt::format("{}:{}", host, port);
  asio::steady_timer timer(ex);
  timer.expires_after(timeout);
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, port);
  } else {
    tcp::resolver resolver(ex);
    const std::string service = std::to_string(port);
    auto resolved =
        co_await (resolver.async_resolve(host, service, use_tuple) || timer.async_wait(use_tuple));
    if (resolved.index() == 1) co_return timed_out("resolve", peer);
    auto [rec, results] = std::get<0>(std::move(resolved));
    if (rec) {
      co_return error::temporary(errc::unavailable, "source store unreachable",
                                 fmt::format("resolve {}: {}", host, rec.message()));
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  tcp::socket socket(ex);
  auto connected =
      co_await (asio::async_connect(socket, endpoints, use_tuple) || timer.async_wait(use_tuple));
  if (connected.index() == 1) co_return timed_out("connect", peer);
  if (auto [cec, ep] = std::get<0>(connected); cec) {
    co_return error::temporary(errc::unavailable, "source store unreachable",
                               fmt::format("connect {}: {}", peer, cec.message()));
  }
  socket.set_option(tcp::no_delay(true), ec);
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  std::unique_ptr<net::tls_stream> stream;
  try {
    stream =
        std::make_unique<net::tls_stream>(std::move(socket), tls, net::tls_stream::role::client);
  } catch (const boost::system::system_error& e) {
    co_return error::temporary(errc::tls_error, "TLS with the source store failed", e.what());
  }
  SSL* ssl = stream->native_handle();
  if (check_host) {
    if (auto p = tls::prepare_client(ssl, host); !p) co_return std::move(p).err();
  }
  auto done = co_await (stream->async_handshake() || timer.async_wait(use_tuple));
  if (done.index() == 1) co_return timed_out("TLS handshake", peer);
  if (auto r = std::get<0>(std::move(done)); !r) {
    const long verify = SSL_get_verify_result(ssl);
    std::string why = r.err().describe();
    if (verify != X509_V_OK) why += std::string(": ") + X509_verify_cert_error_string(verify);
    co_return error::temporary(errc::tls_error, "TLS with the source store failed",
                               fmt::format("TLS with {}: {}", peer, why));
  }
  co_return std::unique_ptr<sync_client>(new sync_client(std::move(stream), peer, timeout));
}

// Not coroutines: GCC 12 loses by-value coroutine parameters, so the arguments go into members
// and parameterless coroutines do the work.
asio::awaitable<result<void>> sync_client::send(std::string_view line) {
  out_.assign(line);
  out_ += "\r\n";
  return write_out();
}

asio::awaitable<result<void>> sync_client::write_out() {
  asio::steady_timer timer(stream_->get_executor());
  timer.expires_after(timeout_);
  auto done = co_await (stream_->async_write(asio::buffer(out_)) || timer.async_wait(use_tuple));
  if (done.index() == 1) co_return timed_out("write", peer_);
  co_return std::get<0>(std::move(done));
}

asio::awaitable<result<void>> sync_client::fill() {
  asio::steady_timer timer(stream_->get_executor());
  timer.expires_after(timeout_);
  std::string chunk(64 * 1024, '\0');
  auto got =
      co_await (stream_->async_read_some(asio::buffer(chunk)) || timer.async_wait(use_tuple));
  if (got.index() == 1) co_return timed_out("read", peer_);
  auto n = std::get<0>(std::move(got));
  if (!n) co_return std::move(n).err();
  in_.append(chunk.data(), *n);
  co_return ok();
}

asio::awaitable<result<reply>> sync_client::read_reply() {
  for (;;) {
    if (!in_.empty()) {
      auto step = lines_.feed(in_);
      in_.erase(0, step.consumed);
      if (step.status == line_status::too_long) {
        co_return error::temporary(errc::invalid_input, "sync protocol error",
                                   fmt::format("{}: reply line too long", peer_));
      }
      if (step.status == line_status::line) {
        auto parsed = parse_reply(step.line);
        if (!parsed.rep) {
          co_return error::temporary(errc::invalid_input, "sync protocol error",
                                     fmt::format("{}: {}", peer_, parsed.error));
        }
        co_return std::move(*parsed.rep);
      }
    }
    // Two statements: GCC 12 frees the frame twice for co_await in an if's init.
    auto r = co_await fill();
    if (!r) co_return std::move(r).err();
  }
}

asio::awaitable<result<std::string>> sync_client::read_payload(std::size_t max) {
  payload_max_ = max;
  return read_payload_now();
}

asio::awaitable<result<std::string>> sync_client::read_payload_now() {
  if (in_.empty()) {
    auto r = co_await fill();
    if (!r) co_return std::move(r).err();
  }
  const std::size_t n = std::min(payload_max_, in_.size());
  std::string out = in_.substr(0, n);
  in_.erase(0, n);
  co_return out;
}

asio::awaitable<void> sync_client::close() {
  asio::steady_timer timer(stream_->get_executor());
  timer.expires_after(std::chrono::seconds(2));
  (void)co_await (stream_->async_shutdown() || timer.async_wait(use_tuple));
  stream_->close();
}

}  // namespace hamail::backend::sync

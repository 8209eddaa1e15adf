#include "backend_link.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace hamail::proxy {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator||;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

error timed_out(std::string_view what, const std::string& peer) {
  return error::temporary(errc::timed_out, "backend timed out",
                          fmt::format("{}: {} did not answer in time", what, peer));
}

}  // namespace

backend_link::backend_link(std::unique_ptr<net::byte_stream> stream, std::string peer)
    : stream_(std::move(stream)), peer_(std::move(peer)) {}

asio::awaitable<result<std::unique_ptr<backend_link>>> backend_link::connect(
    asio::any_io_executor ex, const backend_target& target, clock::time_point deadline) {
  const std::string peer = fmt::format("{}:{}", target.host, target.port);
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(target.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, target.port);
  } else {
    tcp::resolver resolver(ex);
    auto resolved =
        co_await (resolver.async_resolve(target.host, std::to_string(target.port), use_tuple) ||
                  timer.async_wait(use_tuple));
    if (resolved.index() == 1) co_return timed_out("resolve", peer);
    auto [rec, results] = std::get<0>(std::move(resolved));
    if (rec) {
      co_return error::temporary(errc::unavailable, "backend unavailable",
                                 fmt::format("resolve {}: {}", target.host, rec.message()));
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  tcp::socket socket(ex);
  auto connected =
      co_await (asio::async_connect(socket, endpoints, use_tuple) || timer.async_wait(use_tuple));
  if (connected.index() == 1) co_return timed_out("connect", peer);
  if (auto [cec, ep] = std::get<0>(connected); cec) {
    co_return error::temporary(errc::unavailable, "backend unavailable",
                               fmt::format("connect {}: {}", peer, cec.message()));
  }
  socket.set_option(tcp::no_delay(true), ec);
  // A backend whose node vanished without a reset is found by keepalive.
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  auto stream = std::make_unique<net::tcp_stream>(std::move(socket));
  co_return std::unique_ptr<backend_link>(new backend_link(std::move(stream), peer));
}

asio::awaitable<result<void>> backend_link::start_tls(std::shared_ptr<asio::ssl::context> ctx,
                                                      const std::string& tls_name,
                                                      clock::time_point deadline) {
  auto* plain = dynamic_cast<net::tcp_stream*>(stream_.get());
  if (plain == nullptr) co_return error::internal_error("backend_link: TLS already active");
  in_.clear();
  std::unique_ptr<net::tls_stream> tls;
  try {
    tls = std::make_unique<net::tls_stream>(plain->release(), std::move(ctx),
                                            net::tls_stream::role::client);
  } catch (const boost::system::system_error& e) {
    co_return error::temporary(errc::tls_error, "backend TLS failed", e.what());
  }
  SSL* ssl = tls->native_handle();
  if (!tls_name.empty()) {
    boost::system::error_code ec;
    (void)asio::ip::make_address(tls_name, ec);
    const bool is_ip = !ec;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), tls_name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, tls_name.c_str());
      SSL_set1_host(ssl, tls_name.c_str());
    }
  }
  asio::steady_timer timer(stream_->get_executor());
  timer.expires_at(deadline);
  auto* raw = tls.get();
  stream_ = std::move(tls);
  auto done = co_await (raw->async_handshake() || timer.async_wait(use_tuple));
  if (done.index() == 1) co_return timed_out("TLS handshake", peer_);
  auto r = std::get<0>(std::move(done));
  if (!r) {
    const long verify = SSL_get_verify_result(ssl);
    std::string why = r.err().describe();
    if (verify != X509_V_OK) why += std::string(": ") + X509_verify_cert_error_string(verify);
    co_return error::temporary(errc::tls_error, "backend TLS failed",
                               fmt::format("TLS with {}: {}", peer_, why));
  }
  co_return result<void>{};
}

asio::awaitable<result<std::string>> backend_link::read_line(clock::time_point deadline,
                                                             std::size_t max_line) {
  asio::steady_timer timer(stream_->get_executor());
  timer.expires_at(deadline);
  std::size_t scanned = 0;
  for (;;) {
    const auto lf = in_.find('\n', scanned);
    if (lf != std::string::npos) {
      std::string line = in_.substr(0, lf);
      in_.erase(0, lf + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      co_return line;
    }
    scanned = in_.size();
    if (in_.size() > max_line) {
      co_return error::temporary(errc::invalid_input, "backend protocol error",
                                 fmt::format("{}: line longer than {} octets", peer_, max_line));
    }
    const auto old = in_.size();
    in_.resize(old + 4096);
    auto got = co_await (stream_->async_read_some(asio::buffer(in_.data() + old, 4096)) ||
                         timer.async_wait(use_tuple));
    if (got.index() == 1) {
      in_.resize(old);
      co_return timed_out("read", peer_);
    }
    auto n = std::get<0>(std::move(got));
    if (!n) {
      in_.resize(old);
      co_return std::move(n).err();
    }
    in_.resize(old + *n);
  }
}

asio::awaitable<result<void>> backend_link::write(std::string_view data,
                                                  clock::time_point deadline) {
  asio::steady_timer timer(stream_->get_executor());
  timer.expires_at(deadline);
  auto done = co_await (stream_->async_write(asio::buffer(data)) || timer.async_wait(use_tuple));
  if (done.index() == 1) co_return timed_out("write", peer_);
  co_return std::get<0>(std::move(done));
}

std::string backend_link::take_buffered() {
  std::string out;
  out.swap(in_);
  return out;
}

result<std::shared_ptr<asio::ssl::context>> make_backend_tls_context(const std::string& ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
  }
  if (ec) {
    return error::permanent(errc::config_error, "backend TLS",
                            fmt::format("CA file {}: {}", ca_file, ec.message()));
  }
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  return ctx;
}

}  // namespace hamail::proxy

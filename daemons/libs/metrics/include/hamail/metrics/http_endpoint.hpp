#pragma once

// The daemons' operational HTTP endpoint: a net::protocol serving
//   GET /metrics  the registry (OpenMetrics or Prometheus text, by Accept)
//   GET /ready    200 "ready" or 503 "not ready: <reason>" (load balancer checks)
//   GET /live     200 "live" while the process runs
// HEAD on each; 404 for other paths, 405 for other methods, 400/414/431/501/505
// for refused requests (see http::request_error). HTTP/1.1 keep-alive with an
// idle timeout, "Connection: close" honoured, every request and connection bounded.
//
// Wiring (see docs/metrics.md): add a factory under the listener protocol name
// "http" and a [[listener]] with protocol = "http":
//
//   factories["http"] = metrics::http_endpoint_factory(registry, ready_check);
//
// The endpoint runs on the daemon's io_context like every other protocol, so
// callback metrics and the readiness check run on that thread.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "hamail/metrics/registry.hpp"
#include "hamail/net/server.hpp"
#include "hamail/protocol/http/request_parser.hpp"

namespace hamail::metrics {

/// What GET /ready answers: ready, or not with a reason for the 503 body.
struct readiness {
  bool ready = true;
  std::string reason;  ///< why not ready ("directory unreachable"); one short line

  /// Ready.
  static readiness ok() { return {}; }
  /// Not ready, because of `why`.
  static readiness not_ready(std::string why) { return {false, std::move(why)}; }
};

/// Decides readiness on each GET /ready, on the daemon's io_context (it may
/// await, e.g. ping the directory). It must honour cancellation: it is
/// cancelled at endpoint_options::readiness_timeout, which answers 503.
using readiness_check = std::function<boost::asio::awaitable<readiness>()>;

/// Timeouts and limits of the endpoint.
struct endpoint_options {
  /// A keep-alive connection waiting for its next request is closed after this.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
  /// A request head must arrive whole within this after its first octet (else 408).
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  /// The readiness check's budget; past it /ready answers 503.
  std::chrono::milliseconds readiness_timeout = std::chrono::seconds(5);
  /// After this many requests the connection is closed (Connection: close).
  std::size_t max_requests_per_connection = 1000;
  /// Request head limits (1 KiB request line, 8 KiB headers, 50 fields).
  http::request_limits limits;
};

/// The HTTP endpoint as a net::protocol; one instance serves a listener.
class http_endpoint final : public net::protocol {
 public:
  /// `reg` must outlive the endpoint. An empty `ready` means always ready.
  http_endpoint(registry& reg, readiness_check ready, endpoint_options opts = {});

  boost::asio::awaitable<void> run(net::connection& conn) override;
  /// A 503 response with Connection: close.
  std::string busy_reply() const override;
  /// A 503 response with Connection: close.
  std::string shutdown_reply() const override;

  /// The full response (status line to body) to one parsed request. `close`
  /// is the caller's decision to end the connection after it (Connection:
  /// close is then sent); `draining` makes /ready answer 503.
  boost::asio::awaitable<std::string> respond(const http::request& req, bool close, bool draining);

 private:
  boost::asio::awaitable<readiness> check_ready();

  registry& registry_;
  readiness_check ready_;
  endpoint_options opts_;
};

/// A factory for net::protocol_factories (conventionally under "http").
net::protocol_factory http_endpoint_factory(registry& reg, readiness_check ready,
                                            endpoint_options opts = {});

/// Registers `<prefix>_connections_active` (gauge) and
/// `<prefix>_connections_accepted_total` / `_rejected_total` (counters), read
/// from `srv` at scrape time on the io_context thread. `srv` must outlive `reg`'s scrapes.
void add_connection_metrics(registry& reg, std::string_view prefix, const net::server& srv);

}  // namespace hamail::metrics

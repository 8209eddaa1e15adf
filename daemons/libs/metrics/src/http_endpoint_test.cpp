// The HTTP endpoint over real loopback sockets: a net::server with the
// endpoint runs on its own io_context thread (as in a daemon) on 127.0.0.1
// port 0, and real clients talk to it: curl for well-formed requests, a raw
// socket for the malformed and slow ones.

#include "hamail/metrics/http_endpoint.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "hamail/test/process.hpp"

namespace hamail::metrics {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

/// A net::server with the endpoint under "http", run on its own thread.
class running_endpoint {
 public:
  explicit running_endpoint(endpoint_options opts = {}) {
    listener_settings l;
    l.name = "metrics";
    l.protocol = "http";
    l.address = "127.0.0.1";
    l.port = 0;
    limits_settings lim;
    lim.max_connections = 20;
    lim.max_connections_per_ip = 20;
    net::protocol_factories factories;
    factories["http"] = http_endpoint_factory(
        registry,
        [this]() -> asio::awaitable<readiness> {
          if (slow_ready) {
            asio::steady_timer t(co_await asio::this_coro::executor, 30s);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            co_return readiness::not_ready("slept through");
          }
          std::lock_guard lock(mutex);
          co_return ready ? readiness::ok() : readiness::not_ready(reason);
        },
        opts);
    server = std::make_unique<net::server>(io, std::vector{l}, lim, nullptr, std::move(factories));
    auto bound = server->listen();
    CPPUNIT_ASSERT_MESSAGE(bound ? "" : bound.err().describe(), bound.has_value());
    port = server->bound_endpoints().at(0).port();
    // Read on the io_context thread at scrape time, as a daemon would.
    registry.add_callback_gauge("test_active_connections", "Open connections.",
                                [s = server.get()] { return double(s->active_connections()); });
    registry.add_callback_counter("test_accepted_connections", "Connections accepted.",
                                  [s = server.get()] { return s->accepted_connections(); });
    asio::co_spawn(io, server->run(), asio::detached);
    thread = std::thread([this] { io.run(); });
  }

  ~running_endpoint() {
    asio::post(io, [this] { server->drain(std::chrono::steady_clock::now()); });
    thread.join();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }

  metrics::registry registry;
  std::mutex mutex;
  bool ready = true;
  std::string reason;
  std::atomic<bool> slow_ready{false};
  asio::io_context io;
  std::unique_ptr<net::server> server;
  std::uint16_t port = 0;
  std::thread thread;
};

/// Runs curl (never through a shell) and returns its stdout.
std::string curl(std::vector<std::string> args) {
  // --noproxy: an http_proxy in the environment must not divert loopback requests.
  args.insert(args.begin(), {"curl", "-s", "--noproxy", "*", "--max-time", "20"});
  const auto r = test::run_command(args, 30s);
  CPPUNIT_ASSERT_MESSAGE("curl failed: exit " + std::to_string(r.exit_code) + " " + r.err,
                         r.exit_code == 0);
  return r.out;
}

/// Sends `request` on a fresh connection (then shuts down its sending side
/// when `half_close`) and returns everything the server sent until it closed;
/// "<RESET>" appended when it reset the connection, "<TIMEOUT>" when it did
/// not close within `limit`.
std::string raw_exchange(std::uint16_t port, const std::string& request,
                         std::chrono::milliseconds limit = 10s, bool half_close = true) {
  asio::io_context io;
  tcp::socket socket(io);
  std::string got;
  bool closed = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const auto t = asio::as_tuple(asio::use_awaitable);
        auto [ec] = co_await socket.async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), t);
        if (ec) co_return;
        if (!request.empty()) co_await asio::async_write(socket, asio::buffer(request), t);
        boost::system::error_code ignored;
        if (half_close) socket.shutdown(tcp::socket::shutdown_send, ignored);
        char buf[4096];
        for (;;) {
          auto [rec, n] = co_await socket.async_read_some(asio::buffer(buf), t);
          got.append(buf, n);
          if (rec == asio::error::connection_reset) got += "<RESET>";
          if (rec) break;
        }
        closed = true;
      },
      asio::detached);
  io.run_for(limit);
  return closed ? got : got + "<TIMEOUT>";
}

/// The body of a response (after the blank line).
std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class http_endpoint_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(http_endpoint_test);
  CPPUNIT_TEST(live_and_metrics_over_curl);
  CPPUNIT_TEST(openmetrics_when_accepted);
  CPPUNIT_TEST(ready_follows_the_check_with_reason);
  CPPUNIT_TEST(slow_readiness_check_answers_503_in_time);
  CPPUNIT_TEST(unknown_path_404_other_method_405_head_without_body);
  CPPUNIT_TEST(keep_alive_reuses_the_connection_and_close_is_honoured);
  CPPUNIT_TEST(http_1_0_closes_unless_keep_alive_asked);
  CPPUNIT_TEST(malformed_requests_get_an_error_and_close);
  CPPUNIT_TEST(pipelined_requests_answered_in_order);
  CPPUNIT_TEST(idle_keep_alive_connection_closes_after_timeout);
  CPPUNIT_TEST(slow_request_head_gets_408);
  CPPUNIT_TEST(max_requests_per_connection_closes);
  CPPUNIT_TEST_SUITE_END();

 public:
  void live_and_metrics_over_curl() {
    running_endpoint e;
    e.registry.counters("test_failures", "Failures by kind.", {"kind"}).with({"timeout"}).inc(2);
    const auto live = curl({"-i", e.url("/live")});
    CPPUNIT_ASSERT_EQUAL(std::string("HTTP/1.1 200 OK\r\n"
                                     "Content-Type: text/plain; charset=utf-8\r\n"
                                     "Content-Length: 5\r\n"
                                     "Cache-Control: no-store\r\n"
                                     "\r\n"
                                     "live\n"),
                         live);
    // curl sends "Accept: */*": the Prometheus 0.0.4 text.
    const auto metrics = curl({"-i", e.url("/metrics")});
    CPPUNIT_ASSERT_MESSAGE(metrics, metrics.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CPPUNIT_ASSERT_MESSAGE(metrics, has(metrics,
                                        "\r\nContent-Type: text/plain; version=0.0.4; "
                                        "charset=utf-8\r\n"));
    const auto body = body_of(metrics);
    CPPUNIT_ASSERT(has(metrics, "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("# HELP test_accepted_connections_total Connections accepted.\n"
                    "# TYPE test_accepted_connections_total counter\n"
                    "test_accepted_connections_total 2\n"
                    "# HELP test_active_connections Open connections.\n"
                    "# TYPE test_active_connections gauge\n"
                    "test_active_connections 1.0\n"
                    "# HELP test_failures_total Failures by kind.\n"
                    "# TYPE test_failures_total counter\n"
                    "test_failures_total{kind=\"timeout\"} 2\n"),
        body);
  }

  void openmetrics_when_accepted() {
    running_endpoint e;
    e.registry.add_histogram("test_latency_seconds", "Latency.", {0.1}).observe(0.05);
    const auto r =
        curl({"-i", "-H", "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
              e.url("/metrics")});
    CPPUNIT_ASSERT_MESSAGE(r, r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CPPUNIT_ASSERT_MESSAGE(
        r,
        has(r, "\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"));
    const auto body = body_of(r);
    CPPUNIT_ASSERT_MESSAGE(body, has(body,
                                     "# TYPE test_latency_seconds histogram\n"
                                     "# UNIT test_latency_seconds seconds\n"
                                     "test_latency_seconds_bucket{le=\"0.1\"} 1\n"
                                     "test_latency_seconds_bucket{le=\"+Inf\"} 1\n"
                                     "test_latency_seconds_count 1\n"
                                     "test_latency_seconds_sum 0.05\n"));
    CPPUNIT_ASSERT_MESSAGE(body, body.size() >= 6 && body.substr(body.size() - 6) == "# EOF\n");
  }

  void ready_follows_the_check_with_reason() {
    running_endpoint e;
    CPPUNIT_ASSERT_EQUAL(std::string("ready\n200"), curl({"-w", "%{http_code}", e.url("/ready")}));
    {
      std::lock_guard lock(e.mutex);
      e.ready = false;
      e.reason = "directory unreachable\r\nX-Injected: 1";
    }
    // The reason is one line of the body, never a header.
    const std::string body = "not ready: directory unreachable  X-Injected: 1\n";
    const auto r = curl({"-i", e.url("/ready")});
    CPPUNIT_ASSERT_EQUAL(
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: " +
            std::to_string(body.size()) +
            "\r\n"
            "Cache-Control: no-store\r\n"
            "\r\n" +
            body,
        r);
    {
      std::lock_guard lock(e.mutex);
      e.ready = true;
    }
    CPPUNIT_ASSERT_EQUAL(std::string("ready\n200"), curl({"-w", "%{http_code}", e.url("/ready")}));
  }

  void slow_readiness_check_answers_503_in_time() {
    endpoint_options opts;
    opts.readiness_timeout = 300ms;
    running_endpoint e(opts);
    e.slow_ready = true;
    const auto start = std::chrono::steady_clock::now();
    const auto r = curl({"-i", e.url("/ready")});
    const auto took = std::chrono::steady_clock::now() - start;
    CPPUNIT_ASSERT_MESSAGE(r, r.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
    CPPUNIT_ASSERT_EQUAL(std::string("not ready: readiness check timed out\n"), body_of(r));
    CPPUNIT_ASSERT(took >= 250ms && took < 10s);
    // /live does not depend on the check.
    CPPUNIT_ASSERT_EQUAL(std::string("live\n"), curl({e.url("/live")}));
  }

  void unknown_path_404_other_method_405_head_without_body() {
    running_endpoint e;
    const auto missing = curl({"-i", e.url("/metricsx")});
    CPPUNIT_ASSERT_MESSAGE(missing, missing.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CPPUNIT_ASSERT_EQUAL(std::string("not found\n"), body_of(missing));
    const auto post = curl({"-i", "-X", "POST", e.url("/metrics")});
    CPPUNIT_ASSERT_MESSAGE(post, post.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
    CPPUNIT_ASSERT_MESSAGE(post, has(post, "\r\nAllow: GET, HEAD\r\n"));
    // A body is refused before routing: the connection cannot be reused.
    const auto with_body = curl({"-i", "-d", "x=1", e.url("/metrics")});
    CPPUNIT_ASSERT_MESSAGE(with_body, with_body.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CPPUNIT_ASSERT_MESSAGE(with_body, has(with_body, "\r\nConnection: close\r\n"));
    // HEAD: the GET headers, Content-Length included, and no body.
    const auto head = curl({"-I", e.url("/live")});
    CPPUNIT_ASSERT_EQUAL(std::string("HTTP/1.1 200 OK\r\n"
                                     "Content-Type: text/plain; charset=utf-8\r\n"
                                     "Content-Length: 5\r\n"
                                     "Cache-Control: no-store\r\n"
                                     "\r\n"),
                         head);
    // The query string is not part of the path.
    CPPUNIT_ASSERT_EQUAL(std::string("live\n"), curl({e.url("/live?verbose=1")}));
  }

  void keep_alive_reuses_the_connection_and_close_is_honoured() {
    running_endpoint e;
    // num_connects is 0 for a transfer that reused the previous connection.
    CPPUNIT_ASSERT_EQUAL(
        std::string("1 0 0 "),
        curl({"-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} ",
              e.url("/live"), e.url("/ready"), e.url("/metrics")}));
    CPPUNIT_ASSERT_EQUAL(std::string("1 1 "),
                         curl({"-o", "/dev/null", "-o", "/dev/null", "-H", "Connection: close",
                               "-w", "%{num_connects} ", e.url("/live"), e.url("/live")}));
    const auto closing = curl({"-i", "-H", "Connection: close", e.url("/live")});
    CPPUNIT_ASSERT_MESSAGE(closing, has(closing, "\r\nConnection: close\r\n"));
  }

  void http_1_0_closes_unless_keep_alive_asked() {
    running_endpoint e;
    const auto plain = raw_exchange(e.port, "GET /live HTTP/1.0\r\n\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("HTTP/1.1 200 OK\r\n"
                                     "Content-Type: text/plain; charset=utf-8\r\n"
                                     "Content-Length: 5\r\n"
                                     "Cache-Control: no-store\r\n"
                                     "Connection: close\r\n"
                                     "\r\n"
                                     "live\n"),
                         plain);
    const auto kept = raw_exchange(
        e.port, "GET /live HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /live HTTP/1.0\r\n\r\n");
    CPPUNIT_ASSERT_MESSAGE(kept,
                           has(kept, "\r\nConnection: keep-alive\r\n\r\nlive\nHTTP/1.1 200 OK"));
    CPPUNIT_ASSERT_MESSAGE(kept, kept.size() > 6 && kept.substr(kept.size() - 6) == "\nlive\n");
  }

  void malformed_requests_get_an_error_and_close() {
    running_endpoint e;
    struct {
      std::string request;
      std::string status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
        {"GET /live HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
        {"GET /live HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
         "HTTP/1.1 501 Not Implemented\r\n"},
        {"GET /" + std::string(2000, 'a') + " HTTP/1.1\r\n\r\n", "HTTP/1.1 414 URI Too Long\r\n"},
        {"GET / HTTP/1.1\r\nX: " + std::string(9000, 'v') + "\r\n\r\n",
         "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
        {"GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
        // A body the server refuses to read: the response still arrives whole,
        // ended by FIN rather than a reset.
        {"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 50000\r\n\r\n" +
             std::string(50000, 'b'),
         "HTTP/1.1 400 Bad Request\r\n"},
        // What follows an error is never read as a request.
        {"BAD\r\n\r\nGET /live HTTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    };
    for (const auto& c : cases) {
      const auto r = raw_exchange(e.port, c.request);
      CPPUNIT_ASSERT_MESSAGE(r, r.rfind(c.status, 0) == 0);
      CPPUNIT_ASSERT_MESSAGE(r, has(r, "\r\nConnection: close\r\n"));
      CPPUNIT_ASSERT_MESSAGE(r, !has(r, "<TIMEOUT>") && !has(r, "<RESET>") && !has(r, "live\n"));
    }
  }

  void pipelined_requests_answered_in_order() {
    running_endpoint e;
    const auto r = raw_exchange(e.port,
                                "GET /live HTTP/1.1\r\nHost: a\r\n\r\n"
                                "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                                "HEAD /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    const auto first = r.find("HTTP/1.1 200 OK");
    const auto second = r.find("HTTP/1.1 404 Not Found");
    const auto third = r.find("HTTP/1.1 200 OK", first + 1);
    CPPUNIT_ASSERT_MESSAGE(r, first == 0 && second != std::string::npos &&
                                  third != std::string::npos && first < second && second < third);
    CPPUNIT_ASSERT_MESSAGE(r, r.size() > 4 && r.substr(r.size() - 4) == "\r\n\r\n");  // HEAD
  }

  void idle_keep_alive_connection_closes_after_timeout() {
    endpoint_options opts;
    opts.idle_timeout = 300ms;
    running_endpoint e(opts);
    const auto start = std::chrono::steady_clock::now();
    const auto r = raw_exchange(e.port, "GET /live HTTP/1.1\r\nHost: a\r\n\r\n", 10s, false);
    const auto took = std::chrono::steady_clock::now() - start;
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "<TIMEOUT>"));
    CPPUNIT_ASSERT_EQUAL(std::string("live\n"), body_of(r));
    CPPUNIT_ASSERT(took >= 250ms);
    // A client that connects and says nothing is closed silently too.
    CPPUNIT_ASSERT_EQUAL(std::string(), raw_exchange(e.port, "", 10s, false));
  }

  void slow_request_head_gets_408() {
    endpoint_options opts;
    opts.request_timeout = 300ms;
    running_endpoint e(opts);
    const auto r = raw_exchange(e.port, "GET /live HTTP/1.1\r\nHost: a\r\n", 10s, false);
    CPPUNIT_ASSERT_MESSAGE(r, r.rfind("HTTP/1.1 408 Request Timeout\r\n", 0) == 0);
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "\r\nConnection: close\r\n") && !has(r, "<TIMEOUT>"));
  }

  void max_requests_per_connection_closes() {
    endpoint_options opts;
    opts.max_requests_per_connection = 2;
    running_endpoint e(opts);
    std::string three;
    for (int i = 0; i < 3; ++i) three += "GET /live HTTP/1.1\r\nHost: a\r\n\r\n";
    const auto r = raw_exchange(e.port, three);
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "<TIMEOUT>"));
    CPPUNIT_ASSERT_EQUAL(std::string::npos, r.find("HTTP/1.1", r.find("Connection: close")));
    const auto second = r.find("HTTP/1.1 200 OK", 1);
    CPPUNIT_ASSERT_MESSAGE(r, second != std::string::npos && r.find("Connection: close") > second);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(http_endpoint_test);

}  // namespace
}  // namespace hamail::metrics

#include "hamail/metrics/http_endpoint.hpp"

#include <exception>
#include <tuple>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace hamail::metrics {

namespace asio = boost::asio;
using asio::awaitable;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::size_t max_reason = 200;  // octets of a readiness reason shown

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Error";
}

/// One response. `head` leaves the body out but keeps its Content-Length;
/// `keep_alive_1_0` echoes "Connection: keep-alive" to an HTTP/1.0 client that asked.
struct response {
  int status = 200;
  std::string_view content_type = text_plain;
  std::string body;
  bool head = false;
  bool close = false;
  bool keep_alive_1_0 = false;
  bool allow = false;  // 405: Allow: GET, HEAD

  std::string text() const {
    std::string out;
    out.reserve(160 + (head ? 0 : body.size()));
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\nContent-Type: ";
    out += content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\nCache-Control: no-store\r\n";
    if (allow) out += "Allow: GET, HEAD\r\n";
    if (close) {
      out += "Connection: close\r\n";
    } else if (keep_alive_1_0) {
      out += "Connection: keep-alive\r\n";
    }
    out += "\r\n";
    if (!head) out += body;
    return out;
  }
};

std::string error_response(int status, std::string_view text) {
  response r;
  r.status = status;
  r.body = std::string(text) + "\n";
  r.close = true;
  return r.text();
}

// A reason as one bounded line of printable text.
std::string clean_reason(std::string_view why) {
  std::string out;
  for (char c : why.substr(0, max_reason)) {
    const auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? ' ' : c;
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace

http_endpoint::http_endpoint(registry& reg, readiness_check ready, endpoint_options opts)
    : registry_(reg), ready_(std::move(ready)), opts_(opts) {}

std::string http_endpoint::busy_reply() const { return error_response(503, "busy"); }

std::string http_endpoint::shutdown_reply() const { return error_response(503, "shutting down"); }

awaitable<readiness> http_endpoint::check_ready() {
  using asio::experimental::awaitable_operators::operator||;
  if (!ready_) co_return readiness::ok();
  asio::steady_timer timer(co_await asio::this_coro::executor, opts_.readiness_timeout);
  std::variant<readiness, std::tuple<boost::system::error_code>> outcome;
  try {
    outcome = co_await (ready_() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  } catch (const std::exception& e) {
    // The check is the daemon's code; a throw is answered, not propagated
    // into the session.
    co_return readiness::not_ready(std::string("readiness check failed: ") + e.what());
  }
  if (outcome.index() == 1) co_return readiness::not_ready("readiness check timed out");
  co_return std::get<0>(std::move(outcome));
}

awaitable<std::string> http_endpoint::respond(const http::request& req, bool close, bool draining) {
  response r;
  r.close = close;
  r.keep_alive_1_0 = req.version_minor == 0 && !close;
  r.head = req.verb == http::method::head;
  const auto path = req.path();
  const bool known = path == "/metrics" || path == "/ready" || path == "/live";
  if (!known) {
    r.status = 404;
    r.body = "not found\n";
  } else if (req.verb == http::method::other) {
    r.status = 405;
    r.allow = true;
    r.body = "method not allowed\n";
  } else if (path == "/metrics") {
    const auto f = negotiate(req.header("accept").value_or(""));
    r.content_type = content_type(f);
    r.body = registry_.render(f);
  } else if (path == "/ready") {
    // Not a conditional expression: GCC 12 mishandles temporaries of a
    // co_await inside ?: (double destruction).
    readiness state = readiness::not_ready("shutting down");
    if (!draining) state = co_await check_ready();
    if (state.ready) {
      r.body = "ready\n";
    } else {
      r.status = 503;
      r.body = "not ready: " + clean_reason(state.reason) + "\n";
    }
  } else {
    r.body = "live\n";
  }
  co_return r.text();
}

awaitable<void> http_endpoint::run(net::connection& conn) {
  conn.set_idle_timeout(opts_.idle_timeout);
  http::request_parser parser(opts_.limits);
  // Octets read and not parsed yet: the parser takes everything it is given
  // up to the end of a request head, so this holds at most one read's worth
  // of pipelined requests.
  std::string pending;
  char chunk[4096];
  std::size_t served = 0;
  auto request_deadline = clock::time_point::max();
  for (;;) {
    while (!pending.empty()) {
      auto step = parser.feed(pending);
      pending.erase(0, step.consumed);
      if (step.status == http::parse_status::need_more) break;
      if (step.status == http::parse_status::error) {
        conn.log().info("http: refused request: {}", to_string(*step.error));
        // The server then sends FIN before it closes, so the response is
        // read before any reset that unread octets cause.
        (void)co_await conn.write(
            error_response(http::status_code(*step.error), http::describe(*step.error)));
        co_return;
      }
      ++served;
      const bool close =
          !step.req->keep_alive() || served >= opts_.max_requests_per_connection || conn.draining();
      const auto reply = co_await respond(*step.req, close, conn.draining());
      if (!co_await conn.write(reply) || close) co_return;
      request_deadline = clock::time_point::max();
    }
    result<std::size_t> got = std::size_t(0);
    if (parser.idle()) {
      // Between requests: the keep-alive idle timeout, and a drain ends the wait.
      got = co_await conn.read_some(asio::buffer(chunk), net::read_mode::idle);
      request_deadline = clock::now() + opts_.request_timeout;
    } else {
      if (request_deadline == clock::time_point::max())
        request_deadline = clock::now() + opts_.request_timeout;
      got = co_await conn.read_some(asio::buffer(chunk), net::read_mode::in_command,
                                    request_deadline);
    }
    if (!got) {
      // A slow request head gets 408; an idle keep-alive connection, a drain
      // or a peer that went away just closes (HTTP has no goodbye).
      if (got.err().code == errc::timed_out && !parser.idle())
        (void)co_await conn.write(error_response(408, "Request head not received in time"));
      co_return;
    }
    pending.append(chunk, *got);
  }
}

net::protocol_factory http_endpoint_factory(registry& reg, readiness_check ready,
                                            endpoint_options opts) {
  return [&reg, ready = std::move(ready), opts](const listener_settings&) {
    return std::make_shared<http_endpoint>(reg, ready, opts);
  };
}

void add_connection_metrics(registry& reg, std::string_view prefix, const net::server& srv) {
  const std::string p(prefix);
  reg.add_callback_gauge(p + "_connections_active",
                         "Sessions admitted and not yet ended, all listeners.",
                         [&srv] { return static_cast<double>(srv.active_connections()); });
  reg.add_callback_counter(p + "_connections_accepted",
                           "Sessions admitted since start, all listeners.",
                           [&srv] { return std::uint64_t(srv.accepted_connections()); });
  reg.add_callback_counter(p + "_connections_rejected",
                           "Connections turned away at a connection limit since start.",
                           [&srv] { return std::uint64_t(srv.rejected_connections()); });
}

}  // namespace hamail::metrics

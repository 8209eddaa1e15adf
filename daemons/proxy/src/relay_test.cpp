// relay() between two real loopback TCP connections, both plain (the fast
// path): bulk both ways through a slow reader loses nothing and keeps the
// goodbye watch fed, the idle timeout and the session deadline still end it,
// either side closing ends it, and a forced close ends it with the reply last.

#include <cppunit/extensions/HelperMacros.h>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "frontend.hpp"

namespace {

namespace asio = boost::asio;
namespace net = hamail::net;
using asio::awaitable;
using hamail::proxy::goodbye_watch;
using hamail::proxy::relay_end;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

/// Polls `condition` every 5 ms; false if it did not hold within `limit`.
awaitable<bool> wait_until(std::function<bool()> condition, std::chrono::milliseconds limit = 10s) {
  const auto until = clock_type::now() + limit;
  while (!condition()) {
    if (clock_type::now() >= until) co_return false;
    co_await sleep_for(5ms);
  }
  co_return true;
}

/// `n` octets of text: lines of 100 octets (98 letters, CRLF), none starting with "* BYE".
std::string bulk(std::size_t n, std::size_t seed) {
  std::string s(n, 'x');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = i % 100 == 98 ? '\r' : i % 100 == 99 ? '\n' : static_cast<char>('a' + (i + seed) % 26);
  }
  return s;
}

/// A client, the proxy's two connections and a backend, over loopback TCP,
/// with relay() running between the proxy's ends.
struct relay_fixture {
  explicit relay_fixture(net::timeouts t = net::timeouts{}) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    tcp::socket proxy_client(io);
    acceptor.accept(proxy_client);
    tcp::socket proxy_backend(io);
    proxy_backend.connect(acceptor.local_endpoint());
    acceptor.accept(backend);
    // Small buffers on the client's way, so a client that does not read blocks the proxy soon.
    proxy_client.set_option(asio::socket_base::send_buffer_size(16 * 1024));
    client.set_option(asio::socket_base::receive_buffer_size(16 * 1024));
    conn = std::make_unique<net::connection>(
        std::make_unique<net::tcp_stream>(std::move(proxy_client)), net::connection_info{}, t);
    link = std::make_unique<net::tcp_stream>(std::move(proxy_backend));
  }

  /// Starts relay() with `idle`; `ended` is set when it returns.
  void start_relay(std::chrono::milliseconds idle, goodbye_watch* backend_watch = nullptr) {
    asio::co_spawn(
        io,
        [this, idle, backend_watch]() -> awaitable<void> {
          ended = co_await hamail::proxy::relay(*conn, *link, idle, to_backend, to_client, nullptr,
                                                backend_watch);
        },
        asio::detached);
  }

  /// Runs `body` and the relay; fails after `limit`. Whatever the body left
  /// open is closed when it ends, so every operation completes.
  void run(std::function<awaitable<void>()> body, std::chrono::seconds limit = 60s) {
    std::exception_ptr failure;
    bool timed_out = false;
    asio::steady_timer watchdog(io, limit);
    watchdog.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      timed_out = true;
      io.stop();
    });
    asio::co_spawn(io, body(), [&](std::exception_ptr e) {
      failure = e;
      boost::system::error_code ignored;
      client.close(ignored);
      backend.close(ignored);
      conn->close();
      link->close();
      // With every socket closed the relay must return; the watchdog stays until it did.
      asio::co_spawn(
          io,
          [&]() -> awaitable<void> {
            if (co_await wait_until([&] { return ended.has_value(); }, 5s)) watchdog.cancel();
          },
          asio::detached);
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
    CPPUNIT_ASSERT_MESSAGE("the test or its relay did not finish in time", !timed_out);
  }

  /// Reads whatever arrives until `n` octets or end of stream.
  static awaitable<std::string> read_up_to(tcp::socket& s, std::size_t n, std::size_t chunk,
                                           std::chrono::milliseconds pause) {
    std::string got;
    std::string buf(chunk, '\0');
    while (got.size() < n) {
      auto [ec, k] = co_await s.async_read_some(asio::buffer(buf), use_tuple);
      got.append(buf.data(), k);
      if (ec) break;
      if (pause.count() > 0) co_await sleep_for(pause);
    }
    co_return got;
  }

  asio::io_context io;
  tcp::socket client{io};
  tcp::socket backend{io};
  std::unique_ptr<net::connection> conn;
  std::unique_ptr<net::tcp_stream> link;
  std::string to_backend, to_client;
  std::optional<relay_end> ended;
};

}  // namespace

class relay_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(relay_test);
  CPPUNIT_TEST(plain_sides_take_the_fast_path);
  CPPUNIT_TEST(bulk_both_ways_through_a_slow_reader_loses_nothing);
  CPPUNIT_TEST(idle_timeout_counts_client_silence_on_the_fast_path);
  CPPUNIT_TEST(session_deadline_ends_a_steady_client_on_the_fast_path);
  CPPUNIT_TEST(either_side_closing_ends_the_fast_relay);
  CPPUNIT_TEST(force_close_ends_the_fast_relay_with_the_reply_last);
  CPPUNIT_TEST_SUITE_END();

 public:
  void plain_sides_take_the_fast_path() {
    relay_fixture f;
    CPPUNIT_ASSERT(hamail::proxy::fast_relay_socket(*f.conn, *f.link) != nullptr);
    CPPUNIT_ASSERT(f.conn->start_compress().has_value());
    CPPUNIT_ASSERT(hamail::proxy::fast_relay_socket(*f.conn, *f.link) == nullptr);
  }

  void bulk_both_ways_through_a_slow_reader_loses_nothing() {
    relay_fixture f;
    // Octets either side sent beyond the login go first.
    f.to_backend = "a1 NOOP\r\n";
    f.to_client = "* 1 EXISTS\r\n";
    const std::string down = bulk(8000000, 0) + "* BYE logging out\r\n";
    const std::string up = bulk(2000000, 7);
    goodbye_watch bye("* BYE", false);
    f.start_relay(60s, &bye);
    f.run([&]() -> awaitable<void> {
      std::optional<std::string> client_got, backend_got;
      // The client reads 512 octets every 2 ms for a while: the proxy's writes to it block.
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            auto slow = co_await relay_fixture::read_up_to(f.client, 200 * 512, 512, 2ms);
            auto rest = co_await relay_fixture::read_up_to(f.client, 12 + down.size() - slow.size(),
                                                           64 * 1024, 0ms);
            client_got = slow + rest;
          },
          asio::detached);
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            backend_got = co_await relay_fixture::read_up_to(f.backend, 9 + up.size(), 4096, 0ms);
          },
          asio::detached);
      // Both ways at once.
      bool up_sent = false;
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            auto [ec, n] = co_await asio::async_write(f.client, asio::buffer(up), use_tuple);
            up_sent = !ec;
          },
          asio::detached);
      auto [ec, n] = co_await asio::async_write(f.backend, asio::buffer(down), use_tuple);
      CPPUNIT_ASSERT(!ec);
      CPPUNIT_ASSERT(co_await wait_until([&] { return client_got && backend_got; }, 30s));
      CPPUNIT_ASSERT(up_sent);
      CPPUNIT_ASSERT_EQUAL(std::size_t(12) + down.size(), client_got->size());
      CPPUNIT_ASSERT(*client_got == "* 1 EXISTS\r\n" + down);
      CPPUNIT_ASSERT_EQUAL(std::size_t(9) + up.size(), backend_got->size());
      CPPUNIT_ASSERT(*backend_got == "a1 NOOP\r\n" + up);
      CPPUNIT_ASSERT_MESSAGE("the watch missed the goodbye", bye.seen());
      CPPUNIT_ASSERT(!f.ended);
      // The backend goes away after its goodbye: the relay ends.
      f.backend.close();
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.ended.has_value(); }));
      CPPUNIT_ASSERT(*f.ended == relay_end::backend_closed);
    });
  }

  void idle_timeout_counts_client_silence_on_the_fast_path() {
    relay_fixture f;
    f.start_relay(300ms);
    f.run([&]() -> awaitable<void> {
      // The client talks every 50 ms for 600 ms: twice the idle timeout, never idle.
      const auto start = clock_type::now();
      auto silent = start;  // when the client last wrote
      while (clock_type::now() - start < 600ms) {
        CPPUNIT_ASSERT(!f.ended);
        silent = clock_type::now();
        auto [ec, n] = co_await asio::async_write(f.client, asio::buffer("x", 1), use_tuple);
        CPPUNIT_ASSERT(!ec);
        co_await sleep_for(50ms);
      }
      CPPUNIT_ASSERT(!f.ended);
      // Then only the backend talks: the client's silence ends the relay.
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            while (!f.ended) {
              auto [ec, n] =
                  co_await asio::async_write(f.backend, asio::buffer("* OK\r\n", 6), use_tuple);
              if (ec) co_return;
              co_await sleep_for(50ms);
            }
          },
          asio::detached);
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.ended.has_value(); }, 5s));
      CPPUNIT_ASSERT(*f.ended == relay_end::idle);
      const auto took = clock_type::now() - silent;
      CPPUNIT_ASSERT(took >= 300ms);
      CPPUNIT_ASSERT(took < 1s);
    });
  }

  void session_deadline_ends_a_steady_client_on_the_fast_path() {
    net::timeouts t;
    t.session = 400ms;
    relay_fixture f(t);
    f.start_relay(60s);
    f.run([&]() -> awaitable<void> {
      const auto start = clock_type::now();
      while (!f.ended && clock_type::now() - start < 3s) {
        auto [ec, n] = co_await asio::async_write(f.client, asio::buffer("x", 1), use_tuple);
        CPPUNIT_ASSERT(!ec);
        co_await sleep_for(50ms);
      }
      CPPUNIT_ASSERT(f.ended.has_value());
      CPPUNIT_ASSERT(*f.ended == relay_end::idle);
      CPPUNIT_ASSERT(clock_type::now() - start < 1s);
    });
  }

  void either_side_closing_ends_the_fast_relay() {
    {
      relay_fixture f;
      f.start_relay(60s);
      f.run([&]() -> awaitable<void> {
        co_await sleep_for(20ms);
        f.client.close();
        CPPUNIT_ASSERT(co_await wait_until([&] { return f.ended.has_value(); }));
        CPPUNIT_ASSERT(*f.ended == relay_end::client_closed);
        // The backend's side was let go too: the relay returned, nothing waits on it.
      });
    }
    {
      relay_fixture f;
      f.start_relay(60s);
      f.run([&]() -> awaitable<void> {
        co_await sleep_for(20ms);
        f.backend.close();
        CPPUNIT_ASSERT(co_await wait_until([&] { return f.ended.has_value(); }));
        CPPUNIT_ASSERT(*f.ended == relay_end::backend_closed);
      });
    }
  }

  void force_close_ends_the_fast_relay_with_the_reply_last() {
    relay_fixture f;
    f.start_relay(60s);
    // Outside the test's coroutine: the detached writer and reader below may still wake after
    // it returned, and must not read its freed frame.
    bool stop = false;
    std::optional<std::string> got;
    f.run([&]() -> awaitable<void> {
      // The backend streams answers; the client reads them.
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            const std::string answer = bulk(3000, 1);
            while (!stop) {
              auto [ec, n] = co_await asio::async_write(f.backend, asio::buffer(answer), use_tuple);
              if (ec) co_return;
              co_await sleep_for(1ms);
            }
          },
          asio::detached);
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            got = co_await relay_fixture::read_up_to(f.client, std::size_t(-1), 4096, 0ms);
          },
          asio::detached);
      co_await sleep_for(100ms);
      CPPUNIT_ASSERT(!f.ended);
      // What the server does at the drain deadline.
      const std::string reply = "* BYE Server shutting down\r\n";
      co_await f.conn->force_close(reply);
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.ended.has_value(); }));
      CPPUNIT_ASSERT(*f.ended == relay_end::client_closed);
      CPPUNIT_ASSERT(co_await wait_until([&] { return got.has_value(); }));
      stop = true;
      CPPUNIT_ASSERT(got->size() > reply.size());
      CPPUNIT_ASSERT_EQUAL(reply, got->substr(got->size() - reply.size()));
    });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(relay_test);

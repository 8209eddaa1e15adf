// connection over the in-memory stream: read modes against drain, timeouts,
// forced close, and what start_tls refuses; over loopback TCP: the plain
// socket a relay may use, and force_close() waking a wait on it.

#include <boost/asio/read.hpp>

#include "test_harness.hpp"

using namespace hamail::net::testing;
using hamail::errc;
using hamail::net::connection;
using hamail::net::connection_info;
using hamail::net::memory_stream;
using hamail::net::read_mode;
using hamail::net::timeouts;

namespace {

timeouts test_timeouts() {
  timeouts t;
  t.idle = 60s;
  t.write = 10s;
  t.handshake = 10s;
  t.goodbye = 2s;
  return t;
}

/// One read through the connection: the data, or "<errc name>".
awaitable<std::string> read_once(connection& conn, read_mode mode) {
  char chunk[256];
  auto r = co_await conn.read_some(asio::buffer(chunk), mode);
  if (!r) co_return "<" + std::string(hamail::to_string(r.err().code)) + ">";
  co_return std::string(chunk, *r);
}

awaitable<std::string> peer_read(memory_stream& peer) {
  char chunk[256];
  auto r = co_await peer.async_read_some(asio::buffer(chunk));
  if (!r) co_return "<" + std::string(hamail::to_string(r.err().code)) + ">";
  co_return std::string(chunk, *r);
}

}  // namespace

class connection_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(connection_test);
  CPPUNIT_TEST(drain_interrupts_idle_read);
  CPPUNIT_TEST(drain_does_not_interrupt_in_command_read);
  CPPUNIT_TEST(idle_timeout_is_reported_as_timed_out);
  CPPUNIT_TEST(deadline_is_not_pushed_back_by_trickled_bytes);
  CPPUNIT_TEST(session_deadline_ends_a_steadily_talking_client);
  CPPUNIT_TEST(transfer_below_minimum_rate_is_cut);
  CPPUNIT_TEST(force_close_interrupts_in_command_read_and_sends_reply);
  CPPUNIT_TEST(write_to_departed_peer_is_connection_closed);
  CPPUNIT_TEST(start_tls_refused_without_context_or_tcp_socket);
  CPPUNIT_TEST(plain_socket_only_without_tls_or_compression);
  CPPUNIT_TEST(force_close_wakes_a_wait_on_the_plain_socket_before_closing);
  CPPUNIT_TEST_SUITE_END();

 public:
  void drain_interrupts_idle_read() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection conn(std::move(mine), connection_info{}, test_timeouts());
    f.run([&]() -> awaitable<void> {
      std::string got;
      asio::co_spawn(
          f.io, [&]() -> awaitable<void> { got = co_await read_once(conn, read_mode::idle); },
          asio::detached);
      co_await sleep_for(50ms);
      CPPUNIT_ASSERT(got.empty());
      conn.begin_drain();
      CPPUNIT_ASSERT(conn.draining());
      CPPUNIT_ASSERT(co_await wait_until([&] { return !got.empty(); }));
      CPPUNIT_ASSERT_EQUAL(std::string("<shutting_down>"), got);
      // Later idle reads end at once, even with data waiting; in-command reads still work.
      CPPUNIT_ASSERT(co_await peer->async_write(asio::buffer(std::string_view("data"))));
      CPPUNIT_ASSERT_EQUAL(std::string("<shutting_down>"),
                           co_await read_once(conn, read_mode::idle));
      CPPUNIT_ASSERT_EQUAL(std::string("data"), co_await read_once(conn, read_mode::in_command));
      // The session can still say goodbye.
      CPPUNIT_ASSERT(co_await conn.write("BYE\r\n"));
      CPPUNIT_ASSERT_EQUAL(std::string("BYE\r\n"), co_await peer_read(*peer));
    });
  }

  void drain_does_not_interrupt_in_command_read() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection conn(std::move(mine), connection_info{}, test_timeouts());
    f.run([&]() -> awaitable<void> {
      std::string got;
      asio::co_spawn(
          f.io, [&]() -> awaitable<void> { got = co_await read_once(conn, read_mode::in_command); },
          asio::detached);
      co_await sleep_for(20ms);
      conn.begin_drain();
      co_await sleep_for(200ms);
      CPPUNIT_ASSERT_MESSAGE("drain interrupted an in-command read: " + got, got.empty());
      CPPUNIT_ASSERT(co_await peer->async_write(asio::buffer(std::string_view("body"))));
      CPPUNIT_ASSERT(co_await wait_until([&] { return !got.empty(); }));
      CPPUNIT_ASSERT_EQUAL(std::string("body"), got);
    });
  }

  void idle_timeout_is_reported_as_timed_out() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    auto t = test_timeouts();
    t.idle = 100ms;
    connection conn(std::move(mine), connection_info{}, t);
    f.run([&]() -> awaitable<void> {
      const auto start = clock::now();
      CPPUNIT_ASSERT_EQUAL(std::string("<timed_out>"), co_await read_once(conn, read_mode::idle));
      CPPUNIT_ASSERT(clock::now() - start >= 100ms);
      CPPUNIT_ASSERT_EQUAL(std::string("<timed_out>"),
                           co_await read_once(conn, read_mode::in_command));
      // A tighter or looser timeout applies to later reads.
      conn.set_idle_timeout(10s);
      CPPUNIT_ASSERT(co_await peer->async_write(asio::buffer(std::string_view("x"))));
      CPPUNIT_ASSERT_EQUAL(std::string("x"), co_await read_once(conn, read_mode::idle));
    });
  }

  void deadline_is_not_pushed_back_by_trickled_bytes() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection conn(std::move(mine), connection_info{}, test_timeouts());
    f.run([&]() -> awaitable<void> {
      bool stop = false;
      // One byte every 50 ms, far inside the 60 s idle timeout.
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            while (!stop) {
              co_await sleep_for(50ms);
              if (!stop) (void)co_await peer->async_write(asio::buffer(std::string_view("x")));
            }
          },
          asio::detached);
      const auto deadline = clock::now() + 300ms;
      std::string got;
      for (;;) {
        char c[8];
        auto r = co_await conn.read_some(asio::buffer(c), read_mode::idle, deadline);
        if (!r) {
          CPPUNIT_ASSERT(r.err().code == errc::timed_out);
          break;
        }
        got.append(c, *r);
        CPPUNIT_ASSERT_MESSAGE("the deadline was pushed back", clock::now() < deadline + 200ms);
      }
      stop = true;
      CPPUNIT_ASSERT(got.size() >= 3);
      CPPUNIT_ASSERT(clock::now() >= deadline);
      CPPUNIT_ASSERT(clock::now() < deadline + 200ms);
      co_await sleep_for(100ms);
    });
  }

  void session_deadline_ends_a_steadily_talking_client() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    auto t = test_timeouts();
    t.session = 300ms;
    connection conn(std::move(mine), connection_info{}, t);
    f.run([&]() -> awaitable<void> {
      const auto start = clock::now();
      std::string last;
      // A byte every 50 ms never trips the 60 s idle timeout; the session deadline ends it.
      while (clock::now() - start < 2s) {
        asio::co_spawn(
            f.io,
            [&]() -> awaitable<void> {
              co_await sleep_for(50ms);
              (void)co_await peer->async_write(asio::buffer(std::string_view("x")));
            },
            asio::detached);
        last = co_await read_once(conn, read_mode::in_command);
        if (last != "x") break;
      }
      CPPUNIT_ASSERT_EQUAL(std::string("<timed_out>"), last);
      CPPUNIT_ASSERT(clock::now() - start >= 300ms);
      CPPUNIT_ASSERT(clock::now() - start < 1s);
    });
  }

  void transfer_below_minimum_rate_is_cut() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection conn(std::move(mine), connection_info{}, test_timeouts());
    f.run([&]() -> awaitable<void> {
      // 1000 octets/s, 200 ms grace: a 1000-octet burst buys one more second.
      conn.begin_transfer(hamail::net::transfer_rate{1000, 5s, 200ms});
      const auto start = clock::now();
      CPPUNIT_ASSERT(co_await peer->async_write(asio::buffer(std::string(1000, 'a'))));
      std::size_t total = 0;
      while (total < 1000) {
        auto got = co_await read_once(conn, read_mode::in_command);
        CPPUNIT_ASSERT(got[0] == 'a');
        total += got.size();
      }
      // Then one octet every 50 ms (20 octets/s): cut about 1.2 s after the start.
      std::string last;
      while (clock::now() - start < 5s) {
        asio::co_spawn(
            f.io,
            [&]() -> awaitable<void> {
              co_await sleep_for(50ms);
              (void)co_await peer->async_write(asio::buffer(std::string_view("b")));
            },
            asio::detached);
        last = co_await read_once(conn, read_mode::in_command);
        if (last != "b") break;
      }
      CPPUNIT_ASSERT_EQUAL(std::string("<timed_out>"), last);
      const auto took = clock::now() - start;
      CPPUNIT_ASSERT(took >= 1100ms);
      CPPUNIT_ASSERT(took < 2s);
      // After the transfer, reads are not metered.
      conn.end_transfer();
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            co_await sleep_for(300ms);
            (void)co_await peer->async_write(asio::buffer(std::string_view("c")));
          },
          asio::detached);
      // Drop bytes the trickle left in flight.
      for (;;) {
        auto got = co_await read_once(conn, read_mode::in_command);
        if (got.find('c') != std::string::npos) break;
        CPPUNIT_ASSERT(got[0] == 'b');
      }
    });
  }

  void force_close_interrupts_in_command_read_and_sends_reply() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection conn(std::move(mine), connection_info{}, test_timeouts());
    f.run([&]() -> awaitable<void> {
      std::string got;
      asio::co_spawn(
          f.io, [&]() -> awaitable<void> { got = co_await read_once(conn, read_mode::in_command); },
          asio::detached);
      co_await sleep_for(20ms);
      co_await conn.force_close("-ERR forced\r\n");
      CPPUNIT_ASSERT(co_await wait_until([&] { return !got.empty(); }));
      CPPUNIT_ASSERT_EQUAL(std::string("<shutting_down>"), got);
      CPPUNIT_ASSERT(conn.closed());
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR forced\r\n"), co_await peer_read(*peer));
      CPPUNIT_ASSERT_EQUAL(std::string("<connection_closed>"), co_await peer_read(*peer));
      auto w = co_await conn.write("too late\r\n");
      CPPUNIT_ASSERT(!w);
      CPPUNIT_ASSERT(w.err().code == errc::shutting_down);
    });
  }

  void write_to_departed_peer_is_connection_closed() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection conn(std::move(mine), connection_info{}, test_timeouts());
    f.run([&]() -> awaitable<void> {
      peer.reset();
      auto w = co_await conn.write("hello\r\n");
      CPPUNIT_ASSERT(!w);
      CPPUNIT_ASSERT(w.err().code == errc::connection_closed);
      CPPUNIT_ASSERT_EQUAL(std::string("<connection_closed>"),
                           co_await read_once(conn, read_mode::idle));
    });
  }

  void start_tls_refused_without_context_or_tcp_socket() {
    tls_fixture tls;
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection conn(std::move(mine), connection_info{}, test_timeouts(), tls.store.get());
    f.run([&]() -> awaitable<void> {
      auto none = co_await conn.start_tls(nullptr);
      CPPUNIT_ASSERT(!none);
      CPPUNIT_ASSERT(none.err().code == errc::config_error);
      CPPUNIT_ASSERT(conn.tls_context() != nullptr);
      auto memory = co_await conn.start_tls(conn.tls_context());
      CPPUNIT_ASSERT(!memory);
      CPPUNIT_ASSERT(!conn.is_tls());
      CPPUNIT_ASSERT_EQUAL(std::string(), conn.tls_protocol());
    });
  }

  /// A connected loopback pair: the server's end wrapped in a connection, the client's socket.
  static std::pair<std::unique_ptr<connection>, tcp::socket> tcp_connection(asio::io_context& io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client(io), server_end(io);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server_end);
    auto conn = std::make_unique<connection>(
        std::make_unique<hamail::net::tcp_stream>(std::move(server_end)), connection_info{},
        test_timeouts());
    return {std::move(conn), std::move(client)};
  }

  void plain_socket_only_without_tls_or_compression() {
    net_fixture f;
    auto [mine, peer] = memory_stream::make_pair(f.io.get_executor());
    connection memory(std::move(mine), connection_info{}, test_timeouts());
    CPPUNIT_ASSERT(memory.plain_socket() == nullptr);
    auto [conn, client] = tcp_connection(f.io);
    CPPUNIT_ASSERT(conn->plain_socket() != nullptr);
    CPPUNIT_ASSERT(conn->usable());
    CPPUNIT_ASSERT(conn->start_compress().has_value());
    CPPUNIT_ASSERT(conn->plain_socket() == nullptr);
    conn->close();
    CPPUNIT_ASSERT(!conn->usable());
  }

  void force_close_wakes_a_wait_on_the_plain_socket_before_closing() {
    net_fixture f;
    auto [conn, client] = tcp_connection(f.io);
    f.run([&]() -> awaitable<void> {
      // A relay waiting for the client's next bytes on the socket itself.
      std::optional<bool> woke_while_open;
      boost::system::error_code woke_with;
      conn->plain_socket()->async_wait(tcp::socket::wait_read, [&](boost::system::error_code ec) {
        woke_with = ec;
        woke_while_open = !conn->closed();
      });
      co_await sleep_for(20ms);
      CPPUNIT_ASSERT(!woke_while_open);
      co_await conn->force_close("-ERR forced\r\n");
      CPPUNIT_ASSERT(co_await wait_until([&] { return woke_while_open.has_value(); }));
      CPPUNIT_ASSERT(woke_with == asio::error::operation_aborted);
      // Woken by force_close() itself, not only by the close at its end.
      CPPUNIT_ASSERT(*woke_while_open);
      CPPUNIT_ASSERT(!conn->usable());
      char reply[64];
      auto [ec, n] = co_await asio::async_read(client, asio::buffer(reply, 13), use_tuple);
      CPPUNIT_ASSERT(!ec);
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR forced\r\n"), std::string(reply, n));
    });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(connection_test);

// connection over the in-memory stream: read modes against drain, timeouts,
// forced close, and what start_tls refuses.

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
  CPPUNIT_TEST(force_close_interrupts_in_command_read_and_sends_reply);
  CPPUNIT_TEST(write_to_departed_peer_is_connection_closed);
  CPPUNIT_TEST(start_tls_refused_without_context_or_tcp_socket);
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
};

CPPUNIT_TEST_SUITE_REGISTRATION(connection_test);

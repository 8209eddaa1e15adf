// The in-memory duplex pair protocol session tests run on.

#include "test_harness.hpp"

using namespace hamail::net::testing;
using hamail::errc;
using hamail::net::memory_stream;

namespace {

/// Reads until `n` bytes arrived or the stream fails; the error code on failure.
awaitable<std::string> read_exactly(memory_stream& s, std::size_t n) {
  std::string out;
  char chunk[1000];
  while (out.size() < n) {
    auto r = co_await s.async_read_some(asio::buffer(chunk));
    if (!r) co_return out + "<" + std::string(hamail::to_string(r.err().code)) + ">";
    out.append(chunk, *r);
  }
  co_return out;
}

}  // namespace

class memory_stream_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(memory_stream_test);
  CPPUNIT_TEST(memory_stream_pair_round_trip);
  CPPUNIT_TEST(memory_stream_close_gives_peer_eof);
  CPPUNIT_TEST(memory_stream_destroyed_end_gives_peer_eof);
  CPPUNIT_TEST(memory_stream_shutdown_is_half_close);
  CPPUNIT_TEST(memory_stream_pending_read_is_cancellable);
  CPPUNIT_TEST_SUITE_END();

 public:
  void memory_stream_pair_round_trip() {
    net_fixture f;
    auto [a, b] = memory_stream::make_pair(f.io.get_executor());
    f.run([&]() -> awaitable<void> {
      CPPUNIT_ASSERT(co_await a->async_write(asio::buffer(std::string_view("hello"))));
      CPPUNIT_ASSERT_EQUAL(std::string("hello"), co_await read_exactly(*b, 5));
      CPPUNIT_ASSERT(co_await b->async_write(asio::buffer(std::string_view("world"))));
      CPPUNIT_ASSERT_EQUAL(std::string("world"), co_await read_exactly(*a, 5));

      // A read waiting before the data arrives is woken by the write.
      std::string late;
      asio::co_spawn(
          f.io, [&]() -> awaitable<void> { late = co_await read_exactly(*b, 4); }, asio::detached);
      co_await sleep_for(20ms);
      CPPUNIT_ASSERT(late.empty());
      CPPUNIT_ASSERT(co_await a->async_write(asio::buffer(std::string_view("late"))));
      CPPUNIT_ASSERT(co_await wait_until([&] { return !late.empty(); }));
      CPPUNIT_ASSERT_EQUAL(std::string("late"), late);

      // Larger than one read: comes out in order, in pieces no larger than asked.
      std::string big(100000, '\0');
      for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
      CPPUNIT_ASSERT(co_await a->async_write(asio::buffer(big)));
      CPPUNIT_ASSERT_EQUAL(big.size(), b->available());
      CPPUNIT_ASSERT(big == co_await read_exactly(*b, big.size()));
      CPPUNIT_ASSERT_EQUAL(std::size_t{0}, b->available());
      CPPUNIT_ASSERT(!a->is_tls());
    });
  }

  void memory_stream_close_gives_peer_eof() {
    net_fixture f;
    auto [a, b] = memory_stream::make_pair(f.io.get_executor());
    f.run([&]() -> awaitable<void> {
      CPPUNIT_ASSERT(co_await a->async_write(asio::buffer(std::string_view("last words"))));
      a->close();
      // What was sent before the close is still delivered, then end of stream.
      CPPUNIT_ASSERT_EQUAL(std::string("last words"), co_await read_exactly(*b, 10));
      CPPUNIT_ASSERT_EQUAL(std::string("<connection_closed>"), co_await read_exactly(*b, 1));
      auto w = co_await b->async_write(asio::buffer(std::string_view("anyone?")));
      CPPUNIT_ASSERT(!w);
      CPPUNIT_ASSERT(w.err().code == errc::connection_closed);
      auto own = co_await a->async_write(asio::buffer(std::string_view("x")));
      CPPUNIT_ASSERT(!own);
    });
  }

  void memory_stream_destroyed_end_gives_peer_eof() {
    net_fixture f;
    auto [a, b] = memory_stream::make_pair(f.io.get_executor());
    f.run([&]() -> awaitable<void> {
      std::string got;
      asio::co_spawn(
          f.io, [&]() -> awaitable<void> { got = co_await read_exactly(*b, 1); }, asio::detached);
      co_await sleep_for(20ms);
      CPPUNIT_ASSERT(got.empty());
      a.reset();
      CPPUNIT_ASSERT(co_await wait_until([&] { return !got.empty(); }));
      CPPUNIT_ASSERT_EQUAL(std::string("<connection_closed>"), got);
    });
  }

  void memory_stream_shutdown_is_half_close() {
    net_fixture f;
    auto [a, b] = memory_stream::make_pair(f.io.get_executor());
    f.run([&]() -> awaitable<void> {
      CPPUNIT_ASSERT(co_await a->async_write(asio::buffer(std::string_view("QUIT\r\n"))));
      CPPUNIT_ASSERT(co_await a->async_shutdown());
      CPPUNIT_ASSERT_EQUAL(std::string("QUIT\r\n<connection_closed>"),
                           co_await read_exactly(*b, 7));
      // The other direction still works.
      CPPUNIT_ASSERT(co_await b->async_write(asio::buffer(std::string_view("bye"))));
      CPPUNIT_ASSERT_EQUAL(std::string("bye"), co_await read_exactly(*a, 3));
    });
  }

  void memory_stream_pending_read_is_cancellable() {
    net_fixture f;
    auto [a, b] = memory_stream::make_pair(f.io.get_executor());
    f.run([&]() -> awaitable<void> {
      // cancel() on the stream.
      std::string got;
      asio::co_spawn(
          f.io, [&]() -> awaitable<void> { got = co_await read_exactly(*b, 1); }, asio::detached);
      co_await sleep_for(20ms);
      b->cancel();
      CPPUNIT_ASSERT(co_await wait_until([&] { return !got.empty(); }));
      CPPUNIT_ASSERT_EQUAL(std::string("<io_error>"), got);

      // Per-operation cancellation, as timeouts use it.
      asio::steady_timer timer(f.io, 50ms);
      auto outcome =
          co_await (b->async_read_some(asio::mutable_buffer()) || timer.async_wait(use_tuple));
      CPPUNIT_ASSERT_EQUAL(std::size_t{0}, outcome.index());  // an empty buffer returns at once
      char chunk[8];
      timer.expires_after(50ms);
      auto raced =
          co_await (b->async_read_some(asio::buffer(chunk)) || timer.async_wait(use_tuple));
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, raced.index());

      // Still usable afterwards.
      CPPUNIT_ASSERT(co_await a->async_write(asio::buffer(std::string_view("ok"))));
      CPPUNIT_ASSERT_EQUAL(std::string("ok"), co_await read_exactly(*b, 2));
    });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(memory_stream_test);

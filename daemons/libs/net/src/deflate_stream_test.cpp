// The COMPRESS=DEFLATE stream against a zlib client (hamail/test/zlib_peer.hpp): round
// trips, every write arriving whole, large transfers, corrupt input, bombs,
// bytes read before compression began, and the connection switching to it.

#include "hamail/net/deflate_stream.hpp"

#include <malloc.h>
#include <zlib.h>

#include <random>

#include "hamail/test/zlib_peer.hpp"
#include "test_harness.hpp"

using namespace hamail::net::testing;
using hamail::errc;
using hamail::net::deflate_stream;
using hamail::net::memory_stream;
using hamail::test::zlib_peer;

namespace {

/// Everything the peer end has received so far (never waits).
awaitable<std::string> drain(memory_stream& s) {
  std::string out;
  char chunk[8192];
  while (s.available() > 0) {
    auto r = co_await s.async_read_some(asio::buffer(chunk));
    CPPUNIT_ASSERT(r.has_value());
    out.append(chunk, *r);
  }
  co_return out;
}

/// Reads `n` plain bytes from `s` in reads of at most `chunk` bytes; stops early at an error.
awaitable<std::string> read_plain(hamail::net::byte_stream& s, std::size_t n,
                                  std::size_t chunk = 1000) {
  std::string out;
  std::string buf(chunk, '\0');
  while (out.size() < n) {
    auto r = co_await s.async_read_some(asio::buffer(buf));
    if (!r) co_return out + "<" + std::string(hamail::to_string(r.err().code)) + ">";
    CPPUNIT_ASSERT(*r <= chunk);
    out.append(buf.data(), *r);
  }
  co_return out;
}

/// Text that compresses about as well as mail does.
std::string mail_like_text(std::size_t size, unsigned seed = 1) {
  static const char* const words[] = {"mail",   "server", "message", "the",    "and",   "of",
                                      "folder", "client", "hello",   "world",  "quota", "report",
                                      "imap",   "store",  "deliver", "backend"};
  std::mt19937 rng(seed);
  std::string out;
  while (out.size() < size) {
    out += words[rng() % 16];
    out += (rng() % 12 == 0) ? "\r\n" : " ";
  }
  out.resize(size);
  return out;
}

/// Bytes the allocator has handed out and not had back (C++ and zlib alike).
std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

/// The body of a test over a deflate_stream on one end of an in-memory pipe,
/// with a zlib client (`z`) on the other end (`peer`).
using piped_body = awaitable<void> (*)(net_fixture& f, deflate_stream& d, memory_stream& peer,
                                       zlib_peer& z);

/// Sets up the pipe, the stream and the client, and runs `body` to completion.
void run_piped(piped_body body) {
  net_fixture f;
  auto [a, b] = memory_stream::make_pair(f.io.get_executor());
  memory_stream& peer = *b;
  deflate_stream d(std::move(a));
  zlib_peer z;
  f.run([&]() { return body(f, d, peer, z); });
}

}  // namespace

class deflate_stream_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(deflate_stream_test);
  CPPUNIT_TEST(round_trip_with_zlib_peer);
  CPPUNIT_TEST(every_write_arrives_whole);
  CPPUNIT_TEST(large_transfers_both_ways);
  CPPUNIT_TEST(corrupt_input_is_an_error);
  CPPUNIT_TEST(data_after_the_end_is_an_error);
  CPPUNIT_TEST(bomb_does_not_grow_memory);
  CPPUNIT_TEST(bytes_read_before_compression_come_first);
  CPPUNIT_TEST(idle_memory_and_delegation);
  CPPUNIT_TEST(connection_switches_in_place);
  CPPUNIT_TEST_SUITE_END();

 public:
  void round_trip_with_zlib_peer() {
    run_piped([](net_fixture& f, deflate_stream& d, memory_stream& peer,
                 zlib_peer& z) -> awaitable<void> {
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(z.compress("a1 NOOP\r\n"))));
      CPPUNIT_ASSERT_EQUAL(std::string("a1 NOOP\r\n"), co_await read_plain(d, 9));
      CPPUNIT_ASSERT(co_await d.async_write(asio::buffer(std::string_view("a1 OK NOOP\r\n"))));
      CPPUNIT_ASSERT_EQUAL(std::string("a1 OK NOOP\r\n"), z.inflate_all(co_await drain(peer)));
      // A client command split across several compressed pieces still arrives in order.
      auto wire = z.compress("a2 SELECT INBOX\r\n");
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(wire.data(), 3)));
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(wire.data() + 3, wire.size() - 3)));
      CPPUNIT_ASSERT_EQUAL(std::string("a2 SELECT INBOX\r\n"), co_await read_plain(d, 17));
      // A read waits for the peer.
      std::string late;
      asio::co_spawn(
          f.io, [&]() -> awaitable<void> { late = co_await read_plain(d, 4); }, asio::detached);
      co_await sleep_for(20ms);
      CPPUNIT_ASSERT(late.empty());
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(z.compress("late"))));
      CPPUNIT_ASSERT(co_await wait_until([&] { return !late.empty(); }));
      CPPUNIT_ASSERT_EQUAL(std::string("late"), late);
    });
  }

  void every_write_arrives_whole() {
    run_piped(
        [](net_fixture&, deflate_stream& d, memory_stream& peer, zlib_peer& z) -> awaitable<void> {
          // Each response must be decodable as soon as its write completes: an
          // IMAP client waits for it before sending anything else.
          for (int i = 1; i <= 300; ++i) {
            const std::string line = "* " + std::to_string(i) + " FETCH (FLAGS (\\Seen) UID " +
                                     std::to_string(1000 + i) + ")\r\n";
            CPPUNIT_ASSERT(co_await d.async_write(asio::buffer(line)));
            CPPUNIT_ASSERT_EQUAL(line, z.inflate_all(co_await drain(peer)));
          }
          // Each write compresses against the ones before it.
          CPPUNIT_ASSERT_MESSAGE(std::to_string(d.compressed_bytes_out()),
                                 d.compressed_bytes_out() < d.plain_bytes_out() / 2);
        });
  }

  void large_transfers_both_ways() {
    run_piped(
        [](net_fixture&, deflate_stream& d, memory_stream& peer, zlib_peer& z) -> awaitable<void> {
          const std::string text = mail_like_text(3 << 20);
          // Server to client: one big write (a FETCH of a large message).
          CPPUNIT_ASSERT(co_await d.async_write(asio::buffer(text)));
          const std::string wire = co_await drain(peer);
          CPPUNIT_ASSERT(wire.size() < text.size() / 3);
          CPPUNIT_ASSERT(text == z.inflate_all(wire));
          CPPUNIT_ASSERT_EQUAL(static_cast<std::uint64_t>(wire.size()), d.compressed_bytes_out());
          // Client to server (an APPEND), read in pieces of various sizes.
          const std::string up = mail_like_text(2 << 20, 7);
          CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(z.compress(up))));
          CPPUNIT_ASSERT(up == co_await read_plain(d, up.size(), 16384));
          CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(z.compress(up))));
          CPPUNIT_ASSERT(up == co_await read_plain(d, up.size(), 7));
          // Incompressible data grows a little but survives too.
          std::string noise(300000, '\0');
          std::mt19937 rng(3);
          for (auto& ch : noise) ch = static_cast<char>(rng());
          CPPUNIT_ASSERT(co_await d.async_write(asio::buffer(noise)));
          CPPUNIT_ASSERT(noise == z.inflate_all(co_await drain(peer)));
        });
  }

  void corrupt_input_is_an_error() {
    run_piped([](net_fixture&, deflate_stream& d, memory_stream& peer,
                 zlib_peer&) -> awaitable<void> {
      // A client that forgot to compress: "a1" is not a valid deflate block
      // (BTYPE 3 is reserved).
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(std::string_view("\xff\xff\xff\xff"))));
      CPPUNIT_ASSERT_EQUAL(std::string("<invalid_input>"), co_await read_plain(d, 1));
    });
  }

  void data_after_the_end_is_an_error() {
    run_piped([](net_fixture& f, deflate_stream& d, memory_stream& peer,
                 zlib_peer& z) -> awaitable<void> {
      // A final block is allowed (a client finishing its stream before it closes) ...
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(z.compress("bye\r\n", Z_FINISH))));
      CPPUNIT_ASSERT_EQUAL(std::string("bye\r\n"), co_await read_plain(d, 5));
      // ... but nothing may follow it, and the end of the socket is the end of the stream.
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(std::string_view("x"))));
      CPPUNIT_ASSERT_EQUAL(std::string("<invalid_input>"), co_await read_plain(d, 1));
      auto [c, e] = memory_stream::make_pair(f.io.get_executor());
      memory_stream& peer2 = *e;
      deflate_stream d2(std::move(c));
      zlib_peer z2;
      CPPUNIT_ASSERT(co_await peer2.async_write(asio::buffer(z2.compress("last\r\n", Z_FINISH))));
      peer2.close();
      CPPUNIT_ASSERT_EQUAL(std::string("last\r\n<connection_closed>"), co_await read_plain(d2, 7));
    });
  }

  void bomb_does_not_grow_memory() {
    run_piped(
        [](net_fixture&, deflate_stream& d, memory_stream& peer, zlib_peer& z) -> awaitable<void> {
          // 256 MiB of one byte compresses to about 256 KiB.
          const std::string block(1 << 20, 'A');
          std::string bomb;
          for (int i = 0; i < 256; ++i) bomb += z.compress(block, Z_NO_FLUSH);
          bomb += z.compress("", Z_SYNC_FLUSH);
          CPPUNIT_ASSERT(bomb.size() < 300 * 1024);
          CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(bomb)));
          std::string buf(16384, '\0');
          // The whole process heap, not only what zlib allocates: output kept
          // anywhere (a string, a queue, the pipe) would show here too.
          const std::size_t heap_before = heap_in_use();
          std::size_t heap_peak = heap_before;
          std::size_t total = 0;
          std::size_t peak = 0;
          while (total < (std::size_t{256} << 20)) {
            auto r = co_await d.async_read_some(asio::buffer(buf));
            CPPUNIT_ASSERT(r.has_value());
            CPPUNIT_ASSERT(*r <= buf.size());
            total += *r;
            peak = std::max(peak, d.memory_in_use());
            heap_peak = std::max(heap_peak, heap_in_use());
          }
          CPPUNIT_ASSERT_EQUAL(std::size_t{256} << 20, total);
          // The inflater, its 32 KiB window and the read buffer: nothing grows with the output.
          CPPUNIT_ASSERT_MESSAGE(std::to_string(peak), peak <= 48 * 1024);
          // The growth is zlib's 32 KiB window, allocated on the first inflate,
          // and a few coroutine frames. 256 KiB leaves room for allocator noise
          // and is still a thousandth of the 256 MiB that went through: keeping
          // the output, or anything that grows with it past that, fails.
          const std::size_t growth = heap_peak - heap_before;
          std::printf("\ndeflate_stream bomb: heap grew %zu octets for 256 MiB inflated\n", growth);
          CPPUNIT_ASSERT_MESSAGE("the heap grew " + std::to_string(growth) + " octets",
                                 growth <= 256 * 1024);
        });
  }

  void bytes_read_before_compression_come_first() {
    net_fixture f;
    auto [a, b] = memory_stream::make_pair(f.io.get_executor());
    memory_stream& peer = *b;
    zlib_peer z;
    // A pipelining client sent its next command compressed right behind
    // COMPRESS; the session had read part of it already.
    const std::string wire = z.compress("a3 SELECT INBOX\r\n");
    deflate_stream d(std::move(a), std::string_view(wire).substr(0, 5));
    f.run([&]() -> awaitable<void> {
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(wire.data() + 5, wire.size() - 5)));
      CPPUNIT_ASSERT_EQUAL(std::string("a3 SELECT INBOX\r\n"), co_await read_plain(d, 17, 4));
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(z.compress("a4 NOOP\r\n"))));
      CPPUNIT_ASSERT_EQUAL(std::string("a4 NOOP\r\n"), co_await read_plain(d, 9));
    });
  }

  void idle_memory_and_delegation() {
    run_piped([](net_fixture&, deflate_stream& d, memory_stream& peer,
                 zlib_peer& z) -> awaitable<void> {
      const std::size_t fresh = d.memory_in_use();
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(z.compress("a1 NOOP\r\n"))));
      CPPUNIT_ASSERT_EQUAL(std::string("a1 NOOP\r\n"), co_await read_plain(d, 9));
      const std::size_t used = d.memory_in_use();
      const std::string big = mail_like_text(1 << 20);
      CPPUNIT_ASSERT(co_await d.async_write(asio::buffer(big)));
      CPPUNIT_ASSERT(big == z.inflate_all(co_await drain(peer)));
      // The compressor lives only during a write: afterwards the idle cost is as before.
      CPPUNIT_ASSERT_EQUAL(used, d.memory_in_use());
      std::printf("\ndeflate_stream heap: %zu octets new, %zu after input, idle\n", fresh, used);
      CPPUNIT_ASSERT(used <= 48 * 1024);
      CPPUNIT_ASSERT(!d.is_tls());
      CPPUNIT_ASSERT(co_await d.async_shutdown());
      std::string rest = co_await read_plain(peer, 1);
      CPPUNIT_ASSERT_EQUAL(std::string("<connection_closed>"), rest);
      d.close();
      CPPUNIT_ASSERT(!(co_await d.async_write(asio::buffer(std::string_view("x")))));
    });
  }

  void connection_switches_in_place() {
    net_fixture f;
    auto [a, b] = memory_stream::make_pair(f.io.get_executor());
    memory_stream& peer = *b;
    hamail::net::connection conn(std::move(a), {}, {});
    zlib_peer z;
    f.run([&]() -> awaitable<void> {
      CPPUNIT_ASSERT(!conn.is_compressed());
      CPPUNIT_ASSERT(co_await conn.write(std::string_view("a1 OK go\r\n")));
      CPPUNIT_ASSERT_EQUAL(std::string("a1 OK go\r\n"), co_await drain(peer));
      const std::string wire = z.compress("a2 NOOP\r\n");
      CPPUNIT_ASSERT(conn.start_compress(std::string_view(wire).substr(0, 2)).has_value());
      CPPUNIT_ASSERT(conn.is_compressed());
      CPPUNIT_ASSERT(!conn.is_tls());
      CPPUNIT_ASSERT_EQUAL(std::string(), conn.tls_protocol());
      auto again = conn.start_compress();
      CPPUNIT_ASSERT(!again.has_value());
      CPPUNIT_ASSERT(again.err().code == errc::invalid_input);
      CPPUNIT_ASSERT(co_await peer.async_write(asio::buffer(wire.substr(2))));
      std::string got;
      while (got.size() < 9) {
        char buf[64];
        auto r = co_await conn.read_some(asio::buffer(buf), hamail::net::read_mode::idle);
        CPPUNIT_ASSERT(r.has_value());
        got.append(buf, *r);
      }
      CPPUNIT_ASSERT_EQUAL(std::string("a2 NOOP\r\n"), got);
      CPPUNIT_ASSERT(co_await conn.write(std::string_view("a2 OK NOOP\r\n")));
      CPPUNIT_ASSERT_EQUAL(std::string("a2 OK NOOP\r\n"), z.inflate_all(co_await drain(peer)));
    });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(deflate_stream_test);

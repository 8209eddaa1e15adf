// The TLS byte stream on its own, both roles over a real loopback socket pair:
// bulk transfers, a read and a write outstanding at once, cancellation, the
// ways a connection ends or fails, and the memory an idle stream keeps.

#include <malloc.h>

#include <cstring>

#include "test_harness.hpp"

using namespace hamail::net::testing;
using boost::asio::experimental::awaitable_operators::operator&&;
using hamail::errc;
using hamail::result;
using hamail::net::tls_stream;

namespace {

/// A connected loopback TCP pair: {client end, server end}.
awaitable<std::pair<tcp::socket, tcp::socket>> socket_pair() {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(ex);
  auto [cec] = co_await client.async_connect(acceptor.local_endpoint(), use_tuple);
  CPPUNIT_ASSERT_MESSAGE(cec.message(), !cec);
  auto [aec, server] = co_await acceptor.async_accept(use_tuple);
  CPPUNIT_ASSERT_MESSAGE(aec.message(), !aec);
  co_return std::pair<tcp::socket, tcp::socket>{std::move(client), std::move(server)};
}

/// Both ends of a TLS connection, handshake done: the client checks "localhost".
struct tls_pair {
  std::unique_ptr<tls_stream> client;
  std::unique_ptr<tls_stream> server;
};

awaitable<tls_pair> connected_pair(tls_fixture& tls) {
  auto [c, s] = co_await socket_pair();
  tls_pair p;
  p.client = std::make_unique<tls_stream>(std::move(c), tls.client, tls_stream::role::client);
  p.server =
      std::make_unique<tls_stream>(std::move(s), tls.store->current(), tls_stream::role::server);
  CPPUNIT_ASSERT(hamail::tls::prepare_client(p.client->native_handle(), "localhost"));
  auto [cr, sr] = co_await (p.client->async_handshake() && p.server->async_handshake());
  CPPUNIT_ASSERT_MESSAGE(cr ? "" : cr.err().describe(), cr.has_value());
  CPPUNIT_ASSERT_MESSAGE(sr ? "" : sr.err().describe(), sr.has_value());
  co_return p;
}

/// `n` bytes of a pattern that a shifted or dropped piece would break.
std::string pattern(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

/// Reads until `n` bytes arrived; on failure what came plus "<code: detail>".
awaitable<std::string> read_exactly(tls_stream& s, std::size_t n) {
  std::string out;
  std::vector<char> chunk(7000);  // not a multiple of the record size
  while (out.size() < n) {
    auto r = co_await s.async_read_some(
        asio::buffer(chunk.data(), std::min(chunk.size(), n - out.size())));
    if (!r) {
      co_return out + "<" + std::string(hamail::to_string(r.err().code)) + ": " + r.err().detail +
          ">";
    }
    out.append(chunk.data(), *r);
  }
  co_return out;
}

/// Writes `data` in pieces of `piece` bytes.
awaitable<bool> write_all(tls_stream& s, const std::string& data, std::size_t piece) {
  for (std::size_t at = 0; at < data.size(); at += piece) {
    auto r =
        co_await s.async_write(asio::buffer(data.data() + at, std::min(piece, data.size() - at)));
    if (!r) co_return false;
  }
  co_return true;
}

/// Bytes the allocator has handed out and not had back (C++ and OpenSSL alike).
std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

}  // namespace

class tls_stream_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(tls_stream_test);
  CPPUNIT_TEST(tls_stream_transfers_megabytes_both_ways);
  CPPUNIT_TEST(tls_stream_reads_and_writes_at_once);
  CPPUNIT_TEST(tls_stream_cancelled_read_leaves_stream_usable);
  CPPUNIT_TEST(tls_stream_cancelled_write_leaves_stream_usable);
  CPPUNIT_TEST(tls_stream_peer_close_without_close_notify_is_connection_closed);
  CPPUNIT_TEST(tls_stream_close_notify_is_connection_closed);
  CPPUNIT_TEST(tls_stream_handshake_failures_are_tls_errors);
  CPPUNIT_TEST(tls_stream_idle_holds_no_large_buffers);
  CPPUNIT_TEST_SUITE_END();

 public:
  void tls_stream_transfers_megabytes_both_ways() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      auto p = co_await connected_pair(tls);
      CPPUNIT_ASSERT(p.client->is_tls());
      CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.3"),
                           hamail::tls::protocol_name(p.client->native_handle()));
      CPPUNIT_ASSERT(!hamail::tls::peer_certificate_serial(p.client->native_handle()).empty());

      // Client to server in one write, larger than any socket buffer.
      const std::string up = pattern(6 << 20, 1);
      auto [wrote, got] =
          co_await (p.client->async_write(asio::buffer(up)) && read_exactly(*p.server, up.size()));
      CPPUNIT_ASSERT(wrote.has_value());
      CPPUNIT_ASSERT(up == got);

      // Server to client in odd-sized pieces.
      const std::string down = pattern(5 << 20, 2);
      auto [ok, back] =
          co_await (write_all(*p.server, down, 65537) && read_exactly(*p.client, down.size()));
      CPPUNIT_ASSERT(ok);
      CPPUNIT_ASSERT(down == back);
    });
  }

  void tls_stream_reads_and_writes_at_once() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      auto p = co_await connected_pair(tls);
      // Both ends send 4 MiB while reading what the other sends: neither write
      // can finish unless the read on the same stream makes progress meanwhile.
      const std::string a = pattern(4 << 20, 3);
      const std::string b = pattern(4 << 20, 4);
      auto [aw, ar, bw, br] =
          co_await (p.client->async_write(asio::buffer(a)) && read_exactly(*p.client, b.size()) &&
                    p.server->async_write(asio::buffer(b)) && read_exactly(*p.server, a.size()));
      CPPUNIT_ASSERT(aw.has_value());
      CPPUNIT_ASSERT(bw.has_value());
      CPPUNIT_ASSERT(b == ar);
      CPPUNIT_ASSERT(a == br);

      // TLS 1.3 key updates asked of both ends mid-transfer: each end must answer
      // with its own, written from inside a read or a write.
      CPPUNIT_ASSERT_EQUAL(1, SSL_key_update(p.client->native_handle(), SSL_KEY_UPDATE_REQUESTED));
      CPPUNIT_ASSERT_EQUAL(1, SSL_key_update(p.server->native_handle(), SSL_KEY_UPDATE_REQUESTED));
      const std::string d = pattern(2 << 20, 9);
      const std::string e = pattern(2 << 20, 10);
      auto [dw, dr, ew, er] =
          co_await (p.client->async_write(asio::buffer(d)) && read_exactly(*p.client, e.size()) &&
                    p.server->async_write(asio::buffer(e)) && read_exactly(*p.server, d.size()));
      CPPUNIT_ASSERT(dw.has_value());
      CPPUNIT_ASSERT(ew.has_value());
      CPPUNIT_ASSERT(e == dr);
      CPPUNIT_ASSERT(d == er);

      // A read pending first, a write started while it waits, then the peer answers.
      std::string pending;
      bool pending_done = false;
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            pending = co_await read_exactly(*p.server, 5);
            pending_done = true;
          },
          asio::detached);
      co_await sleep_for(20ms);
      CPPUNIT_ASSERT(!pending_done);
      const std::string c = pattern(1 << 20, 5);
      auto [sw, cr] =
          co_await (p.server->async_write(asio::buffer(c)) && read_exactly(*p.client, c.size()));
      CPPUNIT_ASSERT(sw.has_value());
      CPPUNIT_ASSERT(c == cr);
      CPPUNIT_ASSERT(!pending_done);
      CPPUNIT_ASSERT(co_await p.client->async_write(asio::buffer(std::string_view("hello"))));
      CPPUNIT_ASSERT(co_await wait_until([&] { return pending_done; }));
      CPPUNIT_ASSERT_EQUAL(std::string("hello"), pending);
    });
  }

  void tls_stream_cancelled_read_leaves_stream_usable() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      auto p = co_await connected_pair(tls);
      char buf[100];

      // Bounded by a timer, the way connection::read_some does it.
      asio::steady_timer timer(f.io, 50ms);
      auto outcome =
          co_await (p.server->async_read_some(asio::buffer(buf)) || timer.async_wait(use_tuple));
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, outcome.index());

      // cancel() on the stream: the read completes with the "cancelled" error.
      std::optional<result<std::size_t>> r;
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            r.emplace(co_await p.server->async_read_some(asio::buffer(buf)));
          },
          asio::detached);
      co_await sleep_for(20ms);
      CPPUNIT_ASSERT(!r.has_value());
      p.server->cancel();
      CPPUNIT_ASSERT(co_await wait_until([&] { return r.has_value(); }));
      CPPUNIT_ASSERT(!r->has_value());
      CPPUNIT_ASSERT(r->err().code == errc::io_error);
      CPPUNIT_ASSERT_MESSAGE(r->err().detail,
                             r->err().detail.find("cancelled") != std::string::npos);

      // Cancelled half-way through a record: the rest still arrives intact.
      const std::string big = pattern(200000, 6);
      auto [w, got] = co_await (p.client->async_write(asio::buffer(big)) &&
                                read_exactly(*p.server, big.size()));
      CPPUNIT_ASSERT(w.has_value());
      CPPUNIT_ASSERT(big == got);
      CPPUNIT_ASSERT(co_await p.server->async_write(asio::buffer(std::string_view("still here"))));
      CPPUNIT_ASSERT_EQUAL(std::string("still here"), co_await read_exactly(*p.client, 10));
    });
  }

  void tls_stream_cancelled_write_leaves_stream_usable() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      auto p = co_await connected_pair(tls);
      // The client reads nothing, so a large write stalls once the socket buffers are full.
      const std::string big = pattern(16 << 20, 7);
      asio::steady_timer timer(f.io, 200ms);
      auto outcome =
          co_await (p.server->async_write(asio::buffer(big)) || timer.async_wait(use_tuple));
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, outcome.index());
      // Another write after the cancelled one still makes a valid TLS stream:
      // the client reads some prefix of `big`, then the marker, and nothing breaks.
      const std::string marker = "<<end of the cancelled write>>";
      std::string got;
      auto read_to_marker = [&]() -> awaitable<bool> {
        char chunk[16384];
        while (got.size() < marker.size() ||
               got.compare(got.size() - marker.size(), marker.size(), marker) != 0) {
          auto n = co_await p.client->async_read_some(asio::buffer(chunk));
          if (!n) co_return false;
          got.append(chunk, *n);
        }
        co_return true;
      };
      auto [w, r] = co_await (p.server->async_write(asio::buffer(marker)) && read_to_marker());
      CPPUNIT_ASSERT_MESSAGE(w ? "" : w.err().describe(), w.has_value());
      CPPUNIT_ASSERT(r);
      const std::size_t prefix = got.size() - marker.size();
      CPPUNIT_ASSERT(prefix < big.size());
      CPPUNIT_ASSERT(got.compare(0, prefix, big, 0, prefix) == 0);
    });
  }

  void tls_stream_peer_close_without_close_notify_is_connection_closed() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      auto p = co_await connected_pair(tls);
      char buf[100];
      p.client->close();
      auto r = co_await p.server->async_read_some(asio::buffer(buf));
      CPPUNIT_ASSERT(!r);
      CPPUNIT_ASSERT_MESSAGE(r.err().describe(), r.err().code == errc::connection_closed);

      // The same from the client's side, and for a pending read.
      auto q = co_await connected_pair(tls);
      std::optional<result<std::size_t>> pending;
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            pending.emplace(co_await q.client->async_read_some(asio::buffer(buf)));
          },
          asio::detached);
      co_await sleep_for(20ms);
      q.server->socket().close();
      CPPUNIT_ASSERT(co_await wait_until([&] { return pending.has_value(); }));
      CPPUNIT_ASSERT(!pending->has_value());
      CPPUNIT_ASSERT_MESSAGE(pending->err().describe(),
                             pending->err().code == errc::connection_closed);
    });
  }

  void tls_stream_close_notify_is_connection_closed() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      auto p = co_await connected_pair(tls);
      CPPUNIT_ASSERT(co_await p.server->async_write(asio::buffer(std::string_view("bye"))));
      auto s = co_await p.server->async_shutdown();
      CPPUNIT_ASSERT_MESSAGE(s ? "" : s.err().describe(), s.has_value());
      // What was sent before the close_notify arrives, then end of stream.
      CPPUNIT_ASSERT_EQUAL(std::string("bye"), co_await read_exactly(*p.client, 3));
      char buf[10];
      auto r = co_await p.client->async_read_some(asio::buffer(buf));
      CPPUNIT_ASSERT(!r);
      CPPUNIT_ASSERT_MESSAGE(r.err().describe(), r.err().code == errc::connection_closed);
      // The client may still shut down its side cleanly.
      CPPUNIT_ASSERT(co_await p.client->async_shutdown());
    });
  }

  void tls_stream_handshake_failures_are_tls_errors() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      // The client does not trust the server's CA.
      {
        auto untrusting = hamail::tls::make_client_context("", true);
        CPPUNIT_ASSERT(untrusting.has_value());
        auto [c, s] = co_await socket_pair();
        tls_stream client(std::move(c), *untrusting, tls_stream::role::client);
        tls_stream server(std::move(s), tls.store->current(), tls_stream::role::server);
        CPPUNIT_ASSERT(hamail::tls::prepare_client(client.native_handle(), "localhost"));
        auto [cr, sr] = co_await (client.async_handshake() && server.async_handshake());
        CPPUNIT_ASSERT(!cr);
        CPPUNIT_ASSERT_MESSAGE(cr.err().describe(), cr.err().code == errc::tls_error);
        CPPUNIT_ASSERT_MESSAGE(cr.err().detail, cr.err().detail.find("certificate verify failed") !=
                                                    std::string::npos);
        CPPUNIT_ASSERT(!sr);
        CPPUNIT_ASSERT_MESSAGE(sr.err().describe(), sr.err().code == errc::tls_error);
      }
      // The certificate is for another name.
      {
        auto [c, s] = co_await socket_pair();
        tls_stream client(std::move(c), tls.client, tls_stream::role::client);
        tls_stream server(std::move(s), tls.store->current(), tls_stream::role::server);
        CPPUNIT_ASSERT(hamail::tls::prepare_client(client.native_handle(), "mail.example.org"));
        auto [cr, sr] = co_await (client.async_handshake() && server.async_handshake());
        CPPUNIT_ASSERT(!cr);
        CPPUNIT_ASSERT_MESSAGE(cr.err().describe(), cr.err().code == errc::tls_error);
        CPPUNIT_ASSERT(!sr);
      }
      // The server requires TLS 1.3, the client offers at most 1.2.
      {
        auto old = hamail::tls::make_client_context(tls.ca.ca_cert.string(), true);
        CPPUNIT_ASSERT(old.has_value());
        SSL_CTX_set_max_proto_version((*old)->native_handle(), TLS1_2_VERSION);
        auto [c, s] = co_await socket_pair();
        tls_stream client(std::move(c), *old, tls_stream::role::client);
        tls_stream server(std::move(s), tls.store->current(), tls_stream::role::server);
        SSL_set_min_proto_version(server.native_handle(), TLS1_3_VERSION);
        auto [cr, sr] = co_await (client.async_handshake() && server.async_handshake());
        CPPUNIT_ASSERT(!cr);
        CPPUNIT_ASSERT(!sr);
        CPPUNIT_ASSERT_MESSAGE(sr.err().describe(), sr.err().code == errc::tls_error);
        CPPUNIT_ASSERT_MESSAGE(sr.err().detail,
                               sr.err().detail.find("unsupported protocol") != std::string::npos);
      }
      // Plaintext where a ClientHello belongs.
      {
        auto [c, s] = co_await socket_pair();
        tls_stream server(std::move(s), tls.store->current(), tls_stream::role::server);
        co_await asio::async_write(c, asio::buffer(std::string_view("EHLO client.example\r\n")),
                                   use_tuple);
        auto sr = co_await server.async_handshake();
        CPPUNIT_ASSERT(!sr);
        CPPUNIT_ASSERT_MESSAGE(sr.err().describe(), sr.err().code == errc::tls_error);
      }
      // The peer goes away in the middle: connection_closed, not a TLS error.
      {
        auto [c, s] = co_await socket_pair();
        tls_stream server(std::move(s), tls.store->current(), tls_stream::role::server);
        c.close();
        auto sr = co_await server.async_handshake();
        CPPUNIT_ASSERT(!sr);
        CPPUNIT_ASSERT_MESSAGE(sr.err().describe(), sr.err().code == errc::connection_closed);
      }
    });
  }

  void tls_stream_idle_holds_no_large_buffers() {
    net_fixture f;
    tls_fixture tls;
    f.run([&]() -> awaitable<void> {
      auto p = co_await connected_pair(tls);
      // Traffic both ways, so every buffer the stream may use has been allocated once.
      const std::string data = pattern(1 << 20, 8);
      auto [w1, r1] = co_await (p.client->async_write(asio::buffer(data)) &&
                                read_exactly(*p.server, data.size()));
      auto [w2, r2] = co_await (p.server->async_write(asio::buffer(data)) &&
                                read_exactly(*p.client, data.size()));
      CPPUNIT_ASSERT(w1 && w2 && r1 == data && r2 == data);

      // The server idles in a read, like a session waiting for its next command.
      std::optional<result<std::size_t>> idle;
      char buf[100];
      asio::co_spawn(
          f.io,
          [&]() -> awaitable<void> {
            idle.emplace(co_await p.server->async_read_some(asio::buffer(buf)));
          },
          asio::detached);
      co_await sleep_for(20ms);
      CPPUNIT_ASSERT(!idle.has_value());
      const std::size_t with_stream = heap_in_use();
      p.server->cancel();
      CPPUNIT_ASSERT(co_await wait_until([&] { return idle.has_value(); }));
      p.server.reset();
      const std::size_t without = heap_in_use();
      const std::size_t held = with_stream > without ? with_stream - without : 0;
      // The SSL object and its session take about 9 KiB; with a 17 KiB record buffer it would not
      // fit.
      CPPUNIT_ASSERT_MESSAGE("an idle TLS stream holds " + std::to_string(held) + " bytes",
                             held < 16 * 1024);
    });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(tls_stream_test);

// Conversation tests of COMPRESS DEFLATE (RFC 4978) with a client that
// compresses on zlib itself: the switch after the tagged OK, every command
// afterwards (FETCH, APPEND with a literal, IDLE), refusals, a client that
// pipelines compressed bytes right behind COMPRESS, and corrupt input.

#include "hamail/test/zlib_peer.hpp"
#include "imap/conversation_test_support.hpp"

using namespace hamail::backend::imap_test;

namespace {

/// An IMAP client over an in-memory stream that switches to raw deflate
/// (32 KiB window both ways) when told to, like a real client after the OK.
class zclient {
 public:
  explicit zclient(fixture& f) : io_(f.io), in_(std::make_shared<input>()) {
    auto [near, far] = hamail::net::memory_stream::make_pair(f.io.get_executor());
    hamail::net::connection_info info;
    info.remote = asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 40001);
    info.listener = "test";
    info.protocol = "imap";
    f.connections.push_back(
        std::make_unique<hamail::net::connection>(std::move(far), info, hamail::net::timeouts{}));
    hamail::net::connection* conn = f.connections.back().get();
    hamail::backend::imap_context* c = f.ctx.get();
    asio::co_spawn(
        f.io,
        [c, conn]() -> asio::awaitable<void> {
          {
            hamail::backend::imap_session_detail::session s(*c, *conn);
            co_await s.run();
          }
          conn->close();
        },
        asio::detached);
    s_ = std::move(near);
    asio::co_spawn(io_, reader(s_, in_), asio::detached);
  }
  ~zclient() { s_->close(); }
  zclient(const zclient&) = delete;
  zclient& operator=(const zclient&) = delete;

  /// From now on sends are compressed and what arrives is inflated.
  void start_compress() {
    CPPUNIT_ASSERT_MESSAGE("bytes after the OK: " + in_->raw, in_->raw.empty());
    compressed_ = true;
  }
  /// Compresses `plain` as the client's next output (a sync flush at its end).
  std::string deflate_bytes(std::string_view plain) { return z_.compress(plain); }
  /// Sends bytes as they are.
  void send_raw(std::string_view bytes) {
    auto copy = std::make_shared<std::string>(bytes);
    bool done = false;
    asio::co_spawn(
        io_,
        [this, copy, &done]() -> asio::awaitable<void> {
          auto r = co_await s_->async_write(asio::buffer(*copy));
          CPPUNIT_ASSERT(r.has_value());
          done = true;
        },
        asio::detached);
    run_until([&] { return done; });
  }
  /// Sends `plain`, compressed once compression is on.
  void send(std::string_view plain) { send_raw(compressed_ ? deflate_bytes(plain) : plain); }
  /// Everything up to and including the line starting with `tag` + " ".
  std::string until_tagged(std::string_view tag) {
    const std::string prefix = std::string(tag) + " ";
    std::size_t end = std::string::npos;
    run_until([&] {
      decode();
      for (std::size_t pos = 0; pos < plain_.size();) {
        const auto nl = plain_.find("\r\n", pos);
        if (nl == std::string::npos) break;
        if (plain_.compare(pos, prefix.size(), prefix) == 0) {
          end = nl + 2;
          return true;
        }
        pos = nl + 2;
      }
      return in_->eof;
    });
    if (end == std::string::npos) end = plain_.size();
    std::string out = plain_.substr(0, end);
    plain_.erase(0, end);
    return out;
  }
  /// One line without CRLF ("<EOF>" when the server closed).
  std::string line() {
    run_until([&] {
      decode();
      return plain_.find("\r\n") != std::string::npos || in_->eof;
    });
    const auto nl = plain_.find("\r\n");
    if (nl == std::string::npos) return "<EOF>";
    std::string out = plain_.substr(0, nl);
    plain_.erase(0, nl + 2);
    return out;
  }
  /// Sends "<command>\r\n" and returns everything up to its tagged response.
  std::string command(std::string_view cmd) {
    send(std::string(cmd) + "\r\n");
    return until_tagged(cmd.substr(0, cmd.find(' ')));
  }
  /// True once the server closed the connection.
  bool closed() {
    run_until([&] { return in_->eof; });
    return true;
  }
  /// Octets received on the wire since the last call.
  std::size_t take_wire_count() { return std::exchange(in_->wire, 0); }

 private:
  struct input {
    std::string raw;
    std::size_t wire = 0;
    bool eof = false;
  };

  static asio::awaitable<void> reader(std::shared_ptr<hamail::net::memory_stream> s,
                                      std::shared_ptr<input> in) {
    char chunk[8192];
    for (;;) {
      auto r = co_await s->async_read_some(asio::buffer(chunk));
      if (!r) {
        in->eof = true;
        co_return;
      }
      in->raw.append(chunk, *r);
      in->wire += *r;
    }
  }

  /// Moves what arrived into plain_, inflating it once compression is on.
  void decode() {
    if (in_->raw.empty()) return;
    if (!compressed_) {
      plain_ += in_->raw;
      in_->raw.clear();
      return;
    }
    plain_ += z_.inflate_all(in_->raw);
    CPPUNIT_ASSERT_MESSAGE("the server ended its deflate stream", !z_.input_ended());
    in_->raw.clear();
  }

  template <class P>
  void run_until(P pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred()) {
      CPPUNIT_ASSERT_MESSAGE("timed out; received so far: " + plain_,
                             std::chrono::steady_clock::now() < deadline);
      io_.run_one_for(5ms);
    }
  }

  asio::io_context& io_;
  std::shared_ptr<hamail::net::memory_stream> s_;
  std::shared_ptr<input> in_;
  std::string plain_;
  bool compressed_ = false;
  hamail::test::zlib_peer z_;
};

/// A message of about `size` octets of text.
std::string big_message(std::size_t size) {
  std::string m =
      "From: Sender <s@example.net>\r\nTo: alice@example.org\r\nSubject: big\r\n"
      "Message-ID: <big@example.net>\r\nDate: Tue, 14 Nov 2023 10:00:00 +0000\r\n\r\n";
  for (int i = 0; m.size() < size; ++i) {
    m += "Line " + std::to_string(i) + " of the report: the quota of the mail store is fine.\r\n";
  }
  return m;
}

}  // namespace

class imap_compress_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(imap_compress_test);
  CPPUNIT_TEST(compress_then_every_command);
  CPPUNIT_TEST(refusals);
  CPPUNIT_TEST(pipelined_compressed_command_is_inflated);
  CPPUNIT_TEST(uncompressed_input_ends_the_session);
  CPPUNIT_TEST_SUITE_END();

 public:
  void compress_then_every_command() {
    fixture f;
    const std::string big = big_message(200000);
    f.deliver(big);
    zclient c(f);
    CPPUNIT_ASSERT_MESSAGE("greeting", has(c.line(), "* OK [CAPABILITY "));
    auto r = c.command("a0 CAPABILITY");
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "COMPRESS"));
    CPPUNIT_ASSERT_EQUAL(std::string("a1 BAD Log in first\r\n"), c.command("a1 COMPRESS DEFLATE"));
    r = c.command("a2 LOGIN alice@example.org secret");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, " COMPRESS=DEFLATE"));
    CPPUNIT_ASSERT_EQUAL(std::string("a3 OK DEFLATE active\r\n"), c.command("a3 COMPRESS DEFLATE"));
    c.start_compress();

    r = c.command("a4 SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 1 EXISTS\r\n"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a4 OK [READ-WRITE] SELECT completed\r\n"));
    c.take_wire_count();
    r = c.command("a5 FETCH 1 BODY.PEEK[]");
    const std::size_t wire = c.take_wire_count();
    CPPUNIT_ASSERT_MESSAGE(r.substr(0, 200), has(r, big));
    CPPUNIT_ASSERT_MESSAGE(r.substr(r.size() - 100), has(r, "a5 OK FETCH completed\r\n"));
    std::printf("\nFETCH of %zu octets: %zu octets on the wire\n", r.size(), wire);
    CPPUNIT_ASSERT(wire < r.size() / 4);
    CPPUNIT_ASSERT_EQUAL(std::string("a6 NO [COMPRESSIONACTIVE] DEFLATE is active already\r\n"),
                         c.command("a6 COMPRESS DEFLATE"));

    // APPEND with a synchronizing literal: the continuation comes compressed too.
    const std::string small = "Subject: up\r\n\r\nhello\r\n";
    c.send("a7 APPEND INBOX {" + std::to_string(small.size()) + "}\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ Ready for literal data"), c.line());
    c.send(small + "\r\n");
    r = c.until_tagged("a7");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a7 OK [APPENDUID "));

    c.send("a8 IDLE\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ idling"), c.line());
    f.deliver(big_message(1000));
    CPPUNIT_ASSERT_EQUAL(std::string("* 3 EXISTS"), c.line());
    c.send("DONE\r\n");
    r = c.until_tagged("a8");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a8 OK IDLE terminated\r\n"));
    r = c.command("a9 LOGOUT");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* BYE Logging out\r\na9 OK LOGOUT completed\r\n"));
    CPPUNIT_ASSERT(c.closed());
  }

  void refusals() {
    fixture f;
    zclient c(f);
    c.line();
    c.command("a1 LOGIN alice@example.org secret");
    CPPUNIT_ASSERT_EQUAL(std::string("a2 BAD COMPRESS takes one mechanism name\r\n"),
                         c.command("a2 COMPRESS"));
    CPPUNIT_ASSERT_EQUAL(std::string("a3 BAD Unknown compression mechanism\r\n"),
                         c.command("a3 COMPRESS GZIP"));
    CPPUNIT_ASSERT_EQUAL(std::string("a4 BAD COMPRESS takes one mechanism name\r\n"),
                         c.command("a4 COMPRESS DEFLATE DEFLATE"));
    CPPUNIT_ASSERT_EQUAL(std::string("a5 BAD COMPRESS takes one mechanism name\r\n"),
                         c.command("a5 COMPRESS \"DEFLATE\""));
    // Still plain text after the refusals; the mechanism name is case-insensitive.
    CPPUNIT_ASSERT_EQUAL(std::string("a6 OK DEFLATE active\r\n"), c.command("a6 COMPRESS deflate"));
    c.start_compress();
    CPPUNIT_ASSERT_EQUAL(std::string("a7 OK NOOP completed\r\n"), c.command("a7 NOOP"));
  }

  void pipelined_compressed_command_is_inflated() {
    fixture f;
    f.deliver(big_message(500));
    zclient c(f);
    c.line();
    c.command("a1 LOGIN alice@example.org secret");
    auto r = c.command("a2 SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a2 OK [READ-WRITE]"));
    // COMPRESS in the selected state, and the next command sent compressed
    // in the same write, before the OK (RFC 4978 §3 says wait; some don't).
    c.send_raw("a3 COMPRESS DEFLATE\r\n" + c.deflate_bytes("a4 FETCH 1 (FLAGS)\r\n"));
    CPPUNIT_ASSERT_EQUAL(std::string("a3 OK DEFLATE active\r\n"), c.until_tagged("a3"));
    c.start_compress();
    r = c.until_tagged("a4");
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 FETCH (FLAGS (\\Recent))\r\na4 OK FETCH completed\r\n"),
                         r);
    CPPUNIT_ASSERT_EQUAL(std::string("a5 OK NOOP completed\r\n"), c.command("a5 NOOP"));
  }

  void uncompressed_input_ends_the_session() {
    fixture f;
    zclient c(f);
    c.line();
    c.command("a1 LOGIN alice@example.org secret");
    CPPUNIT_ASSERT_EQUAL(std::string("a2 OK DEFLATE active\r\n"), c.command("a2 COMPRESS DEFLATE"));
    // A client that forgot to compress: the server cannot read it and hangs up.
    c.send_raw("\xff\xff\xff\xff a3 NOOP\r\n");
    CPPUNIT_ASSERT(c.closed());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(imap_compress_test);

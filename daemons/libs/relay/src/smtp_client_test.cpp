// The relay client against scripted fake servers: on in-memory stream pairs,
// and on loopback TCP (port 0) for timeouts and STARTTLS.

#include "hamail/relay/smtp_client.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "body_encoder.hpp"
#include "hamail/core/server_settings.hpp"
#include "hamail/net/byte_stream.hpp"
#include "hamail/test/split.hpp"
#include "hamail/test/temp_dir.hpp"
#include "hamail/test/test_ca.hpp"
#include "hamail/tls/context.hpp"

namespace hamail::relay {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

/// The server end of a connection, driven by a test script.
struct fake_server {
  std::unique_ptr<net::byte_stream> stream;
  std::string buffer;  // received, not yet taken
  bool eof = false;

  /// One read; false at end of stream.
  awaitable<bool> read_more() {
    char chunk[65536];
    auto r = co_await stream->async_read_some(asio::buffer(chunk));
    if (!r) {
      eof = true;
      co_return false;
    }
    buffer.append(chunk, *r);
    co_return true;
  }
  /// Exactly what one read returns (the bytes of one client write, when the client waits).
  awaitable<std::string> read_once() {
    if (buffer.empty()) co_await read_more();
    co_return std::exchange(buffer, {});
  }
  /// Everything up to and including `term`; "<eof>" when the stream ends first.
  awaitable<std::string> read_until(std::string_view term) {
    for (;;) {
      const auto at = buffer.find(term);
      if (at != std::string::npos) {
        std::string out = buffer.substr(0, at + term.size());
        buffer.erase(0, at + term.size());
        co_return out;
      }
      if (!co_await read_more()) co_return "<eof>";
    }
  }
  /// The next CRLF line with its CRLF.
  awaitable<std::string> line() { co_return co_await read_until("\r\n"); }
  /// A "BDAT n [LAST]" command and its octets: {data, last}; data "<eof>" at end of stream.
  awaitable<std::pair<std::string, bool>> bdat() {
    const std::string cmd = co_await line();
    if (cmd.rfind("BDAT ", 0) != 0) co_return std::pair{"<not bdat: " + cmd + ">", true};
    const std::size_t n = std::stoul(cmd.substr(5));
    const bool last = cmd.find(" LAST") != std::string::npos;
    while (buffer.size() < n)
      if (!co_await read_more()) co_return std::pair{std::string("<eof>"), true};
    std::string data = buffer.substr(0, n);
    buffer.erase(0, n);
    co_return std::pair{data, last};
  }
  awaitable<void> send(std::string_view text) {
    {
      auto awaited_1 = co_await stream->async_write(asio::buffer(text));
      CPPUNIT_ASSERT(static_cast<bool>(awaited_1));
    }
  }
  /// Greeting and LHLO/EHLO exchange with the given keywords (multi-line reply).
  /// `keyword_list` separates keywords by '|' (a braced list of literals in a
  /// co_await expression trips GCC 12).
  awaitable<void> greet(std::string_view hello_verb, std::string_view keyword_list) {
    std::vector<std::string> keywords;
    while (!keyword_list.empty()) {
      const auto bar = keyword_list.find('|');
      keywords.emplace_back(keyword_list.substr(0, bar));
      keyword_list.remove_prefix(bar == std::string_view::npos ? keyword_list.size() : bar + 1);
    }
    co_await send("220 store.test LMTP ready\r\n");
    const std::string hello = co_await line();
    CPPUNIT_ASSERT_EQUAL(std::string(hello_verb) + " proxy.test\r\n", hello);
    std::string reply = keywords.empty() ? "250 store.test\r\n" : "250-store.test\r\n";
    for (std::size_t i = 0; i < keywords.size(); ++i)
      reply += std::string(i + 1 == keywords.size() ? "250 " : "250-") + keywords[i] + "\r\n";
    co_await send(reply);
  }
};

/// Runs a client script and a server script on one io_context, with a watchdog.
void run(asio::io_context& io, std::function<awaitable<void>()> client,
         std::function<awaitable<void>()> server, std::chrono::seconds limit = 20s) {
  std::exception_ptr failure;
  int finished = 0;
  asio::steady_timer watchdog(io, limit);
  bool timed_out = false;
  watchdog.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      io.stop();
    }
  });
  auto done = [&](std::exception_ptr e) {
    if (e && !failure) failure = e;
    if (++finished == 2) watchdog.cancel();
  };
  asio::co_spawn(io, client(), done);
  asio::co_spawn(io, server(), done);
  io.run();
  if (failure) std::rethrow_exception(failure);
  CPPUNIT_ASSERT_MESSAGE("test did not finish in time", !timed_out);
}

client_options lmtp_options() {
  client_options o;
  o.mode = protocol_mode::lmtp;
  o.greeting_timeout = 5s;
  o.command_timeout = 5s;
  o.data_timeout = 5s;
  return o;
}

/// An envelope from sender@example.org to the '|'-separated recipients.
envelope make_envelope(std::string_view rcpts) {
  envelope e;
  e.from = "sender@example.org";
  while (!rcpts.empty()) {
    const auto bar = rcpts.find('|');
    e.rcpts.emplace_back(std::string(rcpts.substr(0, bar)));
    rcpts.remove_prefix(bar == std::string_view::npos ? rcpts.size() : bar + 1);
  }
  return e;
}

/// Starts a client on `c` and says LHLO/EHLO; fails the test when either fails.
awaitable<std::unique_ptr<smtp_client>> start_client(std::unique_ptr<net::byte_stream> c,
                                                     client_options o) {
  auto cl = co_await smtp_client::start(std::move(c), o);
  CPPUNIT_ASSERT_MESSAGE(cl ? "" : cl.err().describe(), cl.has_value());
  auto caps = co_await (*cl)->hello("proxy.test");
  CPPUNIT_ASSERT_MESSAGE(caps ? "" : caps.err().describe(), caps.has_value());
  co_return std::move(*cl);
}

std::string encode(std::string_view body, bool dot_stuff,
                   const std::vector<std::size_t>& cuts = {}) {
  detail::body_encoder e(dot_stuff);
  std::string out;
  for (auto piece : test::cut(body, cuts)) e.encode(piece, out);
  e.finish(out);
  return out;
}

class smtp_client_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(smtp_client_test);
  CPPUNIT_TEST(body_encoder_stuffs_dots_and_normalises_at_every_split);
  CPPUNIT_TEST(file_body_reads_at_any_offset);
  CPPUNIT_TEST(lhlo_capabilities_from_reply_split_across_reads);
  CPPUNIT_TEST(ehlo_in_smtp_mode_and_greeting_refused);
  CPPUNIT_TEST(pipelined_envelope_and_lmtp_replies_per_recipient);
  CPPUNIT_TEST(data_is_dot_stuffed_and_bare_lf_becomes_crlf);
  CPPUNIT_TEST(bdat_chunks_a_body_larger_than_a_chunk);
  CPPUNIT_TEST(mail_rejected_gives_every_recipient_that_reply);
  CPPUNIT_TEST(rset_before_a_transaction_after_an_abandoned_one);
  CPPUNIT_TEST(connection_dropped_mid_data_is_temporary_for_everyone);
  CPPUNIT_TEST(lmtp_drop_after_some_replies_keeps_those);
  CPPUNIT_TEST(smtp_mode_one_reply_for_all);
  CPPUNIT_TEST(invalid_envelope_is_refused_before_sending);
  CPPUNIT_TEST(silent_server_times_out_on_greeting_and_command);
  CPPUNIT_TEST(starttls_upgrades_and_verifies_the_server);
  CPPUNIT_TEST(steps_lmtp_results_in_acceptance_order_then_a_second_transaction);
  CPPUNIT_TEST(steps_smtp_bdat_copies_the_one_reply_to_each_accepted);
  CPPUNIT_TEST(steps_refused_begin_is_a_reply_and_rcpt_without_begin_is_503);
  CPPUNIT_TEST(steps_invalid_input_is_not_sent_and_open_transaction_is_reset);
  CPPUNIT_TEST(steps_connection_dropped_during_add_recipient);
  CPPUNIT_TEST(steps_connection_dropped_during_finish);
  CPPUNIT_TEST(xclient_sends_offered_attributes_then_says_hello_again);
  CPPUNIT_TEST(xclient_not_offered_is_not_sent);
  CPPUNIT_TEST(xclient_refused_is_a_temporary_error);
  CPPUNIT_TEST_SUITE_END();

 public:
  void body_encoder_stuffs_dots_and_normalises_at_every_split() {
    const std::string body = ".hidden\nline\r\n..two\r\n.\r\nbare\rcr\r\r\nend";
    const std::string data = "..hidden\r\nline\r\n...two\r\n..\r\nbare\r\ncr\r\n\r\nend\r\n.\r\n";
    const std::string bdat = ".hidden\r\nline\r\n..two\r\n.\r\nbare\r\ncr\r\n\r\nend\r\n";
    for (std::size_t a = 0; a <= body.size(); ++a) {
      for (std::size_t b = a; b <= body.size(); ++b) {
        CPPUNIT_ASSERT_EQUAL(data, encode(body, true, {a, b}));
        CPPUNIT_ASSERT_EQUAL(bdat, encode(body, false, {a, b}));
      }
    }
    CPPUNIT_ASSERT_EQUAL(std::string(".\r\n"), encode("", true));
    CPPUNIT_ASSERT_EQUAL(std::string(), encode("", false));
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\n"), encode("a\r\n", true));
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\n"), encode("a\r", true));
  }

  void file_body_reads_at_any_offset() {
    test::temp_dir dir;
    const auto path = (dir.path() / "msg").string();
    std::string content(200000, '\0');
    for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
    std::ofstream(path, std::ios::binary) << content;
    auto body = file_body::open(path);
    CPPUNIT_ASSERT(body.has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{200000}, (*body)->size());
    char buf[1000];
    auto n = (*body)->read_at(199500, buf);
    CPPUNIT_ASSERT(n && *n == 500);
    CPPUNIT_ASSERT(std::string_view(buf, 500) == std::string_view(content).substr(199500));
    n = (*body)->read_at(200000, buf);
    CPPUNIT_ASSERT(n && *n == 0);
    auto missing = file_body::open((dir.path() / "nope").string());
    CPPUNIT_ASSERT(!missing && missing.err().code == errc::not_found);
  }

  void lhlo_capabilities_from_reply_split_across_reads() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await smtp_client::start(std::move(c), lmtp_options());
          CPPUNIT_ASSERT(cl);
          auto caps = co_await (*cl)->hello("proxy.test");
          CPPUNIT_ASSERT_MESSAGE(caps ? "" : caps.err().describe(), caps.has_value());
          CPPUNIT_ASSERT_EQUAL(std::string("store.test hello"), caps->greeting);
          CPPUNIT_ASSERT(caps->pipelining && caps->chunking && caps->enhanced_status_codes);
          CPPUNIT_ASSERT(caps->eightbitmime && !caps->starttls && !caps->smtputf8);
          CPPUNIT_ASSERT(caps->size && *caps->size == 1000000);
          CPPUNIT_ASSERT(caps->has("x-custom") && !caps->has("X"));
          {
            auto awaited_2 = co_await (*cl)->quit();
            CPPUNIT_ASSERT(static_cast<bool>(awaited_2));
          }
          CPPUNIT_ASSERT(!(*cl)->usable());
        },
        [&]() -> awaitable<void> {
          co_await srv.send("220-store.test\r\n22");
          co_await sleep_for(10ms);
          co_await srv.send("0 ready\r\n");
          {
            const auto awaited_3 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("LHLO proxy.test\r\n"), awaited_3);
          }
          for (std::string_view piece :
               {"250-store.test hello\r\n250-PIPE", "LINING\r\n250-CHUNKING\r",
                "\n250-SIZE 1000000\r\n",
                "250-8bitmime\r\n250-X-CUSTOM a b\r\n250 ENHANCEDSTATUSCODES", "\r\n"}) {
            co_await srv.send(piece);
            co_await sleep_for(5ms);
          }
          {
            const auto awaited_4 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("QUIT\r\n"), awaited_4);
          }
          co_await srv.send("221 2.0.0 bye\r\n");
        });
  }

  void ehlo_in_smtp_mode_and_greeting_refused() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    auto c2_pair = net::memory_stream::make_pair(io.get_executor());
    auto c2 = std::move(c2_pair.first);
    auto s2 = std::move(c2_pair.second);
    fake_server srv{std::move(s)};
    fake_server srv2{std::move(s2)};
    auto o = lmtp_options();
    o.mode = protocol_mode::smtp;
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), o);
          CPPUNIT_ASSERT(cl->server_capabilities().lines.empty());
          cl->close();
          auto refused = co_await smtp_client::start(std::move(c2), o);
          CPPUNIT_ASSERT(!refused);
          CPPUNIT_ASSERT(refused.err().is_permanent());
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("EHLO", "");
          co_await srv2.send("554 5.7.1 go away\r\n");
        });
  }

  void pipelined_envelope_and_lmtp_replies_per_recipient() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    std::string batch;
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("Subject: hi\r\n\r\nhello\r\n");
          auto env = make_envelope("a@x.test|b@x.test|c@x.test|d@x.test");
          env.rcpts[3].params = "NOTIFY=NEVER";
          env.mail_params = "BODY=8BITMIME";
          const auto res = co_await cl->send(env, body);
          CPPUNIT_ASSERT_EQUAL(std::size_t{4}, res.size());
          CPPUNIT_ASSERT(res[0].delivered());
          CPPUNIT_ASSERT(res[1].permanent() && res[1].reply.code == 550);
          CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), res[1].reply.enhanced);
          CPPUNIT_ASSERT(res[2].temporary() && !res[2].delivered() && res[2].reply.code == 452);
          CPPUNIT_ASSERT(res[3].permanent() && res[3].reply.code == 552);
          CPPUNIT_ASSERT(!res[2].local_error);
          CPPUNIT_ASSERT(cl->usable());
          {
            auto awaited_5 = co_await cl->quit();
            CPPUNIT_ASSERT(static_cast<bool>(awaited_5));
          }
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING|ENHANCEDSTATUSCODES|8BITMIME");
          batch = co_await srv.read_once();
          CPPUNIT_ASSERT_EQUAL(
              std::string("MAIL FROM:<sender@example.org> BODY=8BITMIME\r\n"
                          "RCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
                          "RCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test> NOTIFY=NEVER\r\n"
                          "DATA\r\n"),
              batch);
          co_await srv.send(
              "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 No such user\r\n250 2.1.5 ok\r\n"
              "250 2.1.5 ok\r\n354 go ahead\r\n");
          {
            const auto awaited_6 = co_await srv.read_until("\r\n.\r\n");
            CPPUNIT_ASSERT_EQUAL(std::string("Subject: hi\r\n\r\nhello\r\n.\r\n"), awaited_6);
          }
          co_await srv.send("250 2.0.0 <a@x.test> delivered\r\n452 4.2.2 <c@x.test> full\r\n");
          co_await sleep_for(5ms);
          co_await srv.send("552-5.2.2 <d@x.test>\r\n552 5.2.2 over quota\r\n");
          {
            const auto awaited_7 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("QUIT\r\n"), awaited_7);
          }
          co_await srv.send("221 2.0.0 bye\r\n");
        });
  }

  void data_is_dot_stuffed_and_bare_lf_becomes_crlf() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    auto o = lmtp_options();
    o.chunk_size = 512;  // the body crosses several DATA writes
    std::string body_text;
    std::string wire;
    for (int i = 0; i < 100; ++i) {
      body_text += ".line " + std::to_string(i) + "\n.\n";
      wire += "..line " + std::to_string(i) + "\r\n..\r\n";
    }
    wire += ".\r\n";
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), o);
          memory_body body(body_text);
          const auto res = co_await cl->send(make_envelope("a@x.test"), body);
          CPPUNIT_ASSERT(res.at(0).delivered());
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "");  // no PIPELINING: one command at a time
          {
            const auto awaited_8 = co_await srv.read_once();
            CPPUNIT_ASSERT_EQUAL(std::string("MAIL FROM:<sender@example.org>\r\n"), awaited_8);
          }
          co_await srv.send("250 2.1.0 ok\r\n");
          {
            const auto awaited_9 = co_await srv.read_once();
            CPPUNIT_ASSERT_EQUAL(std::string("RCPT TO:<a@x.test>\r\n"), awaited_9);
          }
          co_await srv.send("250 2.1.5 ok\r\n");
          {
            const auto awaited_10 = co_await srv.read_once();
            CPPUNIT_ASSERT_EQUAL(std::string("DATA\r\n"), awaited_10);
          }
          co_await srv.send("354 go\r\n");
          {
            const auto awaited_11 = co_await srv.read_until("\r\n.\r\n");
            CPPUNIT_ASSERT_EQUAL(wire, awaited_11);
          }
          co_await srv.send("250 2.0.0 ok\r\n");
          (void)co_await srv.read_until("never");  // until the client goes away
        });
  }

  void bdat_chunks_a_body_larger_than_a_chunk() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    auto o = lmtp_options();
    o.chunk_size = 1024;
    std::string body_text;
    while (body_text.size() < 2500) body_text += ".dot line, not stuffed\r\n";
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), o);
          memory_body body(body_text);
          const auto res = co_await cl->send(make_envelope("a@x.test|b@x.test"), body);
          CPPUNIT_ASSERT(res.at(0).delivered());
          CPPUNIT_ASSERT(res.at(1).temporary() && res.at(1).reply.code == 451);
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING|CHUNKING");
          {
            const auto awaited_12 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("MAIL FROM:<sender@example.org>\r\n"), awaited_12);
          }
          {
            const auto awaited_13 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("RCPT TO:<a@x.test>\r\n"), awaited_13);
          }
          {
            const auto awaited_14 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("RCPT TO:<b@x.test>\r\n"), awaited_14);
          }
          std::string got;
          int chunks = 0;
          auto [first, last] = co_await srv.bdat();  // sent in the same write as the envelope
          CPPUNIT_ASSERT(srv.buffer.empty());
          CPPUNIT_ASSERT_EQUAL(std::size_t{1024}, first.size());
          CPPUNIT_ASSERT(!last);
          got += first;
          ++chunks;
          co_await srv.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n250 2.0.0 chunk\r\n");
          while (!last) {
            auto [data, l] = co_await srv.bdat();
            got += data;
            last = l;
            ++chunks;
            if (!last) co_await srv.send("250 2.0.0 chunk\r\n");
          }
          CPPUNIT_ASSERT_EQUAL(3, chunks);
          CPPUNIT_ASSERT(got == body_text);
          co_await srv.send("250 2.0.0 delivered\r\n451 4.3.0 later\r\n");
          (void)co_await srv.read_until("never");
        });
  }

  void mail_rejected_gives_every_recipient_that_reply() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("x\r\n");
          auto res = co_await cl->send(make_envelope("a@x.test|b@x.test"), body);
          for (const auto& r : res) {
            CPPUNIT_ASSERT(r.temporary() && !r.delivered() && !r.local_error);
            CPPUNIT_ASSERT_EQUAL(std::string("451 4.3.0 try later"), r.reply.describe());
          }
          // the connection stays in step: the next transaction works
          res = co_await cl->send(make_envelope("c@x.test"), body);
          CPPUNIT_ASSERT(res.at(0).permanent() && res.at(0).reply.code == 553);
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING");
          (void)co_await srv.read_until("DATA\r\n");
          co_await srv.send(
              "451 4.3.0 try later\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no\r\n");
          {
            const auto awaited_15 = co_await srv.read_until("DATA\r\n");
            CPPUNIT_ASSERT_EQUAL(
                std::string("MAIL FROM:<sender@example.org>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
                awaited_15);
          }
          co_await srv.send("553 5.7.1 sender refused\r\n503 5.5.1 no\r\n503 5.5.1 no\r\n");
          (void)co_await srv.read_until("never");
        });
  }

  void rset_before_a_transaction_after_an_abandoned_one() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("x\r\n");
          auto res = co_await cl->send(make_envelope("a@x.test"), body);
          CPPUNIT_ASSERT(res.at(0).permanent());
          res = co_await cl->send(make_envelope("b@x.test"), body);
          CPPUNIT_ASSERT(res.at(0).delivered());
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING");
          (void)co_await srv.read_until("DATA\r\n");
          co_await srv.send("250 ok\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n");
          {
            const auto awaited_16 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("RSET\r\n"), awaited_16);
          }
          co_await srv.send("250 2.0.0 reset\r\n");
          (void)co_await srv.read_until("DATA\r\n");
          co_await srv.send("250 ok\r\n250 ok\r\n354 go\r\n");
          (void)co_await srv.read_until("\r\n.\r\n");
          co_await srv.send("250 2.0.0 ok\r\n");
          (void)co_await srv.read_until("never");
        });
  }

  void connection_dropped_mid_data_is_temporary_for_everyone() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body(std::string(300000, 'x'));
          const auto res = co_await cl->send(make_envelope("a@x.test|b@x.test"), body);
          for (const auto& r : res) {
            CPPUNIT_ASSERT(!r.delivered() && r.temporary() && r.local_error);
            CPPUNIT_ASSERT(r.local_error->code == errc::connection_closed);
            CPPUNIT_ASSERT_EQUAL(451, r.reply.code);
          }
          CPPUNIT_ASSERT(!cl->usable());
          // later sends fail at once, never "delivered"
          const auto again = co_await cl->send(make_envelope("a@x.test"), body);
          CPPUNIT_ASSERT(again.at(0).temporary() && again.at(0).local_error);
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING");
          (void)co_await srv.read_until("DATA\r\n");
          co_await srv.send("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
          (void)co_await srv.read_more();
          srv.stream->close();  // mid-body
        });
  }

  void lmtp_drop_after_some_replies_keeps_those() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("x\r\n");
          const auto res = co_await cl->send(make_envelope("a@x.test|b@x.test|c@x.test"), body);
          CPPUNIT_ASSERT(res[0].delivered());
          CPPUNIT_ASSERT(res[1].permanent() && res[1].reply.code == 550);
          CPPUNIT_ASSERT(!res[2].delivered() && res[2].temporary() && res[2].local_error);
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING|CHUNKING");
          (void)co_await srv.read_until("BDAT 3 LAST\r\nx\r\n");
          co_await srv.send("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n250 2.0.0 a ok\r\n");
          srv.stream->close();
        });
  }

  void smtp_mode_one_reply_for_all() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    auto o = lmtp_options();
    o.mode = protocol_mode::smtp;
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), o);
          memory_body body("x\r\n");
          const auto res = co_await cl->send(make_envelope("a@x.test|b@x.test"), body);
          CPPUNIT_ASSERT(res[0].delivered() && res[1].delivered());
          CPPUNIT_ASSERT_EQUAL(std::string("queued as 1"), res[1].reply.text());
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("EHLO", "PIPELINING|CHUNKING|SIZE 100");
          {
            const auto awaited_17 = co_await srv.read_until("x\r\n");
            CPPUNIT_ASSERT_EQUAL(
                std::string("MAIL FROM:<sender@example.org> SIZE=3\r\nRCPT TO:<a@x.test>\r\n"
                            "RCPT TO:<b@x.test>\r\nBDAT 3 LAST\r\nx\r\n"),
                awaited_17);
          }
          co_await srv.send("250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 queued as 1\r\n");
          (void)co_await srv.read_until("never");
        });
  }

  void invalid_envelope_is_refused_before_sending() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("x\r\n");
          auto res = co_await cl->send(make_envelope("a@x.test>\r\nRCPT TO:<evil@x"), body);
          CPPUNIT_ASSERT(res.at(0).permanent() && res.at(0).reply.code == 501);
          auto env = make_envelope("a@x.test");
          env.mail_params = "BODY=7BIT\r\nRSET";
          res = co_await cl->send(env, body);
          CPPUNIT_ASSERT(res.at(0).permanent());
          {
            auto awaited_18 = co_await cl->quit();
            CPPUNIT_ASSERT(static_cast<bool>(awaited_18));
          }
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING");
          {
            const auto awaited_19 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("QUIT\r\n"), awaited_19);
          }
          co_await srv.send("221 bye\r\n");
        });
  }

  void silent_server_times_out_on_greeting_and_command() {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    auto o = lmtp_options();
    o.greeting_timeout = 200ms;
    o.command_timeout = 200ms;
    tcp::socket accepted(io);
    run(
        io,
        [&]() -> awaitable<void> {
          // TCP accepted, nothing ever said
          auto t0 = clock::now();
          auto cl = co_await smtp_client::connect(io.get_executor(), acceptor.local_endpoint(), o);
          CPPUNIT_ASSERT(!cl);
          CPPUNIT_ASSERT_EQUAL(std::string("timed_out"), std::string(to_string(cl.err().code)));
          CPPUNIT_ASSERT(cl.err().is_temporary());
          CPPUNIT_ASSERT(clock::now() - t0 < 3s);
          // greeting, then silence after LHLO
          t0 = clock::now();
          auto started = co_await smtp_client::start(std::move(c), o);
          CPPUNIT_ASSERT(started);
          auto caps = co_await (*started)->hello("proxy.test");
          CPPUNIT_ASSERT(!caps && caps.err().code == errc::timed_out);
          CPPUNIT_ASSERT(clock::now() - t0 < 3s);
          CPPUNIT_ASSERT(!(*started)->usable());
          boost::system::error_code ignored;
          accepted.close(ignored);
        },
        [&]() -> awaitable<void> {
          auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
          CPPUNIT_ASSERT(!ec);
          accepted = std::move(sock);
          co_await srv.send("220 ready\r\n");
          (void)co_await srv.read_until("never");  // ends when the client closes
        });
  }

  void starttls_upgrades_and_verifies_the_server() {
    test::temp_dir dir;
    const auto ca = test::test_ca::make(dir.path());
    tls_settings ts;
    ts.cert_file = ca.server_cert.string();
    ts.key_file = ca.server_key.string();
    ts.chain_file = ca.chain.string();
    auto server_ctx = tls::make_server_context(ts);
    CPPUNIT_ASSERT_MESSAGE(server_ctx ? "" : server_ctx.err().describe(), server_ctx.has_value());
    auto client_ctx = tls::make_client_context(ca.ca_cert.string(), true);
    CPPUNIT_ASSERT(client_ctx.has_value());

    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto o = lmtp_options();
    o.mode = protocol_mode::smtp;
    o.starttls = starttls_policy::required;
    o.tls_context = *client_ctx;
    o.tls_host = "localhost";
    fake_server srv;
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await smtp_client::connect(io.get_executor(), acceptor.local_endpoint(), o);
          CPPUNIT_ASSERT(cl);
          auto caps = co_await (*cl)->hello("proxy.test");
          CPPUNIT_ASSERT_MESSAGE(caps ? "" : caps.err().describe(), caps.has_value());
          CPPUNIT_ASSERT((*cl)->is_tls());
          CPPUNIT_ASSERT(caps->has("AUTH") && !caps->starttls);
          memory_body body("x\r\n");
          const auto res = co_await (*cl)->send(make_envelope("a@x.test"), body);
          CPPUNIT_ASSERT(res.at(0).delivered());
          {
            auto awaited_20 = co_await (*cl)->quit();
            CPPUNIT_ASSERT(static_cast<bool>(awaited_20));
          }
        },
        [&]() -> awaitable<void> {
          auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
          CPPUNIT_ASSERT(!ec);
          srv.stream = std::make_unique<net::tcp_stream>(std::move(sock));
          co_await srv.greet("EHLO", "STARTTLS|PIPELINING");
          {
            const auto awaited_21 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("STARTTLS\r\n"), awaited_21);
          }
          co_await srv.send("220 2.0.0 go ahead\r\n");
          auto* plain = dynamic_cast<net::tcp_stream*>(srv.stream.get());
          auto tls = std::make_unique<net::tls_stream>(plain->release(), *server_ctx,
                                                       net::tls_stream::role::server);
          {
            auto awaited_22 = co_await tls->async_handshake();
            CPPUNIT_ASSERT(static_cast<bool>(awaited_22));
          }
          srv.stream = std::move(tls);
          {
            const auto awaited_23 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("EHLO proxy.test\r\n"), awaited_23);
          }
          co_await srv.send("250-store.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n");
          (void)co_await srv.read_until("DATA\r\n");
          co_await srv.send("250 ok\r\n250 ok\r\n354 go\r\n");
          (void)co_await srv.read_until("\r\n.\r\n");
          co_await srv.send("250 ok\r\n");
          {
            const auto awaited_24 = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("QUIT\r\n"), awaited_24);
          }
          co_await srv.send("221 bye\r\n");
        });
  }
  // ------------------------------------------------------------ stepwise transactions

  void steps_lmtp_results_in_acceptance_order_then_a_second_transaction() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body(".dot\nhello\r\n");
          auto m = co_await cl->begin("sender@example.org", "BODY=8BITMIME", body.size());
          CPPUNIT_ASSERT(m && m->code == 250);
          auto a = co_await cl->add_recipient(recipient("a@x.test"));
          CPPUNIT_ASSERT(a && a->positive());
          auto b = co_await cl->add_recipient(recipient("b@x.test"));
          CPPUNIT_ASSERT(b && b->permanent() && b->code == 550);
          CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), b->enhanced);
          auto cr = co_await cl->add_recipient(recipient("c@x.test", "NOTIFY=NEVER"));
          CPPUNIT_ASSERT(cr && cr->positive());
          const auto res = co_await cl->finish(body);
          // one per accepted recipient, in acceptance order: a, then c
          CPPUNIT_ASSERT_EQUAL(std::size_t{2}, res.size());
          CPPUNIT_ASSERT(res[0].delivered());
          CPPUNIT_ASSERT_EQUAL(std::string("<a@x.test> delivered"), res[0].reply.text());
          CPPUNIT_ASSERT(res[1].temporary() && !res[1].local_error && res[1].reply.code == 452);
          CPPUNIT_ASSERT(cl->usable());
          // after finish, no transaction: RCPT is refused locally
          auto late = co_await cl->add_recipient(recipient("z@x.test"));
          CPPUNIT_ASSERT(late && late->code == 503 && late->enhanced == "5.5.1");
          // a second transaction on the same connection, no RSET needed
          m = co_await cl->begin("", "");
          CPPUNIT_ASSERT(m && m->positive());
          auto d = co_await cl->add_recipient(recipient("d@x.test"));
          CPPUNIT_ASSERT(d && d->positive());
          const auto res2 = co_await cl->finish(body);
          CPPUNIT_ASSERT(res2.size() == 1 && res2[0].delivered());
          {
            auto awaited = co_await cl->quit();
            CPPUNIT_ASSERT(static_cast<bool>(awaited));
          }
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING|SIZE 1000|ENHANCEDSTATUSCODES");
          // one command per round trip, nothing pipelined behind it
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(
                std::string("MAIL FROM:<sender@example.org> SIZE=12 BODY=8BITMIME\r\n"), l);
            CPPUNIT_ASSERT(srv.buffer.empty());
          }
          co_await srv.send("250 2.1.0 ok\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("RCPT TO:<a@x.test>\r\n"), l);
            CPPUNIT_ASSERT(srv.buffer.empty());
          }
          co_await srv.send("250 2.1.5 ok\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("RCPT TO:<b@x.test>\r\n"), l);
          }
          co_await srv.send("550 5.1.1 No such user\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("RCPT TO:<c@x.test> NOTIFY=NEVER\r\n"), l);
          }
          co_await srv.send("250 2.1.5 ok\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("DATA\r\n"), l);
            CPPUNIT_ASSERT(srv.buffer.empty());
          }
          co_await srv.send("354 go ahead\r\n");
          {
            const auto data = co_await srv.read_until("\r\n.\r\n");
            CPPUNIT_ASSERT_EQUAL(std::string("..dot\r\nhello\r\n.\r\n"), data);
          }
          co_await srv.send("250 2.0.0 <a@x.test> delivered\r\n");
          co_await sleep_for(5ms);
          co_await srv.send("452 4.2.2 <c@x.test> full\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("MAIL FROM:<>\r\n"), l);
          }
          co_await srv.send("250 ok\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("RCPT TO:<d@x.test>\r\n"), l);
          }
          co_await srv.send("250 ok\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("DATA\r\n"), l);
          }
          co_await srv.send("354 go ahead\r\n");
          (void)co_await srv.read_until("\r\n.\r\n");
          co_await srv.send("250 2.0.0 <d@x.test> delivered\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("QUIT\r\n"), l);
          }
          co_await srv.send("221 bye\r\n");
        });
  }

  void steps_smtp_bdat_copies_the_one_reply_to_each_accepted() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    auto o = lmtp_options();
    o.mode = protocol_mode::smtp;
    o.chunk_size = 512;
    std::string body_text;
    while (body_text.size() < 1200) body_text += ".not stuffed in BDAT\r\n";
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), o);
          memory_body body(body_text);
          auto m = co_await cl->begin("sender@example.org", "");
          CPPUNIT_ASSERT(m && m->positive());
          auto a = co_await cl->add_recipient(recipient("a@x.test"));
          CPPUNIT_ASSERT(a && a->positive());
          auto b = co_await cl->add_recipient(recipient("b@x.test"));
          CPPUNIT_ASSERT(b && b->code == 450);
          auto cr = co_await cl->add_recipient(recipient("c@x.test"));
          CPPUNIT_ASSERT(cr && cr->positive());
          const auto res = co_await cl->finish(body);
          CPPUNIT_ASSERT_EQUAL(std::size_t{2}, res.size());
          for (const auto& r : res) {
            CPPUNIT_ASSERT(r.delivered());
            CPPUNIT_ASSERT_EQUAL(std::string("250 2.0.0 queued as 7"), r.reply.describe());
          }
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("EHLO", "PIPELINING|CHUNKING|ENHANCEDSTATUSCODES");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("MAIL FROM:<sender@example.org>\r\n"), l);
          }
          co_await srv.send("250 ok\r\n");
          (void)co_await srv.line();
          co_await srv.send("250 ok\r\n");
          (void)co_await srv.line();
          co_await srv.send("450 4.2.1 try later\r\n");
          (void)co_await srv.line();
          co_await srv.send("250 ok\r\n");
          std::string got;
          int chunks = 0;
          for (bool last = false; !last;) {
            auto [data, l] = co_await srv.bdat();
            CPPUNIT_ASSERT(data.size() <= 512);
            got += data;
            last = l;
            ++chunks;
            if (!last) co_await srv.send("250 2.0.0 chunk\r\n");
          }
          CPPUNIT_ASSERT_EQUAL(3, chunks);
          CPPUNIT_ASSERT(got == body_text);
          co_await srv.send("250 2.0.0 queued as 7\r\n");
          (void)co_await srv.read_until("never");
        });
  }

  void steps_refused_begin_is_a_reply_and_rcpt_without_begin_is_503() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("x\r\n");
          auto early = co_await cl->add_recipient(recipient("a@x.test"));
          CPPUNIT_ASSERT(early && early->code == 503 && early->enhanced == "5.5.1");
          auto m = co_await cl->begin("spammer@example.org", "");
          CPPUNIT_ASSERT(m && m->permanent() && m->code == 550);
          auto r = co_await cl->add_recipient(recipient("a@x.test"));
          CPPUNIT_ASSERT(r && r->code == 503);
          {
            const auto none = co_await cl->finish(body);
            CPPUNIT_ASSERT(none.empty());
          }
          m = co_await cl->begin("sender@example.org", "");
          CPPUNIT_ASSERT(m && m->temporary() && m->code == 451);
          CPPUNIT_ASSERT(cl->usable());
          {
            auto awaited = co_await cl->quit();
            CPPUNIT_ASSERT(static_cast<bool>(awaited));
          }
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING");
          // neither 503 went on the wire, nor a RSET after the refused MAIL
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("MAIL FROM:<spammer@example.org>\r\n"), l);
          }
          co_await srv.send("550 5.7.1 go away\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("MAIL FROM:<sender@example.org>\r\n"), l);
          }
          co_await srv.send("451 4.3.0 try later\r\n");
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("QUIT\r\n"), l);
          }
          co_await srv.send("221 bye\r\n");
        });
  }

  void steps_invalid_input_is_not_sent_and_open_transaction_is_reset() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("x\r\n");
          auto m = co_await cl->begin("a@x.test>\r\nRSET", "");
          CPPUNIT_ASSERT(m && m->code == 501 && m->enhanced == "5.5.4");
          m = co_await cl->begin("a@x.test", "BODY=7BIT\r\nRSET");
          CPPUNIT_ASSERT(m && m->code == 501);
          m = co_await cl->begin("a@x.test", "", 1001);
          CPPUNIT_ASSERT(m && m->code == 552 && m->enhanced == "5.3.4");
          m = co_await cl->begin("a@x.test", "", 1000);
          CPPUNIT_ASSERT(m && m->positive());
          auto r = co_await cl->add_recipient(recipient("x@x.test>\r\nRCPT TO:<evil@x.test"));
          CPPUNIT_ASSERT(r && r->code == 501 && r->enhanced == "5.5.4");
          r = co_await cl->add_recipient(recipient("x@x.test", "NOTIFY=NEVER\r\nDATA"));
          CPPUNIT_ASSERT(r && r->code == 501);
          r = co_await cl->add_recipient(recipient(""));
          CPPUNIT_ASSERT(r && r->code == 501);
          r = co_await cl->add_recipient(recipient("gone@x.test"));
          CPPUNIT_ASSERT(r && r->code == 550);
          // no accepted recipient: nothing is sent, the transaction stays open
          {
            const auto none = co_await cl->finish(body);
            CPPUNIT_ASSERT(none.empty());
          }
          // so the next begin() resets it first; and again while one is open mid-envelope
          m = co_await cl->begin("b@x.test", "");
          CPPUNIT_ASSERT(m && m->positive());
          r = co_await cl->add_recipient(recipient("ok@x.test"));
          CPPUNIT_ASSERT(r && r->positive());
          m = co_await cl->begin("c@x.test", "");
          CPPUNIT_ASSERT(m && m->positive());
          // the recipient of the abandoned transaction is forgotten
          {
            const auto none = co_await cl->finish(body);
            CPPUNIT_ASSERT(none.empty());
          }
          {
            auto awaited = co_await cl->quit();
            CPPUNIT_ASSERT(static_cast<bool>(awaited));
          }
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "SIZE 1000");
          for (const char* expected :
               {"MAIL FROM:<a@x.test> SIZE=1000\r\n", "RCPT TO:<gone@x.test>\r\n", "RSET\r\n",
                "MAIL FROM:<b@x.test>\r\n", "RCPT TO:<ok@x.test>\r\n", "RSET\r\n",
                "MAIL FROM:<c@x.test>\r\n", "QUIT\r\n"}) {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string(expected), l);
            CPPUNIT_ASSERT(srv.buffer.empty());
            if (l.rfind("RCPT TO:<gone", 0) == 0) {
              co_await srv.send("550 5.1.1 no such user\r\n");
            } else {
              co_await srv.send("250 ok\r\n");
            }
          }
        });
  }

  void steps_connection_dropped_during_add_recipient() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body("x\r\n");
          auto m = co_await cl->begin("sender@example.org", "");
          CPPUNIT_ASSERT(m && m->positive());
          auto a = co_await cl->add_recipient(recipient("a@x.test"));
          CPPUNIT_ASSERT(a && a->positive());
          auto b = co_await cl->add_recipient(recipient("b@x.test"));
          CPPUNIT_ASSERT(!b && b.err().is_temporary());
          CPPUNIT_ASSERT(b.err().code == errc::connection_closed);
          CPPUNIT_ASSERT(!cl->usable());
          auto again = co_await cl->add_recipient(recipient("c@x.test"));
          CPPUNIT_ASSERT(!again && again.err().is_temporary());
          // the recipient accepted before the drop still gets its (temporary) result
          const auto res = co_await cl->finish(body);
          CPPUNIT_ASSERT_EQUAL(std::size_t{1}, res.size());
          CPPUNIT_ASSERT(!res[0].delivered() && res[0].temporary() && res[0].local_error);
          CPPUNIT_ASSERT_EQUAL(451, res[0].reply.code);
          auto next = co_await cl->begin("sender@example.org", "");
          CPPUNIT_ASSERT(!next && next.err().is_temporary());
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING");
          (void)co_await srv.line();
          co_await srv.send("250 ok\r\n");
          (void)co_await srv.line();
          co_await srv.send("250 ok\r\n");
          (void)co_await srv.line();
          srv.stream->close();
        });
  }

  void steps_connection_dropped_during_finish() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    auto s = std::move(c_pair.second);
    fake_server srv{std::move(s)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), lmtp_options());
          memory_body body(std::string(300000, 'x'));
          auto m = co_await cl->begin("sender@example.org", "");
          CPPUNIT_ASSERT(m && m->positive());
          for (const char* rcpt : {"a@x.test", "b@x.test"}) {
            auto r = co_await cl->add_recipient(recipient(rcpt));
            CPPUNIT_ASSERT(r && r->positive());
          }
          const auto res = co_await cl->finish(body);
          CPPUNIT_ASSERT_EQUAL(std::size_t{2}, res.size());
          for (const auto& r : res) {
            CPPUNIT_ASSERT(!r.delivered() && r.temporary() && r.local_error);
            CPPUNIT_ASSERT(r.local_error->code == errc::connection_closed);
            CPPUNIT_ASSERT_EQUAL(451, r.reply.code);
          }
          CPPUNIT_ASSERT(!cl->usable());
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "PIPELINING");
          for (int i = 0; i < 3; ++i) {
            (void)co_await srv.line();
            co_await srv.send("250 ok\r\n");
          }
          {
            const auto l = co_await srv.line();
            CPPUNIT_ASSERT_EQUAL(std::string("DATA\r\n"), l);
          }
          co_await srv.send("354 go\r\n");
          (void)co_await srv.read_more();
          srv.stream->close();  // mid-body
        });
  }

  static client_options xclient_options() {
    auto o = lmtp_options();
    o.xclient = {{"ADDR", "192.0.2.7"},
                 {"PORT", "40123"},
                 {"HELO", "my pc=1+"},
                 {"LOGIN", std::string(300, 'l')},
                 {"DESTADDR", "198.51.100.1"}};
    return o;
  }

  void xclient_sends_offered_attributes_then_says_hello_again() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    fake_server srv{std::move(c_pair.second)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), xclient_options());
          CPPUNIT_ASSERT(cl->client_named());
          CPPUNIT_ASSERT(cl->server_capabilities().pipelining);  // from the second LHLO
          CPPUNIT_ASSERT(!cl->server_capabilities().has("XCLIENT"));
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "8BITMIME|XCLIENT ADDR port HELO LOGIN NAME");
          const auto x = co_await srv.line();
          // Only what is offered (DESTADDR is not), in the caller's order, xtext-encoded;
          // a value over 255 octets goes as [UNAVAILABLE].
          CPPUNIT_ASSERT_EQUAL(std::string("XCLIENT ADDR=192.0.2.7 PORT=40123 HELO=my+20pc+3D1+2B "
                                           "LOGIN=[UNAVAILABLE]\r\n"),
                               x);
          co_await srv.send("220 store.test LMTP ready\r\n");
          const auto again = co_await srv.line();
          CPPUNIT_ASSERT_EQUAL(std::string("LHLO proxy.test\r\n"), again);
          co_await srv.send("250-store.test\r\n250 PIPELINING\r\n");
        });
  }

  void xclient_not_offered_is_not_sent() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    fake_server srv{std::move(c_pair.second)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await start_client(std::move(c), xclient_options());
          CPPUNIT_ASSERT(!cl->client_named());
          CPPUNIT_ASSERT(co_await cl->noop());
        },
        [&]() -> awaitable<void> {
          // XCLIENTX is another keyword; XCLIENT listing none of ours sends nothing either.
          co_await srv.greet("LHLO", "XCLIENTX ADDR|XCLIENT DESTPORT");
          const auto next = co_await srv.line();
          CPPUNIT_ASSERT_EQUAL(std::string("NOOP\r\n"), next);
          co_await srv.send("250 ok\r\n");
        });
  }

  void xclient_refused_is_a_temporary_error() {
    asio::io_context io;
    auto c_pair = net::memory_stream::make_pair(io.get_executor());
    auto c = std::move(c_pair.first);
    fake_server srv{std::move(c_pair.second)};
    run(
        io,
        [&]() -> awaitable<void> {
          auto cl = co_await smtp_client::start(std::move(c), xclient_options());
          CPPUNIT_ASSERT(cl.has_value());
          auto caps = co_await (*cl)->hello("proxy.test");
          CPPUNIT_ASSERT(!caps);
          CPPUNIT_ASSERT(!caps.err().is_permanent());
          CPPUNIT_ASSERT(caps.err().code == errc::unavailable);
          CPPUNIT_ASSERT_MESSAGE(
              caps.err().describe(),
              caps.err().describe().find("XCLIENT refused") != std::string::npos);
          CPPUNIT_ASSERT(!(*cl)->usable());
        },
        [&]() -> awaitable<void> {
          co_await srv.greet("LHLO", "XCLIENT ADDR PORT");
          (void)co_await srv.line();
          co_await srv.send("550 5.7.0 Insufficient authorization\r\n");
        });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(smtp_client_test);

}  // namespace
}  // namespace hamail::relay

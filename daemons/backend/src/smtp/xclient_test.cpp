// XCLIENT on the store's LMTP listener: a trusted proxy names its client, which
// the Received header then shows; anyone else is refused and changes nothing.
// Sessions run over in-memory streams against a memory store, as in
// blocking_work_test.cpp; the "TCP peer" is set in the connection_info.

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/auth/password_checker.hpp"
#include "hamail/backend/smtp_service.hpp"
#include "hamail/directory/memory_directory.hpp"
#include "hamail/directory/password.hpp"
#include "hamail/store/memory_store.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using hamail::auth::password_checker;
using hamail::backend::smtp_context;
using hamail::net::memory_stream;
using hamail::smtpd::flavour;
namespace store = hamail::store;
namespace directory = hamail::directory;

namespace {

/// The client (proxy) end of one session.
class client {
 public:
  explicit client(std::unique_ptr<memory_stream> s) : s_(std::move(s)) {}

  asio::awaitable<void> send(std::string text) {
    auto r = co_await s_->async_write(asio::buffer(text));
    CPPUNIT_ASSERT(r.has_value());
  }
  /// The next whole reply, every line with its CRLF, or "<EOF>".
  asio::awaitable<std::string> reply() {
    std::string whole;
    for (;;) {
      auto end = buf_.find("\r\n");
      while (end != std::string::npos) {
        std::string line = buf_.substr(0, end + 2);
        buf_.erase(0, end + 2);
        whole += line;
        if (line.size() < 6 || line[3] != '-') co_return whole;
        end = buf_.find("\r\n");
      }
      char chunk[4096];
      auto r = co_await s_->async_read_some(asio::buffer(chunk));
      if (!r) co_return "<EOF>";
      buf_.append(chunk, *r);
    }
  }
  /// Sends `command` and returns its whole reply.
  asio::awaitable<std::string> command(std::string command) {
    co_await send(std::move(command));
    co_return co_await reply();
  }

 private:
  std::unique_ptr<memory_stream> s_;
  std::string buf_;
};

asio::awaitable<void> run_session(smtp_context* ctx, hamail::net::connection* conn) {
  const auto svc = hamail::backend::smtp_services(*ctx);
  co_await hamail::smtpd::run_session(svc, hamail::backend::smtp_handlers(*ctx), flavour::lmtp,
                                      *conn);
  conn->close();
}

/// A store whose [smtp] trusts 127.0.0.1 (the proxy) and no one else.
struct fixture {
  fixture()
      : throttle(directory::login_throttle::limits{.first_delay = 0ms, .max_account_delay = 0ms}),
        ctx{cfg, store, dir, blocking, throttle, passwords} {
    cfg.store.name = "store-a";
    cfg.store.hostname = "store.test";
    cfg.smtp_trusted_proxies = {"127.0.0.1"};
    directory::account alice;
    alice.id = "alice";
    alice.login = "alice@example.org";
    alice.primary_address = "alice@example.org";
    alice.owning_store = "store-a";
    alice.password_hash = *directory::hash_password(directory::password_scheme::ssha512, "secret");
    CPPUNIT_ASSERT(dir.put(alice).has_value());
  }
  ~fixture() {
    blocking.join();
    passwords.join();
  }

  /// Starts an LMTP session whose peer is `from`; the returned client talks to it.
  std::unique_ptr<client> connect(const std::string& from) {
    auto [near, far] = memory_stream::make_pair(io.get_executor());
    hamail::net::connection_info info;
    info.remote = asio::ip::tcp::endpoint(asio::ip::make_address(from), 40000);
    info.listener = "test";
    info.protocol = "lmtp";
    connections.push_back(
        std::make_unique<hamail::net::connection>(std::move(far), info, hamail::net::timeouts{}));
    asio::co_spawn(io, run_session(&ctx, connections.back().get()), asio::detached);
    return std::make_unique<client>(std::move(near));
  }

  /// Runs `body` on the loop; fails when it throws or does not end within 60 s.
  void run(std::function<asio::awaitable<void>()> body) {
    std::exception_ptr failure;
    bool done = false;
    asio::co_spawn(io, body(), [&](std::exception_ptr e) {
      failure = e;
      done = true;
      for (auto& c : connections) c->close();
    });
    io.run_for(60s);
    if (failure) std::rethrow_exception(failure);
    CPPUNIT_ASSERT_MESSAGE("test body did not finish", done);
  }

  /// The whole last message in alice's INBOX, "" when there is none.
  std::string last_message() {
    auto box = store.open_mailbox("alice", "INBOX");
    if (!box) return "";
    auto snap = (*box)->snapshot();
    if (!snap || snap->messages.empty()) return "";
    auto file = (*box)->read_message(snap->messages.back().uid);
    if (!file) return "";
    std::string out;
    char buf[4096];
    off_t off = 0;
    for (;;) {
      const ssize_t n = ::pread(file->fd.get(), buf, sizeof buf, off);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
      off += n;
    }
    return out;
  }

  asio::io_context io;
  asio::thread_pool blocking{2};
  hamail::backend::backend_config cfg;
  directory::memory_directory dir;
  store::memory_store store;
  password_checker passwords{password_checker::limits{}, password_checker::verify_fn{}};
  directory::login_throttle throttle;
  smtp_context ctx;
  std::vector<std::unique_ptr<hamail::net::connection>> connections;
};

std::string code(const std::string& reply) { return reply.substr(0, 3); }

/// One message to alice; returns the final (per-recipient) reply.
asio::awaitable<std::string> deliver(client& c) {
  CPPUNIT_ASSERT_EQUAL(std::string("250"),
                       code(co_await c.command("MAIL FROM:<x@remote.test>\r\n")));
  CPPUNIT_ASSERT_EQUAL(std::string("250"),
                       code(co_await c.command("RCPT TO:<alice@example.org>\r\n")));
  CPPUNIT_ASSERT_EQUAL(std::string("354"), code(co_await c.command("DATA\r\n")));
  co_return co_await c.command("Subject: hi\r\n\r\nhello\r\n.\r\n");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

class xclient_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(xclient_test);
  CPPUNIT_TEST(trusted_proxy_names_the_client_in_received);
  CPPUNIT_TEST(untrusted_peer_is_refused_and_nothing_changes);
  CPPUNIT_TEST(xclient_inside_a_transaction_is_a_bad_sequence);
  CPPUNIT_TEST(malformed_xclient_is_refused_and_nothing_changes);
  CPPUNIT_TEST(ipv6_client_address_in_postfix_form);
  CPPUNIT_TEST_SUITE_END();

 public:
  void trusted_proxy_names_the_client_in_received() {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
      auto c = f.connect("127.0.0.1");
      CPPUNIT_ASSERT_EQUAL(std::string("220"), code(co_await c->reply()));
      const auto caps = co_await c->command("LHLO proxy.test\r\n");
      CPPUNIT_ASSERT_MESSAGE(
          caps, contains(caps, "XCLIENT ADDR PORT HELO LOGIN NAME PROTO SESSION TTL\r\n"));
      const auto greeting = co_await c->command(
          "XCLIENT ADDR=192.0.2.7 PORT=40123 HELO=client+20pc.example PROTO=ESMTP "
          "LOGIN=alice SESSION=proxy-1\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(greeting, std::string("220 store.test LMTP"),
                                   greeting.substr(0, 19));
      // A new greeting: the proxy must say LHLO again before MAIL.
      CPPUNIT_ASSERT_EQUAL(std::string("503"),
                           code(co_await c->command("MAIL FROM:<x@remote.test>\r\n")));
      const auto again = co_await c->command("LHLO proxy.test\r\n");
      CPPUNIT_ASSERT_MESSAGE(again, contains(again, "[192.0.2.7]"));
      const auto done = co_await deliver(*c);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(done, std::string("250"), code(done));
      const auto msg = f.last_message();
      CPPUNIT_ASSERT_MESSAGE(msg, contains(msg, "Received: from client?pc.example ([192.0.2.7])"));
      CPPUNIT_ASSERT_MESSAGE(msg, contains(msg, "with ESMTPA"));
      CPPUNIT_ASSERT_MESSAGE(msg, !contains(msg, "127.0.0.1"));
    });
  }

  void untrusted_peer_is_refused_and_nothing_changes() {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
      auto c = f.connect("192.0.2.99");
      CPPUNIT_ASSERT_EQUAL(std::string("220"), code(co_await c->reply()));
      const auto caps = co_await c->command("LHLO sneaky.test\r\n");
      CPPUNIT_ASSERT_MESSAGE(caps, !contains(caps, "XCLIENT"));
      const auto refused = co_await c->command("XCLIENT ADDR=192.0.2.7 HELO=innocent\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(refused, std::string("550 5.7.0"), refused.substr(0, 9));
      // Still greeted (no new 220 needed), still the real peer.
      const auto done = co_await deliver(*c);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(done, std::string("250"), code(done));
      const auto msg = f.last_message();
      CPPUNIT_ASSERT_MESSAGE(msg, contains(msg, "Received: from sneaky.test ([192.0.2.99])"));
      CPPUNIT_ASSERT_MESSAGE(msg, !contains(msg, "192.0.2.7") && !contains(msg, "innocent"));
    });
  }

  void xclient_inside_a_transaction_is_a_bad_sequence() {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
      auto c = f.connect("127.0.0.1");
      co_await c->reply();
      co_await c->command("LHLO proxy.test\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("250"),
                           code(co_await c->command("MAIL FROM:<x@remote.test>\r\n")));
      const auto r = co_await c->command("XCLIENT ADDR=192.0.2.7\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r, std::string("503"), code(r));
      // The transaction goes on, from the proxy's address.
      CPPUNIT_ASSERT_EQUAL(std::string("250"),
                           code(co_await c->command("RCPT TO:<alice@example.org>\r\n")));
      CPPUNIT_ASSERT_EQUAL(std::string("354"), code(co_await c->command("DATA\r\n")));
      CPPUNIT_ASSERT_EQUAL(std::string("250"),
                           code(co_await c->command("Subject: hi\r\n\r\nhello\r\n.\r\n")));
      const auto msg = f.last_message();
      CPPUNIT_ASSERT_MESSAGE(msg, contains(msg, "Received: from proxy.test ([127.0.0.1])"));
    });
  }

  void malformed_xclient_is_refused_and_nothing_changes() {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
      auto c = f.connect("127.0.0.1");
      co_await c->reply();
      co_await c->command("LHLO proxy.test\r\n");
      for (const char* bad :
           {"XCLIENT\r\n", "XCLIENT ADDR\r\n", "XCLIENT ADDR=+ZZ\r\n",
            "XCLIENT ADDR=not.an.address HELO=x\r\n", "XCLIENT HELO=x ADDR=192.0.2.300\r\n",
            "XCLIENT PORT=65536\r\n", "XCLIENT PROTO=UUCP\r\n", "XCLIENT DESTADDR=192.0.2.1\r\n",
            "XCLIENT HELO=a+0Db ADDR=192.0.2.7\r\n"}) {
        const auto r = co_await c->command(bad);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(bad) + r, std::string("501"), code(r));
      }
      const auto done = co_await deliver(*c);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(done, std::string("250"), code(done));
      const auto msg = f.last_message();
      CPPUNIT_ASSERT_MESSAGE(msg, contains(msg, "Received: from proxy.test ([127.0.0.1])"));
    });
  }

  void ipv6_client_address_in_postfix_form() {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
      auto c = f.connect("127.0.0.1");
      co_await c->reply();
      co_await c->command("LHLO proxy.test\r\n");
      const auto r = co_await c->command("XCLIENT ADDR=IPV6:2001:DB8::7 PORT=1 HELO=v6.test\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r, std::string("220"), code(r));
      co_await c->command("LHLO proxy.test\r\n");
      const auto done = co_await deliver(*c);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(done, std::string("250"), code(done));
      const auto msg = f.last_message();
      CPPUNIT_ASSERT_MESSAGE(msg, contains(msg, "Received: from v6.test ([2001:db8::7])"));
      CPPUNIT_ASSERT_MESSAGE(msg, contains(msg, "with LMTP"));
    });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(xclient_test);

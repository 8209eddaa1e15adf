// The account gate at RCPT: an LMTP recipient of a locked account is deferred with
// 451 4.2.1, one of a moved account gets the "served by another store" answer, and a fence
// waits for a transaction with an accepted recipient until its DATA is committed.

#include "conversation_test_base.hpp"
#include "hamail/backend/smtp_service.hpp"

using namespace hamail::backend::conversation_test;
namespace backend = hamail::backend;

namespace {

/// One backend's shared state with its LMTP sessions.
struct fixture : backend_fixture {
  fixture() {
    ctx = std::make_unique<backend::smtp_context>(backend::smtp_context{
        cfg, *mail, accounts, blocking, throttle, passwords, nullptr, gate.get()});
  }
  ~fixture() { stop(); }

  /// Starts an LMTP session and returns its client, greeting read.
  client& connect() {
    backend::smtp_context* c = ctx.get();
    return start("lmtp", [c](hamail::net::connection& conn) -> asio::awaitable<void> {
      const auto svc = backend::smtp_services(*c);
      co_await hamail::smtpd::run_session(svc, backend::smtp_handlers(*c),
                                          hamail::smtpd::flavour::lmtp, conn);
    });
  }
  /// Sends `line` and returns the last line of its reply (without CRLF).
  static std::string cmd(client& c, std::string_view line) {
    c.send(std::string(line) + "\r\n");
    for (;;) {
      auto l = c.line();
      if (l.size() < 4 || l[3] != '-') return l;
    }
  }
  /// The messages in `account`'s INBOX.
  std::size_t inbox_size(std::string_view account) {
    auto box = mail->open_mailbox(account, "INBOX");
    if (!box) return 0;
    auto snap = (*box)->snapshot();
    return snap ? snap->messages.size() : 0;
  }

  std::unique_ptr<backend::smtp_context> ctx;
};

}  // namespace

class lmtp_fence_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(lmtp_fence_test);
  CPPUNIT_TEST(locked_recipient_is_deferred);
  CPPUNIT_TEST(moved_recipient_is_served_by_another_store);
  CPPUNIT_TEST(lock_waits_for_the_commit_of_an_accepted_recipient);
  CPPUNIT_TEST_SUITE_END();

 public:
  void locked_recipient_is_deferred() {
    fixture f;
    auto locked = f.spawn(f.gate->lock("alice", "store-b", std::chrono::seconds(60)));
    CPPUNIT_ASSERT(f.wait(locked).has_value());
    auto& c = f.connect();
    f.cmd(c, "LHLO proxy.test");
    CPPUNIT_ASSERT_EQUAL(std::string("250"), f.cmd(c, "MAIL FROM:<x@remote.test>").substr(0, 3));
    CPPUNIT_ASSERT_EQUAL(std::string("451 4.2.1 Mailbox is being moved, try again later"),
                         f.cmd(c, "RCPT TO:<alice@example.org>"));
    // bob is not fenced.
    CPPUNIT_ASSERT_EQUAL(std::string("250"), f.cmd(c, "RCPT TO:<bob@example.org>").substr(0, 3));
  }

  void moved_recipient_is_served_by_another_store() {
    fixture f;
    auto moved = f.spawn(f.gate->mark_moved("alice", "store-b"));
    CPPUNIT_ASSERT(f.wait(moved).has_value());
    auto& c = f.connect();
    f.cmd(c, "LHLO proxy.test");
    f.cmd(c, "MAIL FROM:<x@remote.test>");
    CPPUNIT_ASSERT_EQUAL(
        std::string("451 4.3.0 Mailbox is served by another store, try again later"),
        f.cmd(c, "RCPT TO:<alice@example.org>"));
  }

  void lock_waits_for_the_commit_of_an_accepted_recipient() {
    fixture f;
    auto& c = f.connect();
    f.cmd(c, "LHLO proxy.test");
    f.cmd(c, "MAIL FROM:<x@remote.test>");
    CPPUNIT_ASSERT_EQUAL(std::string("250"), f.cmd(c, "RCPT TO:<alice@example.org>").substr(0, 3));
    CPPUNIT_ASSERT_EQUAL(std::string("354"), f.cmd(c, "DATA").substr(0, 3));
    // The body is arriving (a read inside the command): the lock waits for the commit.
    auto locked = f.spawn(f.gate->lock("alice", "store-b", std::chrono::seconds(60)));
    c.settle();
    CPPUNIT_ASSERT(!locked->has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("250"),
                         f.cmd(c, "Subject: hi\r\n\r\nhello\r\n.").substr(0, 3));
    // Then the session, idle, is ended (421) and the lock completes with the message stored.
    const auto bye = c.line();
    CPPUNIT_ASSERT_MESSAGE(bye, bye.starts_with("421 "));
    CPPUNIT_ASSERT(f.wait(locked).has_value());
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.inbox_size("alice"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(lmtp_fence_test);

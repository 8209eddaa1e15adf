// Conversation tests of the IMAP session core: greeting, CAPABILITY, LOGIN,
// AUTHENTICATE, states, parse errors, SELECT/EXAMINE, CLOSE/UNSELECT, LOGOUT.

#include "hamail/core/base64.hpp"
#include "hamail/directory/password.hpp"
#include "imap/conversation_test_support.hpp"

using namespace hamail::backend::imap_test;

class imap_session_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(imap_session_test);
  CPPUNIT_TEST(greeting_and_capability);
  CPPUNIT_TEST(login_and_failures);
  CPPUNIT_TEST(authenticate_mechanisms);
  CPPUNIT_TEST(login_disabled_without_tls);
  CPPUNIT_TEST(id_and_enable);
  CPPUNIT_TEST(parse_errors);
  CPPUNIT_TEST(too_many_errors_before_login);
  CPPUNIT_TEST(locked_and_foreign_accounts);
  CPPUNIT_TEST(special_use_created_at_login);
  CPPUNIT_TEST(trusted_proxy_acts_as_user);
  CPPUNIT_TEST(fence_lock_ends_the_session_and_refuses_logins);
  CPPUNIT_TEST(fence_moved_answers_served_by_another_store);
  CPPUNIT_TEST(fence_lock_lets_a_command_finish_first);
  CPPUNIT_TEST_SUITE_END();

 public:
  void greeting_and_capability() {
    fixture f;
    auto& c = f.connect();
    CPPUNIT_ASSERT_MESSAGE(f.greeting, has(f.greeting, "* OK [CAPABILITY IMAP4rev1 IMAP4rev2"));
    auto r = c.command("a1 CAPABILITY");
    CPPUNIT_ASSERT_MESSAGE(r, has(r,
                                  "* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ID ENABLE "
                                  "AUTH=PLAIN AUTH=LOGIN\r\na1 OK Capability completed\r\n"));
    r = c.command("a2 NOOP");
    CPPUNIT_ASSERT_EQUAL(std::string("a2 OK NOOP completed\r\n"), r);
    r = c.command("a3 SELECT INBOX");
    CPPUNIT_ASSERT_EQUAL(std::string("a3 BAD Log in first\r\n"), r);
    r = c.command("a4 FROB");
    CPPUNIT_ASSERT_EQUAL(std::string("a4 BAD Unknown command\r\n"), r);
    r = c.command("a5 LOGOUT");
    CPPUNIT_ASSERT_EQUAL(std::string("* BYE Logging out\r\na5 OK LOGOUT completed\r\n"), r);
  }

  void login_and_failures() {
    fixture f;
    auto& c = f.connect();
    auto r = c.command("a1 LOGIN alice@example.org wrong");
    CPPUNIT_ASSERT_EQUAL(std::string("a1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"), r);
    r = c.command("a2 LOGIN alice@example.org secret");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a2 OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+"));
    r = c.command("a3 LOGIN alice@example.org secret");
    CPPUNIT_ASSERT_EQUAL(std::string("a3 BAD Command not allowed in this state\r\n"), r);
    r = c.command("a4 SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 0 EXISTS\r\n"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a4 OK [READ-WRITE] SELECT completed\r\n"));
  }

  void authenticate_mechanisms() {
    fixture f;
    auto& c = f.connect();
    const std::string plain = hamail::base64_encode(std::string("\0alice@example.org\0secret", 25));
    auto r = c.command("a1 AUTHENTICATE PLAIN " + plain);
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a1 OK [CAPABILITY IMAP4rev1"));
    auto& d = f.connect();
    d.send("b1 AUTHENTICATE PLAIN\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ "), d.line());
    d.send("*\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("b1 BAD Authentication cancelled\r\n"), d.until_tagged("b1"));
    d.send("b2 AUTHENTICATE LOGIN\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ VXNlcm5hbWU6"), d.line());
    d.send(hamail::base64_encode("bob@example.org") + "\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ UGFzc3dvcmQ6"), d.line());
    d.send(hamail::base64_encode("hunter2") + "\r\n");
    r = d.until_tagged("b2");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "b2 OK [CAPABILITY "));
    auto& e = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("e1 NO [CANNOT] Unsupported authentication mechanism\r\n"),
                         e.command("e1 AUTHENTICATE CRAM-MD5"));
    CPPUNIT_ASSERT_EQUAL(std::string("e2 BAD Invalid base64\r\n"),
                         e.command("e2 AUTHENTICATE PLAIN !!!"));
    // Acting as another user (an authorization identity) is refused.
    const std::string other =
        hamail::base64_encode(std::string("bob\0alice@example.org\0secret", 28));
    CPPUNIT_ASSERT_EQUAL(std::string("e3 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"),
                         e.command("e3 AUTHENTICATE PLAIN " + other));
  }

  void login_disabled_without_tls() {
    fixture f;
    f.cfg.imap.login_without_tls = false;
    auto& c = f.connect();
    CPPUNIT_ASSERT_MESSAGE(f.greeting, has(f.greeting, " LOGINDISABLED]"));
    CPPUNIT_ASSERT_MESSAGE(f.greeting, !has(f.greeting, "AUTH=PLAIN"));
    CPPUNIT_ASSERT_EQUAL(std::string("a1 NO [PRIVACYREQUIRED] Use STARTTLS first\r\n"),
                         c.command("a1 LOGIN alice@example.org secret"));
    CPPUNIT_ASSERT_EQUAL(std::string("a2 NO TLS is not available\r\n"), c.command("a2 STARTTLS"));
  }

  void id_and_enable() {
    fixture f;
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(
        std::string("* ID (\"name\" \"hamail\" \"vendor\" \"hamail\")\r\ni1 OK ID completed\r\n"),
        c.command("i1 ID (\"name\" \"imaplib\" \"version\" \"3.11\")"));
    CPPUNIT_ASSERT_EQUAL(std::string("i2 BAD ID list must hold up to 30 field-value pairs\r\n"),
                         c.command("i2 ID (\"name\")"));
    CPPUNIT_ASSERT_EQUAL(std::string("i3 BAD Log in first\r\n"), c.command("i3 ENABLE CONDSTORE"));
    c.command("l LOGIN alice@example.org secret");
    CPPUNIT_ASSERT_EQUAL(
        std::string("* ENABLED CONDSTORE UTF8=ACCEPT\r\ni4 OK ENABLE completed\r\n"),
        c.command("i4 ENABLE CONDSTORE X-UNKNOWN UTF8=ACCEPT"));
    CPPUNIT_ASSERT_EQUAL(std::string("* ENABLED\r\ni5 OK ENABLE completed\r\n"),
                         c.command("i5 ENABLE CONDSTORE"));
    // IMAP4rev2: no RECENT in SELECT, and a LIST response.
    c.command("i6 ENABLE IMAP4rev2");
    auto r = c.command("i7 SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "RECENT"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* LIST () \"/\" \"INBOX\"\r\n"));
  }

  void parse_errors() {
    fixture f;
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("p1 BAD Unterminated list\r\n"), c.command("p1 NOOP (("));
    c.send("\r\n");
    CPPUNIT_ASSERT_MESSAGE(c.line(), true);
    c.send("+bad NOOP\r\n");
    auto r = c.line();
    CPPUNIT_ASSERT_MESSAGE(r, r.starts_with("* BAD "));
    CPPUNIT_ASSERT_EQUAL(std::string("p2 OK NOOP completed\r\n"), c.command("p2 NOOP"));
    CPPUNIT_ASSERT_EQUAL(std::string("p3 BAD CAPABILITY takes no arguments\r\n"),
                         c.command("p3 CAPABILITY now"));
  }

  void too_many_errors_before_login() {
    fixture f;
    auto& c = f.connect();
    for (int i = 0; i < 4; ++i) c.command("x" + std::to_string(i) + " FROB");
    c.send("x9 FROB\r\n");
    auto r = c.until_tagged("x9");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "x9 BAD Unknown command\r\n"));
    r = c.line();
    CPPUNIT_ASSERT_EQUAL(std::string("* BYE Too many invalid commands"), r);
    c.run_until([&] { return c.closed(); });
  }

  void locked_and_foreign_accounts() {
    fixture f;
    hamail::directory::account a;
    a.id = "carol";
    a.login = "carol@example.org";
    a.owning_store = "store-a";
    a.state = hamail::directory::account_state::locked;
    a.password_hash =
        *hamail::directory::hash_password(hamail::directory::password_scheme::ssha512, "pw");
    CPPUNIT_ASSERT(f.accounts.put(a).has_value());
    a.id = "dave";
    a.login = "dave@example.org";
    a.state = hamail::directory::account_state::active;
    a.owning_store = "store-b";
    CPPUNIT_ASSERT(f.accounts.put(a).has_value());
    a.id = "erin";
    a.login = "erin@example.org";
    a.owning_store = "store-a";
    a.state = hamail::directory::account_state::moving;
    CPPUNIT_ASSERT(f.accounts.put(a).has_value());
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("a1 NO [CONTACTADMIN] Account is locked\r\n"),
                         c.command("a1 LOGIN carol@example.org pw"));
    CPPUNIT_ASSERT_EQUAL(std::string("a2 NO [UNAVAILABLE] Account is served by another store\r\n"),
                         c.command("a2 LOGIN dave@example.org pw"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("a3 NO [UNAVAILABLE] Account is being moved, try again later\r\n"),
        c.command("a3 LOGIN erin@example.org pw"));
    f.accounts.set_unavailable(true);
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "a4 NO [UNAVAILABLE] Authentication temporarily unavailable, try again later\r\n"),
        c.command("a4 LOGIN alice@example.org secret"));
  }

  void special_use_created_at_login() {
    fixture f;
    f.login();
    auto list = f.mail->list_mailboxes("alice");
    CPPUNIT_ASSERT(list.has_value());
    std::string names;
    for (const auto& e : *list) names += e.name + " ";
    CPPUNIT_ASSERT_EQUAL(std::string("INBOX Archive Drafts Junk Sent Trash "), names);
  }

  void trusted_proxy_acts_as_user() {
    fixture f;
    f.add_account("proxy", "proxy@internal", "proxy-pw");
    const std::string as_alice =
        hamail::base64_encode(std::string("alice@example.org\0proxy@internal\0proxy-pw", 41));
    {
      // Not configured as a proxy: refused.
      auto& c = f.connect();
      CPPUNIT_ASSERT_EQUAL(std::string("a1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"),
                           c.command("a1 AUTHENTICATE PLAIN " + as_alice));
    }
    f.cfg.imap.trusted_proxies = {"127.0.0.1"};
    f.cfg.imap.proxy_logins = {"proxy@internal"};
    auto& c = f.connect();
    auto r = c.command("a2 AUTHENTICATE PLAIN " + as_alice);
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a2 OK [CAPABILITY "));
    f.deliver("Subject: for alice\r\n\r\nhi\r\n");
    r = c.command("a3 STATUS INBOX (MESSAGES)");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "(MESSAGES 1)"));
    // A proxy may not act as an account that does not exist; alice may not act as bob.
    auto& d = f.connect();
    const std::string as_nobody =
        hamail::base64_encode(std::string("nobody@example.org\0proxy@internal\0proxy-pw", 42));
    CPPUNIT_ASSERT_EQUAL(std::string("a4 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"),
                         d.command("a4 AUTHENTICATE PLAIN " + as_nobody));
    const std::string alice_as_bob =
        hamail::base64_encode(std::string("bob@example.org\0alice@example.org\0secret", 40));
    CPPUNIT_ASSERT_EQUAL(std::string("a5 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"),
                         d.command("a5 AUTHENTICATE PLAIN " + alice_as_bob));
  }

  void fence_lock_ends_the_session_and_refuses_logins() {
    fixture f;
    auto& c = f.login();
    auto& b = f.login("bob@example.org", "hunter2");
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.gate->work_in_progress("alice"));
    auto locked = f.spawn(f.gate->lock("alice", "store-b", std::chrono::seconds(60)));
    // The idle session hears why it ends, then the lock completes.
    CPPUNIT_ASSERT_EQUAL(std::string("* BYE [UNAVAILABLE] Account is being moved, try again later"),
                         c.line());
    c.run_until([&] { return c.closed(); });
    auto r = f.wait(locked);
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), f.gate->work_in_progress("alice"));
    // New logins are refused with a temporary answer (the proxies retry on it).
    auto& d = f.connect();
    CPPUNIT_ASSERT_EQUAL(
        std::string("a1 NO [UNAVAILABLE] Account is being moved, try again later\r\n"),
        d.command("a1 LOGIN alice@example.org secret"));
    const std::string plain = hamail::base64_encode(std::string("\0alice@example.org\0secret", 25));
    CPPUNIT_ASSERT_EQUAL(
        std::string("a2 NO [UNAVAILABLE] Account is being moved, try again later\r\n"),
        d.command("a2 AUTHENTICATE PLAIN " + plain));
    // Another account's session goes on.
    CPPUNIT_ASSERT_EQUAL(std::string("n1 OK NOOP completed\r\n"), b.command("n1 NOOP"));
    // Unfenced (a rollback): alice logs in again.
    auto unlocked = f.spawn(f.gate->unlock("alice"));
    CPPUNIT_ASSERT(f.wait(unlocked).has_value());
    auto ok = d.command("a3 LOGIN alice@example.org secret");
    CPPUNIT_ASSERT_MESSAGE(ok, has(ok, "a3 OK "));
  }

  void fence_moved_answers_served_by_another_store() {
    fixture f;
    auto& c = f.login();
    auto moved = f.spawn(f.gate->mark_moved("alice", "store-b"));
    CPPUNIT_ASSERT_EQUAL(std::string("* BYE [UNAVAILABLE] Account is being moved, try again later"),
                         c.line());
    CPPUNIT_ASSERT(f.wait(moved).has_value());
    // Exactly the answer the proxies look the account up again on (imap_frontend.cpp).
    auto& d = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("a1 NO [UNAVAILABLE] Account is served by another store\r\n"),
                         d.command("a1 LOGIN alice@example.org secret"));
  }

  void fence_lock_lets_a_command_finish_first() {
    fixture f;
    auto& c = f.login();
    // An APPEND whose literal is still arriving is inside a command: the lock waits for it.
    c.send("a1 APPEND INBOX {23}\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ Ready for literal data"), c.line());
    auto locked = f.spawn(f.gate->lock("alice", "store-b", std::chrono::seconds(60)));
    c.settle();
    CPPUNIT_ASSERT(!locked->has_value());
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.gate->work_in_progress("alice"));
    c.send("Subject: one\r\n\r\nfirst\r\n\r\n");
    auto r = c.until_tagged("a1");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a1 OK "));
    CPPUNIT_ASSERT_EQUAL(std::string("* BYE [UNAVAILABLE] Account is being moved, try again later"),
                         c.line());
    CPPUNIT_ASSERT(f.wait(locked).has_value());
    // The message is in the store before the fence was written.
    auto box = f.mail->open_mailbox("alice", "INBOX");
    CPPUNIT_ASSERT(box.has_value());
    auto snap = (*box)->snapshot();
    CPPUNIT_ASSERT(snap.has_value() && snap->messages.size() == 1);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(imap_session_test);

// Conversation tests of the POP3 session: every command and its errors, the
// AUTHORIZATION, TRANSACTION and UPDATE states, the snapshot view, UIDLs,
// dot-stuffing on the wire, locks, login delays and trusted proxies.

#include <cstdio>

#include "conversation_test_base.hpp"
#include "hamail/core/base64.hpp"
#include "hamail/directory/password.hpp"
#include "pop3/session.hpp"

using namespace hamail::backend::conversation_test;
namespace backend = hamail::backend;
namespace store = hamail::store;

namespace {

/// One backend's shared state with its POP3 sessions.
struct fixture : backend_fixture {
  fixture() {
    cfg.pop3.login_without_tls = true;
    ctx = std::make_unique<backend::pop3_context>(backend::pop3_context{
        cfg, *mail, accounts, blocking, throttle, passwords, pop3_state, nullptr, gate.get()});
  }
  ~fixture() { stop(); }

  /// Starts a session from `remote` and returns its client, greeting read.
  client& connect(const std::string& remote = "127.0.0.1") {
    backend::pop3_context* c = ctx.get();
    return start(
        "pop3",
        [c](hamail::net::connection& conn) -> asio::awaitable<void> {
          backend::pop3_session_detail::session s(*c, conn);
          co_await s.run();
        },
        remote);
  }
  /// connect() and USER/PASS.
  client& login(std::string_view user = "alice@example.org", std::string_view pw = "secret") {
    auto& c = connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), cmd(c, "USER " + std::string(user)));
    auto r = cmd(c, "PASS " + std::string(pw));
    CPPUNIT_ASSERT_MESSAGE(r, r.starts_with("+OK Logged in"));
    return c;
  }
  /// The INBOX of `account` as the store has it now.
  store::mailbox_snapshot inbox(std::string_view account = "alice") {
    auto box = mail->open_mailbox(account, "INBOX");
    CPPUNIT_ASSERT(box.has_value());
    auto snap = (*box)->snapshot();
    CPPUNIT_ASSERT(snap.has_value());
    return *snap;
  }

  /// Sends `line` and returns the one-line answer (without CRLF).
  static std::string cmd(client& c, std::string_view line) {
    c.send(std::string(line) + "\r\n");
    return c.line();
  }
  /// Sends `line` and returns the whole answer: up to "." after a +OK, the
  /// line alone after -ERR.
  static std::string multi(client& c, std::string_view line) {
    c.send(std::string(line) + "\r\n");
    auto first = c.line();
    if (!first.starts_with("+OK")) return first + "\r\n";
    return first + "\r\n" + c.until_line(".");
  }

  backend::pop3_accounts pop3_state;
  std::unique_ptr<backend::pop3_context> ctx;
};

const std::string msg1 = "Subject: one\r\n\r\nfirst\r\n";
const std::string msg2 = "Subject: two\r\n\r\nsecond body\r\n";

}  // namespace

class pop3_session_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(pop3_session_test);
  CPPUNIT_TEST(greeting_capa_quit);
  CPPUNIT_TEST(user_pass_stat_list);
  CPPUNIT_TEST(failed_login_starts_over);
  CPPUNIT_TEST(plaintext_refused_without_tls);
  CPPUNIT_TEST(auth_plain_and_login);
  CPPUNIT_TEST(auth_errors);
  CPPUNIT_TEST(retr_sends_crlf_and_dot_stuffs);
  CPPUNIT_TEST(top_sends_header_and_lines);
  CPPUNIT_TEST(dele_rset_and_quit_update);
  CPPUNIT_TEST(dropped_connection_deletes_nothing);
  CPPUNIT_TEST(snapshot_ignores_new_deliveries);
  CPPUNIT_TEST(uidl_is_uid_and_uidvalidity);
  CPPUNIT_TEST(message_expunged_by_another_session);
  CPPUNIT_TEST(retrieved_messages_get_seen);
  CPPUNIT_TEST(lock_mailbox_answers_in_use);
  CPPUNIT_TEST(login_delay_enforced);
  CPPUNIT_TEST(wrong_state_and_bad_commands);
  CPPUNIT_TEST(too_many_errors_close);
  CPPUNIT_TEST(pipelined_commands_answered_in_order);
  CPPUNIT_TEST(xclient_only_from_trusted_proxies);
  CPPUNIT_TEST(trusted_proxy_acts_as_user);
  CPPUNIT_TEST(locked_and_foreign_accounts);
  CPPUNIT_TEST(large_message_streamed_exactly);
  CPPUNIT_TEST(fence_lock_ends_the_session_and_refuses_logins);
  CPPUNIT_TEST(fence_moved_answers_served_by_another_store);
  CPPUNIT_TEST_SUITE_END();

 public:
  void greeting_capa_quit() {
    fixture f;
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK mail.test hamail POP3 ready"), f.greeting);
    auto r = f.multi(c, "CAPA");
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n"
                                     "PIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                                     "SASL PLAIN LOGIN\r\nEXPIRE NEVER\r\nLOGIN-DELAY 0\r\n"
                                     "IMPLEMENTATION hamail\r\n.\r\n"),
                         r);
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Logging out"), f.cmd(c, "QUIT"));
    c.run_until([&] { return c.closed(); });
  }

  void user_pass_stat_list() {
    fixture f;
    f.deliver(msg1);
    f.deliver(msg2);
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Logged in, 2 messages (52 octets)"),
                         f.cmd(c, "PASS secret"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 52"), f.cmd(c, "STAT"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 messages (52 octets)\r\n1 23\r\n2 29\r\n.\r\n"),
                         f.multi(c, "LIST"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 29"), f.cmd(c, "LIST 2"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR No such message 3"), f.cmd(c, "LIST 3"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Invalid message number"), f.cmd(c, "LIST 0"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "NOOP"));
    auto capa = f.multi(c, "CAPA");
    CPPUNIT_ASSERT_MESSAGE(capa, !has(capa, "USER\r\n") && !has(capa, "SASL"));
    CPPUNIT_ASSERT_MESSAGE(capa, has(capa, "UIDL\r\n"));
  }

  void failed_login_starts_over() {
    fixture f;
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH] Authentication failed"), f.cmd(c, "PASS wrong"));
    // RFC 1939 §7: after a failed PASS the client starts again with USER.
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR No user name given, use USER first"),
                         f.cmd(c, "PASS secret"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER nobody@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH] Authentication failed"), f.cmd(c, "PASS x"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER alice@example.org"));
    // The password is the whole rest of the line.
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH] Authentication failed"),
                         f.cmd(c, "PASS secret "));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER alice@example.org"));
    CPPUNIT_ASSERT(f.cmd(c, "PASS secret").starts_with("+OK Logged in"));
  }

  void plaintext_refused_without_tls() {
    fixture f;
    f.cfg.pop3.login_without_tls = false;
    auto& c = f.connect();
    auto capa = f.multi(c, "CAPA");
    CPPUNIT_ASSERT_MESSAGE(capa, !has(capa, "USER\r\n") && !has(capa, "SASL"));
    CPPUNIT_ASSERT_MESSAGE(capa, !has(capa, "STLS"));  // this listener has no TLS
    const std::string refused =
        "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use STLS";
    CPPUNIT_ASSERT_EQUAL(refused, f.cmd(c, "USER alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(refused, f.cmd(c, "PASS secret"));
    CPPUNIT_ASSERT_EQUAL(refused, f.cmd(c, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA=="));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR TLS is not available"), f.cmd(c, "STLS"));
  }

  void auth_plain_and_login() {
    fixture f;
    f.deliver(msg1);
    {
      auto& c = f.connect();
      const auto ir = hamail::base64_encode(std::string("\0alice@example.org\0secret", 25));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK Logged in, 1 messages (23 octets)"),
                           f.cmd(c, "AUTH PLAIN " + ir));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK Logging out, 1 messages left"), f.cmd(c, "QUIT"));
    }
    {
      auto& c = f.connect();
      CPPUNIT_ASSERT_EQUAL(std::string("+ "), f.cmd(c, "AUTH plain"));
      const auto resp =
          hamail::base64_encode(std::string("alice@example.org\0alice@example.org\0secret", 42));
      CPPUNIT_ASSERT(f.cmd(c, resp).starts_with("+OK Logged in"));
    }
    {
      auto& c = f.connect();
      CPPUNIT_ASSERT_EQUAL(std::string("+ VXNlcm5hbWU6"), f.cmd(c, "AUTH LOGIN"));
      CPPUNIT_ASSERT_EQUAL(std::string("+ UGFzc3dvcmQ6"),
                           f.cmd(c, hamail::base64_encode("alice@example.org")));
      CPPUNIT_ASSERT(f.cmd(c, hamail::base64_encode("secret")).starts_with("+OK Logged in"));
    }
    {
      auto& c = f.connect();
      CPPUNIT_ASSERT_EQUAL(std::string("+ UGFzc3dvcmQ6"),
                           f.cmd(c, "AUTH LOGIN " + hamail::base64_encode("alice@example.org")));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH] Authentication failed"),
                           f.cmd(c, hamail::base64_encode("wrong")));
    }
  }

  void auth_errors() {
    fixture f;
    f.cfg.pop3.max_errors_before_login = 100;
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Methods supported\r\nPLAIN\r\nLOGIN\r\n.\r\n"),
                         f.multi(c, "AUTH"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Unsupported authentication mechanism"),
                         f.cmd(c, "AUTH CRAM-MD5"));
    CPPUNIT_ASSERT_EQUAL(std::string("+ "), f.cmd(c, "AUTH PLAIN"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Authentication cancelled"), f.cmd(c, "*"));
    CPPUNIT_ASSERT_EQUAL(std::string("+ "), f.cmd(c, "AUTH PLAIN"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Invalid base64 data in continued response"),
                         f.cmd(c, "not base64!"));
    CPPUNIT_ASSERT_EQUAL(std::string("+ "), f.cmd(c, "AUTH PLAIN"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Malformed PLAIN response"),
                         f.cmd(c, hamail::base64_encode("no nuls")));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Invalid base64 in initial response"),
                         f.cmd(c, "AUTH PLAIN abc"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR APOP not supported"),
                         f.cmd(c, "APOP alice c4c9334bac560ecc979e58001b3e22fb"));
    // After the failed exchanges the parser is back in command mode.
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER alice@example.org"));
  }

  void retr_sends_crlf_and_dot_stuffs() {
    fixture f;
    // Stored as IMAP APPEND may store it: bare LFs, lines starting with dots,
    // a lone dot, no final line end.
    const std::string raw = "Subject: dots\n\n.hidden\r\n.\n..two\nlast";
    f.deliver(raw);
    auto& c = f.login();
    const std::string body = "Subject: dots\r\n\r\n..hidden\r\n..\r\n...two\r\nlast\r\n.\r\n";
    // The sizes count what RETR sends: the CRLF form, before dot-stuffing.
    const auto wire = std::to_string(body.size() - 3 - 3);  // less ".\r\n" and 3 stuffed dots
    CPPUNIT_ASSERT_EQUAL("+OK 1 " + wire, f.cmd(c, "STAT"));
    CPPUNIT_ASSERT_EQUAL("+OK 1 " + wire, f.cmd(c, "LIST 1"));
    auto r = f.multi(c, "RETR 1");
    CPPUNIT_ASSERT_EQUAL("+OK " + wire + " octets\r\n" + body, r);
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR No such message 2"), f.cmd(c, "RETR 2"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Missing argument"), f.cmd(c, "RETR"));
  }

  void top_sends_header_and_lines() {
    fixture f;
    f.deliver("From: a@b\r\nSubject: t\r\n\r\nl1\r\n.l2\r\nl3\r\n");
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK\r\nFrom: a@b\r\nSubject: t\r\n\r\n.\r\n"),
                         f.multi(c, "TOP 1 0"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK\r\nFrom: a@b\r\nSubject: t\r\n\r\nl1\r\n..l2\r\n.\r\n"),
                         f.multi(c, "TOP 1 2"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("+OK\r\nFrom: a@b\r\nSubject: t\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"),
        f.multi(c, "TOP 1 99"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Invalid line count"), f.cmd(c, "TOP 1 x"));
    // TOP does not count as retrieving: no \Seen at QUIT.
    CPPUNIT_ASSERT(f.cmd(c, "QUIT").starts_with("+OK"));
    c.run_until([&] { return c.closed(); });
    CPPUNIT_ASSERT(!f.inbox().messages[0].flags.has(store::system_flag::seen));
  }

  void dele_rset_and_quit_update() {
    fixture f;
    f.deliver(msg1);
    f.deliver(msg2);
    f.deliver(msg1);
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Message 1 deleted"), f.cmd(c, "DELE 1"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Message 1 already deleted"), f.cmd(c, "DELE 1"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR No such message 4"), f.cmd(c, "DELE 4"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR No such message 1"), f.cmd(c, "RETR 1"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 52"), f.cmd(c, "STAT"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 messages (52 octets)\r\n2 29\r\n3 23\r\n.\r\n"),
                         f.multi(c, "LIST"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Maildrop has 3 messages (75 octets)"), f.cmd(c, "RSET"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 1 23"), f.cmd(c, "LIST 1"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Message 1 deleted"), f.cmd(c, "DELE 1"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Message 3 deleted"), f.cmd(c, "DELE 3"));
    // Nothing reaches the store before QUIT.
    CPPUNIT_ASSERT_EQUAL(std::size_t(3), f.inbox().messages.size());
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Logging out, 1 messages left"), f.cmd(c, "QUIT"));
    c.run_until([&] { return c.closed(); });
    const auto after = f.inbox();
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), after.messages.size());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(29), after.messages[0].size);
  }

  void dropped_connection_deletes_nothing() {
    fixture f;
    f.deliver(msg1);
    f.deliver(msg2);
    auto& c = f.login();
    CPPUNIT_ASSERT(f.cmd(c, "DELE 1").starts_with("+OK"));
    CPPUNIT_ASSERT(f.cmd(c, "DELE 2").starts_with("+OK"));
    CPPUNIT_ASSERT(f.multi(c, "RETR 2").starts_with("-ERR"));
    f.clients.clear();  // the client goes away without QUIT
    for (int i = 0; i < 100; ++i) f.io.run_one_for(2ms);
    CPPUNIT_ASSERT_EQUAL(std::size_t(2), f.inbox().messages.size());
    for (const auto& m : f.inbox().messages) CPPUNIT_ASSERT(!m.flags.has(store::system_flag::seen));
  }

  void snapshot_ignores_new_deliveries() {
    fixture f;
    f.deliver(msg1);
    auto& c = f.login();
    f.deliver(msg2);
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 1 23"), f.cmd(c, "STAT"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR No such message 2"), f.cmd(c, "RETR 2"));
    CPPUNIT_ASSERT(f.cmd(c, "DELE 1").starts_with("+OK"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Logging out, 0 messages left"), f.cmd(c, "QUIT"));
    auto& d = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 1 29"), f.cmd(d, "STAT"));
  }

  void uidl_is_uid_and_uidvalidity() {
    fixture f;
    const auto d1 = f.deliver(msg1);
    const auto d2 = f.deliver(msg2);
    char u1[17], u2[17];
    std::snprintf(u1, sizeof u1, "%08X%08X", d1.uid, d1.uid_validity);
    std::snprintf(u2, sizeof u2, "%08X%08X", d2.uid, d2.uid_validity);
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(
        std::string("+OK Unique-ID listing follows\r\n1 ") + u1 + "\r\n2 " + u2 + "\r\n.\r\n",
        f.multi(c, "UIDL"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 ") + u2, f.cmd(c, "UIDL 2"));
    CPPUNIT_ASSERT(f.cmd(c, "DELE 1").starts_with("+OK"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR No such message 1"), f.cmd(c, "UIDL 1"));
    CPPUNIT_ASSERT(f.cmd(c, "QUIT").starts_with("+OK"));
    // The remaining message keeps its UIDL in a later session, now as number 1.
    auto& d = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 1 ") + u2, f.cmd(d, "UIDL 1"));
    CPPUNIT_ASSERT(f.cmd(d, "QUIT").starts_with("+OK"));
    d.run_until([&] { return d.closed(); });
    // And after the index is rebuilt from the message files alone.
    auto rebuilt = f.mail->rebuild_index("alice");
    CPPUNIT_ASSERT(rebuilt.has_value());
    auto& e = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Unique-ID listing follows\r\n1 ") + u2 + "\r\n.\r\n",
                         f.multi(e, "UIDL"));
  }

  void message_expunged_by_another_session() {
    fixture f;
    const auto d1 = f.deliver(msg1);
    f.deliver(msg2);
    auto& c = f.login();
    // IMAP (or another POP3 session) expunges message 1 meanwhile.
    auto box = f.mail->open_mailbox("alice", "INBOX");
    const store::imap_uid gone[] = {d1.uid};
    CPPUNIT_ASSERT((*box)->expunge(gone).has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Message 1 was deleted by another session"),
                         f.cmd(c, "RETR 1"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 52"), f.cmd(c, "STAT"));  // the snapshot stands
    CPPUNIT_ASSERT(f.cmd(c, "DELE 1").starts_with("+OK"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Logging out, 1 messages left"), f.cmd(c, "QUIT"));
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.inbox().messages.size());
  }

  void retrieved_messages_get_seen() {
    fixture f;
    f.deliver(msg1);
    f.deliver(msg2);
    auto& c = f.login();
    CPPUNIT_ASSERT(f.multi(c, "RETR 2").starts_with("+OK 29 octets\r\nSubject: two"));
    CPPUNIT_ASSERT(f.cmd(c, "QUIT").starts_with("+OK"));
    c.run_until([&] { return c.closed(); });
    const auto after = f.inbox();
    CPPUNIT_ASSERT(!after.messages[0].flags.has(store::system_flag::seen));
    CPPUNIT_ASSERT(after.messages[1].flags.has(store::system_flag::seen));
  }

  void lock_mailbox_answers_in_use() {
    fixture f;
    f.cfg.pop3.lock_mailbox = true;
    auto& a = f.login();
    auto& b = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(b, "USER alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [IN-USE] Mailbox is locked by another POP3 session"),
                         f.cmd(b, "PASS secret"));
    auto& other = f.login("bob@example.org", "hunter2");  // other accounts are not affected
    CPPUNIT_ASSERT(f.cmd(other, "STAT").starts_with("+OK"));
    CPPUNIT_ASSERT(f.cmd(a, "QUIT").starts_with("+OK"));
    a.run_until([&] { return a.closed(); });
    f.login();  // the lock went with the session
  }

  void login_delay_enforced() {
    fixture f;
    f.cfg.pop3.login_delay = std::chrono::seconds(300);
    auto& a = f.login();
    CPPUNIT_ASSERT(has(f.multi(a, "CAPA"), "LOGIN-DELAY 300\r\n"));
    auto& b = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(b, "USER alice@example.org"));
    const auto r = f.cmd(b, "PASS secret");
    CPPUNIT_ASSERT_MESSAGE(r, r.starts_with("-ERR [LOGIN-DELAY] Logged in too recently, wait "));
  }

  void wrong_state_and_bad_commands() {
    fixture f;
    f.cfg.pop3.max_errors_before_login = 100;
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Command not valid before login"), f.cmd(c, "STAT"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Command not valid before login"), f.cmd(c, "RETR 1"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Unknown command"), f.cmd(c, "FROB"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Too many arguments"), f.cmd(c, "QUIT now"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Empty command line"), f.cmd(c, ""));
    c.send(std::string("NOOP\0\r\n", 7));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Control character in line"), c.line());
    c.send(std::string(300, 'A') + "\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Line too long"), c.line());
    auto& d = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Command not valid after login"),
                         f.cmd(d, "USER alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Command not valid after login"), f.cmd(d, "STLS"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Invalid message number"), f.cmd(d, "DELE -1"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 0 0"), f.cmd(d, "STAT"));
  }

  void too_many_errors_close() {
    fixture f;
    auto& c = f.connect();
    for (int i = 0; i < 4; ++i)
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR Unknown command"), f.cmd(c, "FROB"));
    c.send("FROB\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Unknown command"), c.line());
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Too many invalid commands, closing connection"),
                         c.line());
    c.run_until([&] { return c.closed(); });
  }

  void pipelined_commands_answered_in_order() {
    fixture f;
    f.deliver(msg1);
    auto& c = f.connect();
    c.send("USER alice@example.org\r\nPASS secret\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), c.line());
    CPPUNIT_ASSERT(c.line().starts_with("+OK Logged in"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 1 23"), c.line());
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 23 octets"), c.line());
    CPPUNIT_ASSERT_EQUAL(msg1 + ".\r\n", c.until_line("."));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Message 1 deleted"), c.line());
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Logging out, 0 messages left"), c.line());
    c.run_until([&] { return c.closed(); });
    CPPUNIT_ASSERT(f.inbox().messages.empty());
  }

  void xclient_only_from_trusted_proxies() {
    fixture f;
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR XCLIENT is only for trusted proxies"),
                         f.cmd(c, "XCLIENT ADDR=192.0.2.1 PORT=1234"));
    f.cfg.pop3.trusted_proxies = {"127.0.0.1"};
    auto& p = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"),
                         f.cmd(p, "XCLIENT ADDR=192.0.2.1 PORT=1234 SESSION=abc TTL=4"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Invalid XCLIENT ADDR"), f.cmd(p, "XCLIENT ADDR=x"));
  }

  void trusted_proxy_acts_as_user() {
    fixture f;
    f.deliver(msg1);
    f.add_account("proxy", "proxy@example.org", "proxypw");
    f.cfg.pop3.proxy_logins = {"proxy@example.org"};
    const auto ir =
        hamail::base64_encode(std::string("alice@example.org\0proxy@example.org\0proxypw", 43));
    {
      // Not from a trusted address: refused like a bad password.
      auto& c = f.connect();
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH] Not authorized to act as another user"),
                           f.cmd(c, "AUTH PLAIN " + ir));
    }
    f.cfg.pop3.trusted_proxies = {"127.0.0.1"};
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Logged in, 1 messages (23 octets)"),
                         f.cmd(c, "AUTH PLAIN " + ir));
    // bob may not act as alice even from the trusted address.
    auto& b = f.connect();
    const auto bob =
        hamail::base64_encode(std::string("alice@example.org\0bob@example.org\0hunter2", 41));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH] Not authorized to act as another user"),
                         f.cmd(b, "AUTH PLAIN " + bob));
  }

  void locked_and_foreign_accounts() {
    fixture f;
    hamail::directory::account locked;
    locked.id = "carol";
    locked.login = "carol@example.org";
    locked.owning_store = "store-a";
    locked.password_hash =
        *hamail::directory::hash_password(hamail::directory::password_scheme::ssha512, "pw");
    locked.state = hamail::directory::account_state::locked;
    CPPUNIT_ASSERT(f.accounts.put(locked).has_value());
    auto foreign = locked;
    foreign.id = "dave";
    foreign.login = "dave@example.org";
    foreign.owning_store = "store-b";
    foreign.state = hamail::directory::account_state::active;
    CPPUNIT_ASSERT(f.accounts.put(foreign).has_value());
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER carol@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/PERM] Account is locked"), f.cmd(c, "PASS pw"));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER dave@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/TEMP] Account is served by another store"),
                         f.cmd(c, "PASS pw"));
  }

  void large_message_streamed_exactly() {
    fixture f;
    std::string raw = "Subject: big\r\n\r\n";
    std::string wire = raw;
    for (int i = 0; raw.size() < 600 * 1024; ++i) {
      const std::string line = (i % 7 == 0 ? "." : "") + std::string(i % 97, 'x') + "\r\n";
      raw += line;
      wire += (line[0] == '.' ? "." : "") + line;
    }
    f.deliver(raw);
    auto& c = f.login();
    auto r = f.multi(c, "RETR 1");
    CPPUNIT_ASSERT_EQUAL(
        std::string("+OK ") + std::to_string(raw.size()) + " octets\r\n" + wire + ".\r\n", r);
  }

  void fence_lock_ends_the_session_and_refuses_logins() {
    fixture f;
    f.deliver(msg1);
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Message 1 deleted"), f.cmd(c, "DELE 1"));
    auto locked = f.spawn(f.gate->lock("alice", "store-b", std::chrono::seconds(60)));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/TEMP] Account is being moved, try again later"),
                         c.line());
    c.run_until([&] { return c.closed(); });
    auto r = f.wait(locked);
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
    // Ended without QUIT: nothing deleted (RFC 1939 §6).
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.inbox().messages.size());
    auto& d = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(d, "USER alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/TEMP] Account is being moved, try again later"),
                         f.cmd(d, "PASS secret"));
    // Another account logs in as usual.
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(d, "USER bob@example.org"));
    const auto bob = f.cmd(d, "PASS hunter2");
    CPPUNIT_ASSERT_MESSAGE(bob, bob.starts_with("+OK Logged in"));
  }

  void fence_moved_answers_served_by_another_store() {
    fixture f;
    auto moved = f.spawn(f.gate->mark_moved("alice", "store-b"));
    CPPUNIT_ASSERT(f.wait(moved).has_value());
    auto& c = f.connect();
    CPPUNIT_ASSERT_EQUAL(std::string("+OK"), f.cmd(c, "USER alice@example.org"));
    // Exactly the answer the proxies look the account up again on (pop3_frontend.cpp).
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/TEMP] Account is served by another store"),
                         f.cmd(c, "PASS secret"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(pop3_session_test);

// Conversation tests of the commands on messages: FETCH, STORE, SEARCH, SORT,
// THREAD, EXPUNGE, COPY, MOVE, APPEND, CLOSE/UNSELECT, IDLE, and how other
// sessions' changes are reported. Exact responses, error cases included.

#include "imap/conversation_test_support.hpp"

using namespace hamail::backend::imap_test;

namespace {

std::string msg(int n, std::string_view subject = "hello") {
  return "From: Sender " + std::to_string(n) + " <s" + std::to_string(n) +
         "@example.net>\r\nTo: alice@example.org\r\nSubject: " + std::string(subject) +
         "\r\nMessage-ID: <m" + std::to_string(n) + "@example.net>\r\nDate: Tue, 14 Nov 2023 " +
         "10:00:0" + std::to_string(n % 10) + " +0000\r\n\r\nbody number " + std::to_string(n) +
         "\r\n";
}

}  // namespace

class imap_messages_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(imap_messages_test);
  CPPUNIT_TEST(select_reports_state);
  CPPUNIT_TEST(fetch_items_and_seen);
  CPPUNIT_TEST(fetch_errors);
  CPPUNIT_TEST(store_variants);
  CPPUNIT_TEST(search_sort_thread);
  CPPUNIT_TEST(header_search_reads_no_message_file);
  CPPUNIT_TEST(expunge_and_uid_expunge);
  CPPUNIT_TEST(copy_move_and_trycreate);
  CPPUNIT_TEST(append_forms_and_errors);
  CPPUNIT_TEST(literal_handling);
  CPPUNIT_TEST(other_sessions_changes);
  CPPUNIT_TEST(idle_wakes_on_delivery);
  CPPUNIT_TEST(examine_is_read_only);
  CPPUNIT_TEST(close_expunges_unselect_does_not);
  CPPUNIT_TEST_SUITE_END();

 public:
  void select_reports_state() {
    fixture f;
    f.deliver(msg(1));
    store_flags_seen(f, msg(2));
    auto& c = f.login();
    auto r = c.command("s1 SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r,
                           has(r, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"));
    CPPUNIT_ASSERT_MESSAGE(
        r, has(r, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"));
    CPPUNIT_ASSERT_MESSAGE(r,
                           has(r, "* 2 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 1] First unseen\r\n"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* OK [UIDNEXT 3] Predicted next UID\r\n"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* OK [HIGHESTMODSEQ "));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "s1 OK [READ-WRITE] SELECT completed\r\n"));
    // A message delivered with flags lands in cur/ and is not \Recent; the other
    // one's \Recent went to this session: a second one sees none.
    auto& d = f.login();
    r = d.command("s2 SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 0 RECENT\r\n"));
    r = c.command("s3 SELECT Nonexistent");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "s3 NO [NONEXISTENT] Mailbox does not exist\r\n"));
    // A failed SELECT leaves the session unselected.
    r = c.command("s4 FETCH 1 FLAGS");
    CPPUNIT_ASSERT_EQUAL(std::string("s4 BAD Select a mailbox first\r\n"), r);
    r = c.command("s5 SELECT INBOX (FOO)");
    CPPUNIT_ASSERT_EQUAL(std::string("s5 BAD Unknown SELECT parameter\r\n"), r);
  }

  void fetch_items_and_seen() {
    fixture f;
    f.deliver(msg(1));
    f.deliver(msg(2));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    auto r = c.command("f1 FETCH 1 (UID RFC822.SIZE FLAGS)");
    CPPUNIT_ASSERT_EQUAL(
        std::string("* 1 FETCH (UID 1 RFC822.SIZE " + std::to_string(msg(1).size()) +
                    " FLAGS (\\Recent))\r\nf1 OK FETCH completed\r\n"),
        r);
    r = c.command("f2 FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
    CPPUNIT_ASSERT_EQUAL(
        std::string("* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: hello\r\n\r\n)\r\n"
                    "f2 OK FETCH completed\r\n"),
        r);
    // A non-PEEK body fetch sets \Seen and reports FLAGS.
    r = c.command("f3 FETCH 1 BODY[TEXT]");
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 FETCH (BODY[TEXT] {15}\r\nbody number 1\r\n FLAGS "
                                     "(\\Seen \\Recent))\r\nf3 OK FETCH completed\r\n"),
                         r);
    r = c.command("f4 UID FETCH 2 (FLAGS)");
    CPPUNIT_ASSERT_EQUAL(
        std::string("* 2 FETCH (UID 2 FLAGS (\\Recent))\r\nf4 OK FETCH completed\r\n"), r);
    r = c.command("f5 FETCH 1:* (FLAGS) (CHANGEDSINCE 2)");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ ("));
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "* 2 FETCH"));
    r = c.command("f6 FETCH 2 (ENVELOPE)");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "\"hello\" ((\"Sender 2\" NIL \"s2\" \"example.net\"))"));
    r = c.command("f7 UID FETCH 99 FLAGS");
    CPPUNIT_ASSERT_EQUAL(std::string("f7 OK FETCH completed\r\n"), r);
  }

  void fetch_errors() {
    fixture f;
    f.deliver(msg(1));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    CPPUNIT_ASSERT_EQUAL(std::string("e1 BAD Invalid message sequence number\r\n"),
                         c.command("e1 FETCH 5 FLAGS"));
    CPPUNIT_ASSERT_EQUAL(std::string("e2 BAD Invalid sequence set\r\n"),
                         c.command("e2 FETCH 1:x FLAGS"));
    auto r = c.command("e3 FETCH 1 (FLAGS BOGUS)");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "e3 BAD "));
    r = c.command("e4 FETCH 0 FLAGS");
    CPPUNIT_ASSERT_EQUAL(std::string("e4 BAD Invalid sequence set\r\n"), r);
    r = c.command("e5 STORE 1 +FLAGS (\\Recent)");
    CPPUNIT_ASSERT_EQUAL(std::string("e5 BAD Invalid flag list\r\n"), r);
    r = c.command("e6 UID FROB 1");
    CPPUNIT_ASSERT_EQUAL(std::string("e6 BAD Unknown command\r\n"), r);
    r = c.command("e7 UID CAPABILITY");
    CPPUNIT_ASSERT_EQUAL(std::string("e7 BAD Unknown UID command\r\n"), r);
  }

  void store_variants() {
    fixture f;
    f.deliver(msg(1));
    f.deliver(msg(2));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    CPPUNIT_ASSERT_EQUAL(
        std::string("* 1 FETCH (FLAGS (\\Flagged \\Recent $Work))\r\nt1 OK STORE completed\r\n"),
        c.command("t1 STORE 1 +FLAGS (\\Flagged $Work)"));
    CPPUNIT_ASSERT_EQUAL(std::string("t2 OK STORE completed\r\n"),
                         c.command("t2 STORE 1:2 +FLAGS.SILENT \\Seen"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("* 1 FETCH (FLAGS (\\Recent $Work) UID 1)\r\nt3 OK STORE completed\r\n"),
        c.command("t3 UID STORE 1 -FLAGS (\\Flagged \\Seen)"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("* 2 FETCH (FLAGS (\\Answered \\Recent))\r\nt4 OK STORE completed\r\n"),
        c.command("t4 STORE 2 FLAGS (\\Answered)"));
    // UNCHANGEDSINCE 1 fails for a message changed since (RFC 7162 MODIFIED).
    auto r = c.command("t5 STORE 1:2 (UNCHANGEDSINCE 1) +FLAGS (\\Draft)");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "t5 OK [MODIFIED 1:2] Conditional STORE failed"));
    CPPUNIT_ASSERT_EQUAL(std::string("t6 BAD Unknown STORE item\r\n"),
                         c.command("t6 STORE 1 +FLAGZ (\\Seen)"));
    CPPUNIT_ASSERT_EQUAL(std::string("t7 BAD Invalid keyword\r\n"),
                         c.command("t7 STORE 1 +FLAGS \\Bogus"));
  }

  void search_sort_thread() {
    fixture f;
    f.deliver(msg(1, "apple"));
    f.deliver(msg(2, "Re: apple"));
    f.deliver(msg(3, "banana"));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    c.command("x STORE 2 +FLAGS (\\Seen)");
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH 1 2\r\nq1 OK SEARCH completed\r\n"),
                         c.command("q1 SEARCH SUBJECT apple"));
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH 1 3\r\nq2 OK SEARCH completed\r\n"),
                         c.command("q2 SEARCH UNSEEN"));
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH 3\r\nq3 OK SEARCH completed\r\n"),
                         c.command("q3 UID SEARCH BODY \"number 3\""));
    CPPUNIT_ASSERT_EQUAL(
        std::string("* ESEARCH (TAG \"q4\") MIN 1 MAX 3 COUNT 3\r\nq4 OK SEARCH completed\r\n"),
        c.command("q4 SEARCH RETURN (MIN MAX COUNT) ALL"));
    CPPUNIT_ASSERT_EQUAL(std::string("q5 OK SEARCH completed\r\n"),
                         c.command("q5 SEARCH RETURN (SAVE) FROM s3"));
    CPPUNIT_ASSERT_EQUAL(std::string("* 3 FETCH (UID 3)\r\nq6 OK FETCH completed\r\n"),
                         c.command("q6 FETCH $ (UID)"));
    CPPUNIT_ASSERT_EQUAL(std::string("* SORT 3 1 2\r\nq7 OK SORT completed\r\n"),
                         c.command("q7 SORT (REVERSE SUBJECT) UTF-8 SUBJECT a"));
    CPPUNIT_ASSERT_EQUAL(std::string("* THREAD (1 2)(3)\r\nq8 OK THREAD completed\r\n"),
                         c.command("q8 THREAD ORDEREDSUBJECT UTF-8 ALL"));
    auto r = c.command("q9 SEARCH CHARSET KOI8-R ALL");
    CPPUNIT_ASSERT_EQUAL(std::string("q9 NO [BADCHARSET (US-ASCII UTF-8)] "), r.substr(0, 36));
    r = c.command("q10 SEARCH FROBNICATE");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "q10 BAD "));
  }

  // A search on header fields over cached structures matches the header text
  // kept with them: with every message file gone from the disk (behind the
  // store's back), SUBJECT still finds what it found before.
  void header_search_reads_no_message_file() {
    fixture f;
    f.deliver(msg(1, "apple"));
    f.deliver(msg(2, "Re: apple"));
    f.deliver(msg(3, "banana"));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH 1 2\r\nq1 OK SEARCH completed\r\n"),
                         c.command("q1 SEARCH SUBJECT apple"));
    int removed = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(f.dir.path)) {
      const auto parent = e.path().parent_path().filename();
      if (e.is_regular_file() && (parent == "cur" || parent == "new")) {
        std::filesystem::remove(e.path());
        ++removed;
      }
    }
    CPPUNIT_ASSERT_EQUAL(3, removed);
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH 1 2\r\nq2 OK SEARCH completed\r\n"),
                         c.command("q2 SEARCH SUBJECT apple"));
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH 3\r\nq3 OK SEARCH completed\r\n"),
                         c.command("q3 SEARCH OR SUBJECT banana HEADER X-None y"));
  }

  void expunge_and_uid_expunge() {
    fixture f;
    for (int i = 1; i <= 4; ++i) f.deliver(msg(i));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    c.command("x STORE 1,3,4 +FLAGS.SILENT (\\Deleted)");
    CPPUNIT_ASSERT_EQUAL(std::string("* 3 EXPUNGE\r\nu1 OK EXPUNGE completed\r\n"),
                         c.command("u1 UID EXPUNGE 3"));
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 EXPUNGE\r\n* 2 EXPUNGE\r\nu2 OK EXPUNGE completed\r\n"),
                         c.command("u2 EXPUNGE"));
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 FETCH (UID 2)\r\nu3 OK FETCH completed\r\n"),
                         c.command("u3 FETCH 1:* UID"));
  }

  void copy_move_and_trycreate() {
    fixture f;
    f.deliver(msg(1));
    f.deliver(msg(2));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    auto r = c.command("c1 COPY 1:2 Trash");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "c1 OK [COPYUID "));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, " 1:2 1:2] COPY completed\r\n"));
    CPPUNIT_ASSERT_EQUAL(std::string("c2 NO [TRYCREATE] Mailbox does not exist\r\n"),
                         c.command("c2 COPY 1 Nowhere"));
    r = c.command("c3 UID MOVE 2 Archive");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* OK [COPYUID "));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, " 2 1] Moved\r\n* 2 EXPUNGE\r\nc3 OK MOVE completed\r\n"));
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 FETCH (UID 1)\r\nc4 OK FETCH completed\r\n"),
                         c.command("c4 FETCH 1:* UID"));
  }

  void append_forms_and_errors() {
    fixture f;
    auto& c = f.login();
    c.send("a1 APPEND INBOX (\\Seen) \"14-Nov-2023 10:00:00 +0100\" {12}\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ Ready for literal data"), c.line());
    c.send("Subject: x\r\n\r\n");
    auto r = c.until_tagged("a1");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "a1 OK [APPENDUID "));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, " 1] APPEND completed\r\n"));
    // LITERAL+ and MULTIAPPEND: two messages in one command.
    r = c.command("a2 APPEND INBOX {3+}\r\nabc {3+}\r\ndef");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, " 2:3] APPEND completed\r\n"));
    r = c.command("a3 APPEND Nowhere {3+}\r\nabc");
    CPPUNIT_ASSERT_EQUAL(std::string("a3 NO [TRYCREATE] Mailbox does not exist\r\n"), r);
    r = c.command("a4 APPEND INBOX \"bad date\" {3+}\r\nabc");
    CPPUNIT_ASSERT_EQUAL(std::string("a4 BAD Invalid date-time\r\n"), r);
    // RFC 6855's UTF8 data item.
    r = c.command("a4b APPEND INBOX UTF8 (~{3+}\r\nxyz)");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, " 4] APPEND completed\r\n"));
    r = c.command("a5 SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 4 EXISTS\r\n"));
    r = c.command("a6 FETCH 1 (FLAGS INTERNALDATE)");
    CPPUNIT_ASSERT_EQUAL(
        std::string("* 1 FETCH (FLAGS (\\Seen) INTERNALDATE \"14-Nov-2023 09:00:00 "
                    "+0000\")\r\na6 OK FETCH completed\r\n"),
        r);
  }

  void literal_handling() {
    fixture f;
    f.cfg.imap.max_append_size = 2048;
    auto& c = f.login();
    // A synchronizing literal over the limit is refused before the client sends it.
    auto r = c.command("l1 APPEND INBOX {4096}");
    CPPUNIT_ASSERT_EQUAL(std::string("l1 NO [TOOBIG] "), r.substr(0, 15));
    // A non-synchronizing one cannot be refused in time: the connection ends.
    c.send("l2 APPEND INBOX {4096+}\r\n");
    r = c.until_tagged("*");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* BYE "));
    auto& d = f.login();
    r = d.command("l3 STATUS INBOX (MESSAGES)");
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "MESSAGES 1"));
  }

  void other_sessions_changes() {
    fixture f;
    f.deliver(msg(1));
    f.deliver(msg(2));
    auto& a = f.login();
    auto& b = f.login();
    a.command("s SELECT INBOX");
    b.command("s SELECT INBOX");
    b.command("x STORE 1 +FLAGS (\\Flagged)");
    f.deliver(msg(3));
    auto r = a.command("n1 NOOP");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 3 EXISTS\r\n* 3 RECENT\r\n"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1)\r\n"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "n1 OK NOOP completed\r\n"));
    b.command("x STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.command("x EXPUNGE");
    // No EXPUNGE during FETCH by sequence number (RFC 3501 §7.4.1) ...
    r = a.command("n2 FETCH 1 UID");
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "EXPUNGE"));
    // ... but after NOOP.
    r = a.command("n3 NOOP");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 2 EXPUNGE\r\n"));
    r = a.command("n4 FETCH 1:* UID");
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)\r\nn4 OK FETCH "
                                     "completed\r\n"),
                         r);
  }

  void idle_wakes_on_delivery() {
    fixture f;
    auto& c = f.login();
    c.command("s SELECT INBOX");
    c.send("i1 IDLE\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ idling"), c.line());
    f.deliver(msg(1));
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 EXISTS"), c.line());
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 RECENT"), c.line());
    c.send("DONE\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("i1 OK IDLE terminated\r\n"), c.until_tagged("i1"));
    c.send("i2 IDLE\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("+ idling"), c.line());
    c.send("NOTDONE\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("i2 BAD Expected DONE\r\n"), c.until_tagged("i2"));
  }

  void examine_is_read_only() {
    fixture f;
    f.deliver(msg(1));
    auto& c = f.login();
    auto r = c.command("e1 EXAMINE INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"));
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "e1 OK [READ-ONLY] EXAMINE completed\r\n"));
    CPPUNIT_ASSERT_EQUAL(std::string("e2 NO [READ-ONLY] Mailbox is read-only\r\n"),
                         c.command("e2 STORE 1 +FLAGS (\\Seen)"));
    CPPUNIT_ASSERT_EQUAL(std::string("e3 NO [READ-ONLY] Mailbox is read-only\r\n"),
                         c.command("e3 EXPUNGE"));
    // A body fetch does not set \Seen in a read-only mailbox.
    r = c.command("e4 FETCH 1 BODY[]");
    CPPUNIT_ASSERT_MESSAGE(r, !has(r, "\\Seen"));
  }

  void close_expunges_unselect_does_not() {
    fixture f;
    f.deliver(msg(1));
    f.deliver(msg(2));
    auto& c = f.login();
    c.command("s SELECT INBOX");
    c.command("x STORE 1 +FLAGS.SILENT (\\Deleted)");
    CPPUNIT_ASSERT_EQUAL(std::string("u1 OK UNSELECT completed\r\n"), c.command("u1 UNSELECT"));
    auto r = c.command("s SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 2 EXISTS"));
    CPPUNIT_ASSERT_EQUAL(std::string("u2 OK CLOSE completed\r\n"), c.command("u2 CLOSE"));
    r = c.command("s SELECT INBOX");
    CPPUNIT_ASSERT_MESSAGE(r, has(r, "* 1 EXISTS"));
  }

 private:
  static void store_flags_seen(fixture& f, const std::string& raw) {
    hamail::store::message_flags seen;
    seen.set(hamail::store::system_flag::seen);
    f.deliver(raw, "alice", "INBOX", seen);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(imap_messages_test);

// Conversation tests of the mailbox commands: CREATE, DELETE, RENAME,
// SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB (with LIST-EXTENDED, SPECIAL-USE and
// LIST-STATUS), STATUS, NAMESPACE and the QUOTA commands.

#include <fstream>
#include <sstream>

#include "hamail/store/maildir_store.hpp"
#include "imap/conversation_test_support.hpp"
#include "imap/subscriptions.hpp"

using namespace hamail::backend::imap_test;
using hamail::backend::imap_session_detail::subscriptions_file_name;

namespace {

const std::string message =
    "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nHello\r\n";

/// The fixture without the special-use mailboxes made at login, so lists stay short.
struct plain_fixture : fixture {
  plain_fixture() { cfg.imap.create_special_use = false; }
};

std::string str(const char* s) { return s; }

}  // namespace

class imap_mailboxes_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(imap_mailboxes_test);
  CPPUNIT_TEST(state_and_syntax);
  CPPUNIT_TEST(create);
  CPPUNIT_TEST(delete_mailbox);
  CPPUNIT_TEST(rename);
  CPPUNIT_TEST(rename_inbox);
  CPPUNIT_TEST(list_patterns);
  CPPUNIT_TEST(list_reference_and_delimiter);
  CPPUNIT_TEST(list_non_ascii);
  CPPUNIT_TEST(list_placeholder_parent);
  CPPUNIT_TEST(subscribe_and_lsub);
  CPPUNIT_TEST(list_extended_subscribed);
  CPPUNIT_TEST(list_extended_recursivematch);
  CPPUNIT_TEST(list_multiple_patterns);
  CPPUNIT_TEST(list_special_use);
  CPPUNIT_TEST(special_use_created_and_subscribed);
  CPPUNIT_TEST(list_status);
  CPPUNIT_TEST(status_items);
  CPPUNIT_TEST(status_errors);
  CPPUNIT_TEST(namespace_command);
  CPPUNIT_TEST(quota_scanned_usage);
  CPPUNIT_TEST(quota_recorded_usage);
  CPPUNIT_TEST(quota_unlimited);
  CPPUNIT_TEST_SUITE_END();

 public:
  void state_and_syntax() {
    plain_fixture f;
    auto& c = f.connect();
    // Four at a time: the fifth error before login ends the connection.
    auto* conn = &c;
    int n = 0;
    for (const char* cmd :
         {"CREATE Foo", "DELETE Foo", "RENAME Foo Bar", "SUBSCRIBE Foo", "UNSUBSCRIBE Foo",
          "LIST \"\" *", "LSUB \"\" *", "STATUS INBOX (MESSAGES)", "NAMESPACE",
          "GETQUOTAROOT INBOX", "GETQUOTA \"\"", "SETQUOTA \"\" ()"}) {
      if (n++ % 4 == 3) conn = &f.connect();
      CPPUNIT_ASSERT_EQUAL(str("x BAD Log in first\r\n"), conn->command(std::string("x ") + cmd));
    }
    auto& d = f.login();
    CPPUNIT_ASSERT_EQUAL(str("a1 BAD CREATE takes one mailbox name\r\n"), d.command("a1 CREATE"));
    CPPUNIT_ASSERT_EQUAL(str("a2 BAD CREATE takes one mailbox name\r\n"),
                         d.command("a2 CREATE Foo (USE (\\Drafts))"));
    CPPUNIT_ASSERT_EQUAL(str("a3 BAD Invalid mailbox name\r\n"), d.command("a3 CREATE (Foo)"));
    CPPUNIT_ASSERT_EQUAL(str("a4 BAD DELETE takes one mailbox name\r\n"), d.command("a4 DELETE"));
    CPPUNIT_ASSERT_EQUAL(str("a5 BAD RENAME takes two mailbox names\r\n"),
                         d.command("a5 RENAME Foo"));
    CPPUNIT_ASSERT_EQUAL(str("a6 BAD SUBSCRIBE takes one mailbox name\r\n"),
                         d.command("a6 SUBSCRIBE"));
    CPPUNIT_ASSERT_EQUAL(str("a7 BAD UNSUBSCRIBE takes one mailbox name\r\n"),
                         d.command("a7 UNSUBSCRIBE a b"));
    CPPUNIT_ASSERT_EQUAL(str("a8 BAD LIST takes a reference and a pattern\r\n"),
                         d.command("a8 LIST \"\""));
    CPPUNIT_ASSERT_EQUAL(str("a9 BAD Unknown LIST selection option\r\n"),
                         d.command("a9 LIST (FROB) \"\" *"));
    CPPUNIT_ASSERT_EQUAL(str("b1 BAD RECURSIVEMATCH needs another selection option\r\n"),
                         d.command("b1 LIST (RECURSIVEMATCH REMOTE) \"\" *"));
    CPPUNIT_ASSERT_EQUAL(str("b2 BAD Unknown LIST return option\r\n"),
                         d.command("b2 LIST \"\" * RETURN (MYRIGHTS)"));
    CPPUNIT_ASSERT_EQUAL(str("b3 BAD Unexpected arguments after the pattern\r\n"),
                         d.command("b3 LIST \"\" * FOO"));
    CPPUNIT_ASSERT_EQUAL(str("b4 BAD Invalid STATUS items\r\n"),
                         d.command("b4 LIST \"\" * RETURN (STATUS (FROB))"));
    CPPUNIT_ASSERT_EQUAL(str("b5 BAD LSUB takes a reference and a pattern\r\n"),
                         d.command("b5 LSUB (SUBSCRIBED) \"\" *"));
    CPPUNIT_ASSERT_EQUAL(str("b6 BAD LSUB takes a reference and a pattern\r\n"),
                         d.command("b6 LSUB \"\" * RETURN (CHILDREN)"));
    CPPUNIT_ASSERT_EQUAL(str("b7 BAD Empty pattern list\r\n"), d.command("b7 LIST \"\" ()"));
    CPPUNIT_ASSERT_EQUAL(str("b8 BAD NAMESPACE takes no arguments\r\n"),
                         d.command("b8 NAMESPACE x"));
  }

  void create() {
    plain_fixture f;
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(str("a1 OK CREATE completed\r\n"), c.command("a1 CREATE Foo"));
    CPPUNIT_ASSERT_EQUAL(str("a2 NO [ALREADYEXISTS] Mailbox already exists\r\n"),
                         c.command("a2 CREATE Foo"));
    CPPUNIT_ASSERT_EQUAL(str("a3 NO [ALREADYEXISTS] Mailbox already exists\r\n"),
                         c.command("a3 CREATE inbox"));
    CPPUNIT_ASSERT_EQUAL(str("a4 NO [ALREADYEXISTS] Mailbox already exists\r\n"),
                         c.command("a4 CREATE INBOX/"));
    // A trailing delimiter only declares that children will follow; missing
    // parents are made real mailboxes.
    CPPUNIT_ASSERT_EQUAL(str("a5 OK CREATE completed\r\n"), c.command("a5 CREATE Bar/Baz/"));
    CPPUNIT_ASSERT_EQUAL(
        str("a6 NO [CANNOT] Cannot create mailbox: empty level in mailbox name\r\n"),
        c.command("a6 CREATE \"a//b\""));
    CPPUNIT_ASSERT_EQUAL(
        str("a7 NO [CANNOT] Cannot create mailbox: wildcard character in mailbox name\r\n"),
        c.command("a7 CREATE \"a*b\""));
    CPPUNIT_ASSERT_EQUAL(str("a8 NO [CANNOT] Invalid modified UTF-7 in mailbox name\r\n"),
                         c.command("a8 CREATE \"&Jjo\""));
    CPPUNIT_ASSERT_EQUAL(str("a9 NO [CANNOT] Cannot create mailbox: empty mailbox name\r\n"),
                         c.command("a9 CREATE \"\""));
    CPPUNIT_ASSERT_EQUAL(str("b1 OK CREATE completed\r\n"), c.command("b1 CREATE INBOX/Sub"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"INBOX/Sub\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"Bar\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Bar/Baz\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Foo\"\r\n"
                             "b2 OK LIST completed\r\n"),
                         c.command("b2 LIST \"\" *"));
  }

  void delete_mailbox() {
    plain_fixture f;
    auto& c = f.login();
    c.command("a0 CREATE Foo/Bar");
    CPPUNIT_ASSERT_EQUAL(str("a1 NO [HASCHILDREN] Mailbox has children; delete them first\r\n"),
                         c.command("a1 DELETE Foo"));
    CPPUNIT_ASSERT_EQUAL(str("a2 NO [CANNOT] INBOX cannot be deleted\r\n"),
                         c.command("a2 DELETE inbox"));
    CPPUNIT_ASSERT_EQUAL(str("a3 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a3 DELETE Nope"));
    CPPUNIT_ASSERT_EQUAL(str("a4 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a4 DELETE \"a//b\""));
    f.deliver(message, "alice", "Foo/Bar");
    c.command("a5 SUBSCRIBE Foo/Bar");
    CPPUNIT_ASSERT_EQUAL(str("a5 OK DELETE completed\r\n"), c.command("a5 DELETE Foo/Bar"));
    // The name stays subscribed (RFC 9051 §6.3.5).
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"Foo/Bar\"\r\na5 OK LSUB completed\r\n"),
                         c.command("a5 LSUB \"\" *"));
    CPPUNIT_ASSERT_EQUAL(str("a6 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a6 DELETE Foo/Bar"));
    // The selected mailbox is refused; after CLOSE it goes.
    CPPUNIT_ASSERT_MESSAGE("select", has(c.command("a7 SELECT Foo"), "a7 OK"));
    CPPUNIT_ASSERT_EQUAL(str("a8 NO [INUSE] Mailbox is selected; close it first\r\n"),
                         c.command("a8 DELETE Foo"));
    CPPUNIT_ASSERT_EQUAL(str("a9 OK CLOSE completed\r\n"), c.command("a9 CLOSE"));
    CPPUNIT_ASSERT_EQUAL(str("b1 OK DELETE completed\r\n"), c.command("b1 DELETE Foo"));
    CPPUNIT_ASSERT_EQUAL(
        str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\nb2 OK LIST completed\r\n"),
        c.command("b2 LIST \"\" *"));
  }

  void rename() {
    plain_fixture f;
    auto& c = f.login();
    c.command("a0 CREATE Foo/Bar");
    c.command("a0 CREATE Other");
    c.command("a0 SUBSCRIBE Foo");
    c.command("a0 SUBSCRIBE Foo/Bar");
    c.command("a0 SUBSCRIBE Other");
    f.deliver(message, "alice", "Foo/Bar");
    CPPUNIT_ASSERT_EQUAL(str("a1 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a1 RENAME Nope New"));
    CPPUNIT_ASSERT_EQUAL(str("a2 NO [ALREADYEXISTS] Mailbox already exists\r\n"),
                         c.command("a2 RENAME Foo Other"));
    CPPUNIT_ASSERT_EQUAL(str("a3 NO [ALREADYEXISTS] Mailbox already exists\r\n"),
                         c.command("a3 RENAME Foo INBOX"));
    CPPUNIT_ASSERT_EQUAL(str("a4 NO [CANNOT] Cannot rename mailbox: cannot move a mailbox into "
                             "itself\r\n"),
                         c.command("a4 RENAME Foo Foo/In"));
    CPPUNIT_ASSERT_EQUAL(
        str("a5 NO [CANNOT] Cannot rename mailbox: empty level in mailbox name\r\n"),
        c.command("a5 RENAME Foo \"New/\""));
    // The selected mailbox may be renamed; the session keeps it selected.
    c.command("a6 SELECT Foo/Bar");
    CPPUNIT_ASSERT_EQUAL(str("a7 OK RENAME completed\r\n"), c.command("a7 RENAME Foo New/Top"));
    CPPUNIT_ASSERT_EQUAL(str("* 1 FETCH (UID 1)\r\na8 OK FETCH completed\r\n"),
                         c.command("a8 FETCH 1 UID"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"New\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"New/Top\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"New/Top/Bar\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Other\"\r\n"
                             "a9 OK LIST completed\r\n"),
                         c.command("a9 LIST \"\" *"));
    // Subscriptions followed the rename.
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"New/Top\"\r\n"
                             "* LSUB () \"/\" \"New/Top/Bar\"\r\n"
                             "* LSUB () \"/\" \"Other\"\r\n"
                             "b1 OK LSUB completed\r\n"),
                         c.command("b1 LSUB \"\" *"));
  }

  void rename_inbox() {
    plain_fixture f;
    auto& c = f.login();
    f.deliver(message);
    f.deliver(message);
    c.command("a0 SUBSCRIBE INBOX");
    CPPUNIT_ASSERT_EQUAL(str("a1 OK RENAME completed\r\n"), c.command("a1 RENAME INBOX Old"));
    CPPUNIT_ASSERT_EQUAL(str("* STATUS \"INBOX\" (MESSAGES 0)\r\na2 OK STATUS completed\r\n"),
                         c.command("a2 STATUS INBOX (MESSAGES)"));
    CPPUNIT_ASSERT_EQUAL(str("* STATUS \"Old\" (MESSAGES 2)\r\na3 OK STATUS completed\r\n"),
                         c.command("a3 STATUS Old (MESSAGES)"));
    // INBOX stays subscribed; the new mailbox is not.
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"INBOX\"\r\na4 OK LSUB completed\r\n"),
                         c.command("a4 LSUB \"\" *"));
  }

  void list_patterns() {
    plain_fixture f;
    auto& c = f.login();
    for (const char* n : {"Fruit/Apple", "Fruit/Banana", "Vegetable/Broccoli/Green", "Info"}) {
      c.command(std::string("a0 CREATE ") + n);
    }
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"Fruit\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Info\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"Vegetable\"\r\n"
                             "a1 OK LIST completed\r\n"),
                         c.command("a1 LIST \"\" %"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"Fruit/Apple\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Fruit/Banana\"\r\n"
                             "a2 OK LIST completed\r\n"),
                         c.command("a2 LIST \"\" Fruit/%"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"Fruit/Banana\"\r\n"
                             "a3 OK LIST completed\r\n"),
                         c.command("a3 LIST \"\" *an*"));
    // '%' stops at the delimiter, '*' does not.
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"Vegetable/Broccoli\"\r\n"
                             "a4 OK LIST completed\r\n"),
                         c.command("a4 LIST \"\" Veg%/%"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"Vegetable/Broccoli\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Vegetable/Broccoli/Green\"\r\n"
                             "a5 OK LIST completed\r\n"),
                         c.command("a5 LIST \"\" Veg*/*"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"Vegetable/Broccoli/Green\"\r\n"
                             "a6 OK LIST completed\r\n"),
                         c.command("a6 LIST \"\" %/%/%"));
    // INBOX matches in any case, other names only in theirs.
    CPPUNIT_ASSERT_EQUAL(
        str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\na7 OK LIST completed\r\n"),
        c.command("a7 LIST \"\" inbox"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Info\"\r\n"
                             "a8 OK LIST completed\r\n"),
                         c.command("a8 LIST \"\" In%"));
    CPPUNIT_ASSERT_EQUAL(str("a9 OK LIST completed\r\n"), c.command("a9 LIST \"\" fruit"));
    CPPUNIT_ASSERT_EQUAL(str("b1 OK LIST completed\r\n"), c.command("b1 LIST \"\" Nope"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"Fruit\"\r\nb2 OK LIST completed\r\n"),
                         c.command("b2 LIST \"\" {5+}\r\nFruit"));
  }

  void list_reference_and_delimiter() {
    plain_fixture f;
    auto& c = f.login();
    c.command("a0 CREATE Fruit/Apple");
    c.command("a0 CREATE Fruit/Apple/Red");
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\Noselect) \"/\" \"\"\r\na1 OK LIST completed\r\n"),
                         c.command("a1 LIST \"\" \"\""));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\Noselect) \"/\" \"\"\r\na2 OK LIST completed\r\n"),
                         c.command("a2 LIST Fruit/Apple \"\""));
    // The reference is prepended to the pattern.
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"Fruit/Apple\"\r\n"
                             "a3 OK LIST completed\r\n"),
                         c.command("a3 LIST Fruit/ %"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"Fruit\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"Fruit/Apple\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Fruit/Apple/Red\"\r\n"
                             "a4 OK LIST completed\r\n"),
                         c.command("a4 LIST Fruit *"));
    // LSUB has no delimiter query.
    CPPUNIT_ASSERT_EQUAL(str("a5 OK LSUB completed\r\n"), c.command("a5 LSUB \"\" \"\""));
  }

  void list_non_ascii() {
    plain_fixture f;
    auto& c = f.login();
    // 日本語/台北, RFC 3501 §5.1.3.
    CPPUNIT_ASSERT_EQUAL(str("a1 OK CREATE completed\r\n"),
                         c.command("a1 CREATE &ZeVnLIqe-/&U,BTFw-"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"&ZeVnLIqe-\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"&ZeVnLIqe-/&U,BTFw-\"\r\n"
                             "a2 OK LIST completed\r\n"),
                         c.command("a2 LIST \"\" &ZeVnLIqe-*"));
    CPPUNIT_ASSERT_EQUAL(str("* STATUS \"&ZeVnLIqe-/&U,BTFw-\" (MESSAGES 0)\r\n"
                             "a3 OK STATUS completed\r\n"),
                         c.command("a3 STATUS &ZeVnLIqe-/&U,BTFw- (MESSAGES)"));
    CPPUNIT_ASSERT_MESSAGE("enable", has(c.command("a4 ENABLE UTF8=ACCEPT"), "a4 OK"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"日本語/台北\"\r\n"
                             "a5 OK LIST completed\r\n"),
                         c.command("a5 LIST \"\" \"日本語/%\""));
  }

  void list_placeholder_parent() {
    plain_fixture f;
    auto& c = f.login();
    // A folder made on disk by hand, without its parent: the parent is listed
    // \Noselect, gets no STATUS and cannot be read.
    auto dir = hamail::store::maildir_store::mailbox_dir(f.dir.path, "alice", "Hand/Made");
    CPPUNIT_ASSERT(dir.has_value());
    for (const char* sub : {"cur", "new", "tmp"}) std::filesystem::create_directories(*dir / sub);
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                             "* STATUS \"INBOX\" (MESSAGES 0)\r\n"
                             "* LIST (\\Noselect \\HasChildren) \"/\" \"Hand\"\r\n"
                             "a1 OK LIST completed\r\n"),
                         c.command("a1 LIST \"\" % RETURN (STATUS (MESSAGES))"));
    CPPUNIT_ASSERT_EQUAL(str("a2 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a2 STATUS Hand (MESSAGES)"));
    // CREATE makes it a real mailbox.
    CPPUNIT_ASSERT_EQUAL(str("a3 OK CREATE completed\r\n"), c.command("a3 CREATE Hand"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasChildren) \"/\" \"Hand\"\r\na4 OK LIST completed\r\n"),
                         c.command("a4 LIST \"\" Hand"));
  }

  void subscribe_and_lsub() {
    plain_fixture f;
    auto& c = f.login();
    c.command("a0 CREATE Fruit/Banana");
    CPPUNIT_ASSERT_EQUAL(str("a1 OK SUBSCRIBE completed\r\n"),
                         c.command("a1 SUBSCRIBE Fruit/Banana"));
    CPPUNIT_ASSERT_EQUAL(str("a2 OK SUBSCRIBE completed\r\n"),
                         c.command("a2 SUBSCRIBE Fruit/Banana"));
    // A name that does not exist may be subscribed.
    CPPUNIT_ASSERT_EQUAL(str("a3 OK SUBSCRIBE completed\r\n"),
                         c.command("a3 SUBSCRIBE Fruit/Peach"));
    CPPUNIT_ASSERT_EQUAL(str("a4 OK SUBSCRIBE completed\r\n"), c.command("a4 SUBSCRIBE inbox"));
    CPPUNIT_ASSERT_EQUAL(
        str("a5 NO [CANNOT] Invalid mailbox name: wildcard character in mailbox name\r\n"),
        c.command("a5 SUBSCRIBE Fruit/*"));
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"INBOX\"\r\n"
                             "* LSUB () \"/\" \"Fruit/Banana\"\r\n"
                             "* LSUB () \"/\" \"Fruit/Peach\"\r\n"
                             "a6 OK LSUB completed\r\n"),
                         c.command("a6 LSUB \"\" *"));
    // '%' at the end also gives the unsubscribed parent, as \Noselect.
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"INBOX\"\r\n"
                             "* LSUB (\\Noselect) \"/\" \"Fruit\"\r\n"
                             "a7 OK LSUB completed\r\n"),
                         c.command("a7 LSUB \"\" %"));
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"Fruit/Banana\"\r\n"
                             "* LSUB () \"/\" \"Fruit/Peach\"\r\n"
                             "a8 OK LSUB completed\r\n"),
                         c.command("a8 LSUB Fruit/ %"));
    CPPUNIT_ASSERT_EQUAL(str("a9 OK UNSUBSCRIBE completed\r\n"),
                         c.command("a9 UNSUBSCRIBE Fruit/Peach"));
    // Unsubscribing a name that is not subscribed succeeds (RFC 9051 §6.3.8).
    CPPUNIT_ASSERT_EQUAL(str("b1 OK UNSUBSCRIBE completed\r\n"),
                         c.command("b1 UNSUBSCRIBE Fruit/Peach"));
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"INBOX\"\r\n"
                             "* LSUB () \"/\" \"Fruit/Banana\"\r\n"
                             "b2 OK LSUB completed\r\n"),
                         c.command("b2 LSUB \"\" *"));
    // The list is a file in the account directory, one name per line, and
    // another session sees it.
    auto dir = hamail::store::maildir_store::account_dir(f.dir.path, "alice");
    CPPUNIT_ASSERT(dir.has_value());
    std::ifstream in(*dir / std::string(subscriptions_file_name));
    std::stringstream text;
    text << in.rdbuf();
    CPPUNIT_ASSERT_EQUAL(str("Fruit/Banana\nINBOX\n"), text.str());
    auto& d = f.login();
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"Fruit/Banana\"\r\nb3 OK LSUB completed\r\n"),
                         d.command("b3 LSUB \"\" Fruit/*"));
  }

  void list_extended_subscribed() {
    // After RFC 5258 §5, examples 2 and 3.
    plain_fixture f;
    auto& c = f.login();
    for (const char* n :
         {"Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable/Broccoli", "Vegetable/Corn"}) {
      c.command(std::string("a0 CREATE ") + n);
    }
    for (const char* n :
         {"INBOX", "Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"}) {
      c.command(std::string("a0 SUBSCRIBE ") + n);
    }
    CPPUNIT_ASSERT_EQUAL(
        str("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"\r\n"
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Fruit/Banana\"\r\n"
            "* LIST (\\NonExistent \\Subscribed) \"/\" \"Fruit/Peach\"\r\n"
            "* LIST (\\HasChildren \\Subscribed) \"/\" \"Vegetable\"\r\n"
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Vegetable/Broccoli\"\r\n"
            "a1 OK LIST completed\r\n"),
        c.command("a1 LIST (SUBSCRIBED) \"\" *"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"Fruit\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Tofu\"\r\n"
                             "* LIST (\\HasChildren \\Subscribed) \"/\" \"Vegetable\"\r\n"
                             "a2 OK LIST completed\r\n"),
                         c.command("a2 LIST \"\" % RETURN (CHILDREN SUBSCRIBED)"));
    // Without RECURSIVEMATCH, an unsubscribed parent does not show.
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasChildren \\Subscribed) \"/\" \"Vegetable\"\r\n"
                             "a3 OK LIST completed\r\n"),
                         c.command("a3 LIST (SUBSCRIBED REMOTE) \"\" %"));
    CPPUNIT_ASSERT_EQUAL(str("a4 OK LIST completed\r\n"), c.command("a4 LIST () \"\" Nope"));
  }

  void list_extended_recursivematch() {
    // After RFC 5258 §5, examples 5 and 6.
    plain_fixture f;
    auto& c = f.login();
    for (const char* n : {"Foo/Bar", "Foo/Baz", "Moo", "Fruit/Banana", "Tofu"}) {
      c.command(std::string("a0 CREATE ") + n);
    }
    for (const char* n : {"Foo/Baz", "Moo", "Fruit", "Fruit/Peach", "Tofu/Apple"}) {
      c.command(std::string("a0 SUBSCRIBE ") + n);
    }
    CPPUNIT_ASSERT_EQUAL(
        str("* LIST (\\HasChildren) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
            "* LIST (\\HasChildren \\Subscribed) \"/\" \"Fruit\" (\"CHILDINFO\" "
            "(\"SUBSCRIBED\"))\r\n"
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Moo\"\r\n"
            "* LIST (\\HasNoChildren) \"/\" \"Tofu\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
            "a1 OK LIST completed\r\n"),
        c.command("a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN)"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Foo/Baz\"\r\n"
                             "* LIST (\\NonExistent \\Subscribed) \"/\" \"Fruit/Peach\"\r\n"
                             "* LIST (\\NonExistent \\Subscribed) \"/\" \"Tofu/Apple\"\r\n"
                             "a2 OK LIST completed\r\n"),
                         c.command("a2 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %/%"));
    // A name neither existing nor subscribed, with a subscribed child.
    c.command("a3 SUBSCRIBE Nut/Pecan");
    CPPUNIT_ASSERT_EQUAL(
        str("* LIST (\\NonExistent) \"/\" \"Nut\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
            "a4 OK LIST completed\r\n"),
        c.command("a4 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" N%"));
  }

  void list_multiple_patterns() {
    plain_fixture f;
    auto& c = f.login();
    for (const char* n : {"Drafts", "Sent/2024", "Sent/2025", "Trash"}) {
      c.command(std::string("a0 CREATE ") + n);
    }
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Sent/2024\"\r\n"
                             "* LIST (\\HasNoChildren) \"/\" \"Sent/2025\"\r\n"
                             "a1 OK LIST completed\r\n"),
                         c.command("a1 LIST \"\" (\"INBOX\" Drafts \"Sent/%\" Sent/2025 Nope)"));
  }

  void list_special_use() {
    // After RFC 6154 §5.1 and §5.2.
    plain_fixture f;
    auto& c = f.login();
    for (const char* n : {"Drafts", "Sent", "Junk", "Trash", "Archive", "Lists/Work"}) {
      c.command(std::string("a0 CREATE ") + n);
    }
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                             "* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"\r\n"
                             "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"\r\n"
                             "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"\r\n"
                             "* LIST (\\HasChildren) \"/\" \"Lists\"\r\n"
                             "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
                             "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"\r\n"
                             "a1 OK LIST completed\r\n"),
                         c.command("a1 LIST \"\" %"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"\r\n"
                             "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"\r\n"
                             "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"\r\n"
                             "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
                             "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"\r\n"
                             "a2 OK LIST completed\r\n"),
                         c.command("a2 LIST (SPECIAL-USE) \"\" *"));
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
                             "a3 OK LIST completed\r\n"),
                         c.command("a3 LIST \"\" Sent RETURN (SPECIAL-USE)"));
  }

  void special_use_created_and_subscribed() {
    fixture f;  // create_special_use on
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"INBOX\"\r\n"
                             "* LSUB () \"/\" \"Archive\"\r\n"
                             "* LSUB () \"/\" \"Drafts\"\r\n"
                             "* LSUB () \"/\" \"Junk\"\r\n"
                             "* LSUB () \"/\" \"Sent\"\r\n"
                             "* LSUB () \"/\" \"Trash\"\r\n"
                             "a1 OK LSUB completed\r\n"),
                         c.command("a1 LSUB \"\" *"));
    // A later login creates nothing, so a mailbox unsubscribed stays so.
    c.command("a2 UNSUBSCRIBE Junk");
    auto& d = f.login();
    CPPUNIT_ASSERT_EQUAL(str("* LSUB () \"/\" \"INBOX\"\r\n"
                             "* LSUB () \"/\" \"Archive\"\r\n"
                             "* LSUB () \"/\" \"Drafts\"\r\n"
                             "* LSUB () \"/\" \"Sent\"\r\n"
                             "* LSUB () \"/\" \"Trash\"\r\n"
                             "a3 OK LSUB completed\r\n"),
                         d.command("a3 LSUB \"\" *"));
    CPPUNIT_ASSERT_EQUAL(str("a4 OK LSUB completed\r\n"), d.command("a4 LSUB \"\" Junk"));
  }

  void list_status() {
    // After RFC 5819 §5.
    plain_fixture f;
    auto& c = f.login();
    c.command("a0 CREATE Foo/Bar");
    f.deliver(message);
    f.deliver(message, "alice", "INBOX",
              hamail::store::message_flags{}.set(hamail::store::system_flag::seen));
    f.deliver(message, "alice", "Foo");
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                             "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1)\r\n"
                             "* LIST (\\HasChildren) \"/\" \"Foo\"\r\n"
                             "* STATUS \"Foo\" (MESSAGES 1 UNSEEN 1)\r\n"
                             "a1 OK LIST completed\r\n"),
                         c.command("a1 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))"));
    // No STATUS for a name that does not exist.
    c.command("a2 SUBSCRIBE Gone");
    CPPUNIT_ASSERT_EQUAL(str("* LIST (\\NonExistent \\Subscribed) \"/\" \"Gone\"\r\n"
                             "a3 OK LIST completed\r\n"),
                         c.command("a3 LIST (SUBSCRIBED) \"\" G* RETURN (STATUS (MESSAGES))"));
  }

  void status_items() {
    plain_fixture f;
    f.cfg.imap.max_append_size = 12345;
    auto& c = f.login();
    f.deliver(message);
    f.deliver(message, "alice", "INBOX",
              hamail::store::message_flags{}.set(hamail::store::system_flag::seen));
    f.deliver(message, "alice", "INBOX",
              hamail::store::message_flags{}
                  .set(hamail::store::system_flag::deleted)
                  .set(hamail::store::system_flag::seen));
    auto st = f.mail->status("alice", "INBOX");
    CPPUNIT_ASSERT(st.has_value());
    const auto size = std::to_string(3 * message.size());
    CPPUNIT_ASSERT_EQUAL(
        "* STATUS \"INBOX\" (MESSAGES 3 RECENT 1 UIDNEXT 4 UIDVALIDITY " +
            std::to_string(st->uid_validity) + " UNSEEN 1 HIGHESTMODSEQ " +
            std::to_string(st->highest_modseq) + " SIZE " + size +
            " DELETED 1 DELETED-STORAGE 1 APPENDLIMIT 12345)\r\na1 OK STATUS completed\r\n",
        c.command("a1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE "
                  "DELETED DELETED-STORAGE APPENDLIMIT)"));
    CPPUNIT_ASSERT_EQUAL(
        str("* STATUS \"INBOX\" (UNSEEN 1 MESSAGES 3)\r\na2 OK STATUS completed\r\n"),
        c.command("a2 status inbox (unseen messages UNSEEN)"));
    c.command("a3 CREATE Empty");
    CPPUNIT_ASSERT_EQUAL(
        str("* STATUS \"Empty\" (MESSAGES 0 UIDNEXT 1 HIGHESTMODSEQ 1 DELETED 0)\r\n"
            "a4 OK STATUS completed\r\n"),
        c.command("a4 STATUS Empty (MESSAGES UIDNEXT HIGHESTMODSEQ DELETED)"));
  }

  void status_errors() {
    plain_fixture f;
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(str("a1 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a1 STATUS Nope (MESSAGES)"));
    CPPUNIT_ASSERT_EQUAL(str("a2 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a2 STATUS \"a//b\" (MESSAGES)"));
    CPPUNIT_ASSERT_EQUAL(str("a3 BAD Invalid STATUS items\r\n"),
                         c.command("a3 STATUS INBOX (MESSAGES FROB)"));
    CPPUNIT_ASSERT_EQUAL(str("a4 BAD Invalid STATUS items\r\n"), c.command("a4 STATUS INBOX ()"));
    CPPUNIT_ASSERT_EQUAL(str("a5 BAD STATUS takes a mailbox name and a list of items\r\n"),
                         c.command("a5 STATUS INBOX"));
    CPPUNIT_ASSERT_EQUAL(str("a6 BAD Invalid STATUS items\r\n"),
                         c.command("a6 STATUS INBOX MESSAGES"));
    // CREATE made the parent a real mailbox, which stays.
    c.command("a7 CREATE Foo/Bar");
    c.command("a8 DELETE Foo/Bar");
    CPPUNIT_ASSERT_EQUAL(str("* STATUS \"Foo\" (MESSAGES 0)\r\na9 OK STATUS completed\r\n"),
                         c.command("a9 STATUS Foo (MESSAGES)"));
  }

  void namespace_command() {
    plain_fixture f;
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(str("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\na1 OK NAMESPACE completed\r\n"),
                         c.command("a1 NAMESPACE"));
  }

  void quota_scanned_usage() {
    plain_fixture f;
    f.cfg.quota.default_bytes = 100 * 1024;
    f.cfg.quota.default_messages = 50;
    auto& c = f.login();
    c.command("a0 CREATE Foo");
    // Deliveries without limits: the store keeps no usage record, so the
    // answer sums the mailboxes.
    f.deliver(message);
    f.deliver(message);
    f.deliver(message, "alice", "Foo");
    CPPUNIT_ASSERT_EQUAL(str("* QUOTAROOT \"INBOX\" \"\"\r\n"
                             "* QUOTA \"\" (STORAGE 1 100 MESSAGE 3 50)\r\n"
                             "a1 OK GETQUOTAROOT completed\r\n"),
                         c.command("a1 GETQUOTAROOT INBOX"));
    CPPUNIT_ASSERT_EQUAL(str("* QUOTA \"\" (STORAGE 1 100 MESSAGE 3 50)\r\n"
                             "a2 OK GETQUOTA completed\r\n"),
                         c.command("a2 GETQUOTA \"\""));
    CPPUNIT_ASSERT_EQUAL(str("a3 NO [NONEXISTENT] No such quota root\r\n"),
                         c.command("a3 GETQUOTA \"INBOX\""));
    CPPUNIT_ASSERT_EQUAL(str("a4 NO [NONEXISTENT] Mailbox does not exist\r\n"),
                         c.command("a4 GETQUOTAROOT Nope"));
    CPPUNIT_ASSERT_EQUAL(str("a5 NO [NOPERM] Quotas are set in the account directory\r\n"),
                         c.command("a5 SETQUOTA \"\" (STORAGE 512)"));
    CPPUNIT_ASSERT_EQUAL(str("a6 BAD SETQUOTA takes a quota root and a list of limits\r\n"),
                         c.command("a6 SETQUOTA \"\""));
    CPPUNIT_ASSERT_EQUAL(str("a7 BAD GETQUOTA takes a quota root\r\n"), c.command("a7 GETQUOTA"));
    CPPUNIT_ASSERT_EQUAL(str("a8 BAD GETQUOTAROOT takes a mailbox name\r\n"),
                         c.command("a8 GETQUOTAROOT (INBOX)"));
  }

  void quota_recorded_usage() {
    plain_fixture f;
    f.cfg.quota.default_messages = 10;
    auto& c = f.login();
    // Deliveries under a limit keep the store's usage record, which is read as is.
    std::string big(3000, 'x');
    for (int i = 0; i < 2; ++i) {
      auto in = f.mail->begin_delivery();
      CPPUNIT_ASSERT(in.has_value());
      CPPUNIT_ASSERT(in->write(message + big).has_value());
      auto sealed = in->finish();
      CPPUNIT_ASSERT(sealed.has_value());
      hamail::store::delivery_target t;
      t.account = "alice";
      t.quota = hamail::store::quota_limits{1 << 20, 10};
      auto r = f.mail->deliver(*sealed, std::span(&t, 1));
      CPPUNIT_ASSERT(r[0].has_value());
    }
    auto used = f.mail->quota_usage("alice");
    CPPUNIT_ASSERT(used.has_value() && used->has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), (*used)->messages);
    CPPUNIT_ASSERT_EQUAL(str("* QUOTA \"\" (MESSAGE 2 10)\r\na1 OK GETQUOTA completed\r\n"),
                         c.command("a1 GETQUOTA \"\""));
    f.cfg.quota.default_bytes = 10 * 1024;
    auto& d = f.login();
    CPPUNIT_ASSERT_EQUAL(str("* QUOTA \"\" (STORAGE 6 10 MESSAGE 2 10)\r\n"
                             "a2 OK GETQUOTA completed\r\n"),
                         d.command("a2 GETQUOTA \"\""));
  }

  void quota_unlimited() {
    plain_fixture f;
    auto& c = f.login();
    CPPUNIT_ASSERT_EQUAL(str("* QUOTAROOT \"INBOX\"\r\na1 OK GETQUOTAROOT completed\r\n"),
                         c.command("a1 GETQUOTAROOT INBOX"));
    CPPUNIT_ASSERT_EQUAL(str("a2 NO [NONEXISTENT] No such quota root\r\n"),
                         c.command("a2 GETQUOTA \"\""));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(imap_mailboxes_test);

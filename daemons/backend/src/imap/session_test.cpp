// Conversation tests of the IMAP session core: greeting, CAPABILITY, LOGIN,
// AUTHENTICATE, states, parse errors, SELECT/EXAMINE, CLOSE/UNSELECT, LOGOUT.

#include "hamail/core/base64.hpp"
#include "imap/conversation_test_support.hpp"

using namespace hamail::backend::imap_test;

class imap_session_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(imap_session_test);
  CPPUNIT_TEST(greeting_and_capability);
  CPPUNIT_TEST(login_and_failures);
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
};

CPPUNIT_TEST_SUITE_REGISTRATION(imap_session_test);

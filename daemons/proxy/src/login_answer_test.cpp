// How the proxy takes a backend's answer to its login: an account being moved is retried
// (the client waits in the proxy), "served by another store" is looked up again, the user's
// own conditions are passed on, and refusals of the proxy's own login are the operator's.

#include "login_answer.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>

using hamail::proxy::classify_imap_login;
using hamail::proxy::classify_pop3_login;
using hamail::proxy::login_answer;

namespace CppUnit {
template <>
struct assertion_traits<login_answer> {
  static bool equal(login_answer a, login_answer b) { return a == b; }
  static std::string toString(login_answer a) { return std::to_string(static_cast<int>(a)); }
};
}  // namespace CppUnit

class login_answer_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(login_answer_test);
  CPPUNIT_TEST(imap_being_moved_is_retried_not_passed_on);
  CPPUNIT_TEST(pop3_being_moved_is_retried_not_passed_on);
  CPPUNIT_TEST(moved_fence_answer_is_looked_up_again);
  CPPUNIT_TEST(imap_other_answers_keep_their_meaning);
  CPPUNIT_TEST(pop3_other_answers_keep_their_meaning);
  CPPUNIT_TEST_SUITE_END();

 public:
  void imap_being_moved_is_retried_not_passed_on() {
    // The backend's locked-fence answer (cmd_login.cpp) and the directory's "moving" state.
    CPPUNIT_ASSERT_EQUAL(login_answer::being_moved,
                         classify_imap_login("NO [UNAVAILABLE] Account is being moved, try again "
                                             "later"));
    // Only as a temporary answer: the same words in a permanent refusal are not a move.
    CPPUNIT_ASSERT_EQUAL(login_answer::refused,
                         classify_imap_login("NO [CONTACTADMIN] Account is being moved"));
  }

  void pop3_being_moved_is_retried_not_passed_on() {
    CPPUNIT_ASSERT_EQUAL(login_answer::being_moved,
                         classify_pop3_login("-ERR [SYS/TEMP] Account is being moved, try again "
                                             "later"));
  }

  void moved_fence_answer_is_looked_up_again() {
    CPPUNIT_ASSERT_EQUAL(login_answer::wrong_store,
                         classify_imap_login("NO [UNAVAILABLE] Account is served by another "
                                             "store"));
    CPPUNIT_ASSERT_EQUAL(login_answer::wrong_store,
                         classify_pop3_login("-ERR [SYS/TEMP] Account is served by another store"));
  }

  void imap_other_answers_keep_their_meaning() {
    CPPUNIT_ASSERT_EQUAL(login_answer::ok,
                         classify_imap_login("OK [CAPABILITY IMAP4rev1] Logged in"));
    CPPUNIT_ASSERT_EQUAL(login_answer::temporary,
                         classify_imap_login("NO [UNAVAILABLE] Mailbox unavailable"));
    CPPUNIT_ASSERT_EQUAL(login_answer::proxy_refused,
                         classify_imap_login("NO [AUTHENTICATIONFAILED] Authentication failed"));
    CPPUNIT_ASSERT_EQUAL(login_answer::proxy_refused,
                         classify_imap_login("NO [AUTHORIZATIONFAILED] Not authorized"));
    CPPUNIT_ASSERT_EQUAL(login_answer::proxy_refused, classify_imap_login("BAD Invalid command"));
    CPPUNIT_ASSERT_EQUAL(login_answer::refused,
                         classify_imap_login("NO [CONTACTADMIN] Account is locked"));
  }

  void pop3_other_answers_keep_their_meaning() {
    CPPUNIT_ASSERT_EQUAL(login_answer::ok, classify_pop3_login("+OK Logged in, 1 messages"));
    CPPUNIT_ASSERT_EQUAL(login_answer::refused,
                         classify_pop3_login("-ERR [IN-USE] Mailbox is locked"));
    CPPUNIT_ASSERT_EQUAL(login_answer::refused,
                         classify_pop3_login("-ERR [LOGIN-DELAY] Logged in too recently"));
    CPPUNIT_ASSERT_EQUAL(login_answer::temporary,
                         classify_pop3_login("-ERR [SYS/TEMP] Mailbox unavailable"));
    CPPUNIT_ASSERT_EQUAL(login_answer::proxy_refused,
                         classify_pop3_login("-ERR [AUTH] Authentication failed"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(login_answer_test);

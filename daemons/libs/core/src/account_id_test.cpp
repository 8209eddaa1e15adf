#include "hamail/core/account_id.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>

using hamail::account_id_problem;
using hamail::valid_account_id;

class account_id_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(account_id_test);
  CPPUNIT_TEST(ordinary_ids_accepted);
  CPPUNIT_TEST(path_components_that_escape_rejected);
  CPPUNIT_TEST(leading_punctuation_rejected);
  CPPUNIT_TEST(length_limit_is_64);
  CPPUNIT_TEST(characters_outside_the_set_rejected);
  CPPUNIT_TEST(problem_says_why);
  CPPUNIT_TEST_SUITE_END();

 public:
  void ordinary_ids_accepted() {
    for (const char* ok : {"alice", "a", "0", "bob.smith", "bob_smith", "bob-smith",
                           "alice@example.org", "alice+tag", "x.y.z", "a."}) {
      CPPUNIT_ASSERT_MESSAGE(ok, valid_account_id(ok));
    }
  }

  void path_components_that_escape_rejected() {
    for (const char* bad : {".", "..", "../etc", "a/../b", "a/b", "a..b", "/abs", ".hidden"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !valid_account_id(bad));
    }
  }

  void leading_punctuation_rejected() {
    for (const char* bad : {"-rf", "@alice", "+tag", "_x", ".x"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !valid_account_id(bad));
    }
  }

  void length_limit_is_64() {
    CPPUNIT_ASSERT(valid_account_id(std::string(64, 'a')));
    CPPUNIT_ASSERT(!valid_account_id(std::string(65, 'a')));
    CPPUNIT_ASSERT(!valid_account_id(""));
  }

  void characters_outside_the_set_rejected() {
    for (const char* bad :
         {"Alice", "al ice", "al\tice", "al*ce", "al(ice)", "al\\ice", "al,ice", "al=ice",
          "al\"ice", "al#ice", "al;ice", "al<ice>", "j\xC3\xBCrgen", "al%ice", "al~ice"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !valid_account_id(bad));
    }
    CPPUNIT_ASSERT(!valid_account_id(std::string("al\0ice", 6)));
  }

  void problem_says_why() {
    CPPUNIT_ASSERT(!account_id_problem("alice"));
    CPPUNIT_ASSERT_EQUAL(std::string("is empty"), std::string(*account_id_problem("")));
    CPPUNIT_ASSERT_EQUAL(std::string("contains \"..\""), std::string(*account_id_problem("a..b")));
    CPPUNIT_ASSERT_EQUAL(std::string("is longer than 64 characters"),
                         std::string(*account_id_problem(std::string(65, 'a'))));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(account_id_test);

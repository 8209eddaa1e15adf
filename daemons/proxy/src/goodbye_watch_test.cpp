// goodbye_watch: a line starting with the protocol's goodbye is seen however
// the relayed bytes are cut, and nothing else is taken for one.

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "frontend.hpp"

using hamail::proxy::goodbye_watch;

class goodbye_watch_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(goodbye_watch_test);
  CPPUNIT_TEST(seen_at_a_line_start_at_every_split);
  CPPUNIT_TEST(not_seen_inside_a_line_or_partly);
  CPPUNIT_TEST(case_is_ignored_when_asked);
  CPPUNIT_TEST_SUITE_END();

  /// Feeds `text` cut at `a` and `b` (a <= b).
  static bool seen(const std::string& prefix, bool ignore_case, const std::string& text,
                   std::size_t a, std::size_t b) {
    goodbye_watch w(prefix, ignore_case);
    w.feed(std::string_view(text).substr(0, a));
    w.feed(std::string_view(text).substr(a, b - a));
    w.feed(std::string_view(text).substr(b));
    return w.seen();
  }

  static void check_all_splits(const std::string& prefix, bool ignore_case, const std::string& text,
                               bool expected) {
    for (std::size_t a = 0; a <= text.size(); ++a) {
      for (std::size_t b = a; b <= text.size(); ++b) {
        CPPUNIT_ASSERT_EQUAL_MESSAGE(
            text + " cut at " + std::to_string(a) + "," + std::to_string(b), expected,
            seen(prefix, ignore_case, text, a, b));
      }
    }
  }

 public:
  void seen_at_a_line_start_at_every_split() {
    check_all_splits("* BYE", false, "* BYE Logging out\r\na OK done\r\n", true);
    check_all_splits("* BYE", false, "* 3 EXISTS\r\n* BYE Autologout\r\n", true);
    check_all_splits("* BYE", false, "a OK [CAPABILITY IMAP4rev1] x\r\n* BYE", true);
  }

  void not_seen_inside_a_line_or_partly() {
    check_all_splits("* BYE", false, "* OK * BYE in the text\r\n", false);
    check_all_splits("* BYE", false, "* BY\r\nE\r\n", false);
    check_all_splits("* BYE", false, "a FETCH (BODY[] {7}\r\n* BYX\r\n)\r\n", false);
  }

  void case_is_ignored_when_asked() {
    check_all_splits("QUIT", true, "STAT\r\nquit\r\n", true);
    check_all_splits("QUIT", false, "STAT\r\nquit\r\n", false);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(goodbye_watch_test);

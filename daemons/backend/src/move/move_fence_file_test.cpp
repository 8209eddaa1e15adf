// The fence file's text: both kinds round-trip, and every malformed file is refused with a
// detail (the gate then keeps the account fenced, see move_account_gate_test.cpp).

#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "move/fence_file.hpp"

using hamail::backend::fence_state;
using hamail::backend::account_move::format_fence;
using hamail::backend::account_move::parse_fence;
using kind_t = fence_state::kind_t;

class move_fence_file_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(move_fence_file_test);
  CPPUNIT_TEST(locked_round_trips);
  CPPUNIT_TEST(moved_round_trips);
  CPPUNIT_TEST(final_newline_is_optional);
  CPPUNIT_TEST(malformed_files_are_refused);
  CPPUNIT_TEST_SUITE_END();

 public:
  void locked_round_trips() {
    fence_state f{kind_t::locked, "store-b",
                  std::chrono::system_clock::time_point(std::chrono::seconds(1764770000))};
    const auto text = format_fence(f);
    CPPUNIT_ASSERT_EQUAL(std::string("locked store-b 1764770000\n"), text);
    auto back = parse_fence(text);
    CPPUNIT_ASSERT(back.has_value());
    CPPUNIT_ASSERT(back->kind == kind_t::locked);
    CPPUNIT_ASSERT_EQUAL(std::string("store-b"), back->store);
    CPPUNIT_ASSERT(back->until == f.until);
  }

  void moved_round_trips() {
    fence_state f{kind_t::moved, "store-c", {}};
    const auto text = format_fence(f);
    CPPUNIT_ASSERT_EQUAL(std::string("moved store-c\n"), text);
    auto back = parse_fence(text);
    CPPUNIT_ASSERT(back.has_value());
    CPPUNIT_ASSERT(back->kind == kind_t::moved);
    CPPUNIT_ASSERT_EQUAL(std::string("store-c"), back->store);
  }

  void final_newline_is_optional() {
    CPPUNIT_ASSERT(parse_fence("moved store-c").has_value());
    CPPUNIT_ASSERT(parse_fence("locked store-c 0").has_value());
  }

  void malformed_files_are_refused() {
    for (const std::string& bad : {
             std::string(""),
             std::string("\n"),
             std::string("locked\n"),
             std::string("locked store-b\n"),
             std::string("locked store-b 12x\n"),
             std::string("locked store-b -5\n"),
             std::string("locked store-b 99999999999999999999999\n"),
             std::string("locked store-b 1 extra\n"),
             std::string("locked  store-b 1\n"),
             std::string("moved\n"),
             std::string("moved store-b extra\n"),
             std::string("moved Store_B!\n"),
             std::string("moved ../etc\n"),
             std::string("gone store-b\n"),
             std::string("moved store-b\n\n"),
             std::string("moved store-b\r\n"),
             std::string("moved store-\0b\n", 15),
             std::string(300, 'x'),
         }) {
      auto r = parse_fence(bad);
      CPPUNIT_ASSERT_MESSAGE("accepted: " + bad, !r.has_value());
      CPPUNIT_ASSERT_MESSAGE(bad, r.err().code == hamail::errc::invalid_input);
      CPPUNIT_ASSERT_MESSAGE(bad, !r.err().detail.empty());
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(move_fence_file_test);

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "hamail/protocol/imap/sequence_set.hpp"

namespace hamail::imap {
namespace {

std::string show(const std::vector<sequence_range>& rs) {
  std::string out;
  for (const auto& r : rs) {
    if (!out.empty()) out += ',';
    out += std::to_string(r.first) + ":" + std::to_string(r.last);
  }
  return out;
}

sequence_set must(std::string_view text, std::size_t max_ranges = 100) {
  auto s = sequence_set::parse(text, max_ranges);
  CPPUNIT_ASSERT_MESSAGE(std::string(text), s.has_value());
  return *s;
}

sequence_error refused(std::string_view text, std::size_t max_ranges = 100) {
  sequence_error e{};
  CPPUNIT_ASSERT_MESSAGE(std::string(text), !sequence_set::parse(text, max_ranges, &e));
  return e;
}

class sequence_set_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(sequence_set_test);
  CPPUNIT_TEST(parses_numbers_ranges_and_star);
  CPPUNIT_TEST(saved_result_dollar);
  CPPUNIT_TEST(refuses_malformed_sets);
  CPPUNIT_TEST(range_count_limit);
  CPPUNIT_TEST(resolve_sorts_merges_and_clips);
  CPPUNIT_TEST(star_past_the_end_still_names_the_last);
  CPPUNIT_TEST(membership_and_iteration);
  CPPUNIT_TEST(saved_result_resolves_to_nothing);
  CPPUNIT_TEST(range_wholly_past_the_end_without_star_is_empty);
  CPPUNIT_TEST_SUITE_END();

 public:
  void parses_numbers_ranges_and_star() {
    const auto s = must("1,3:5,7:*");
    CPPUNIT_ASSERT_EQUAL(std::string("1:1,3:5,7:0"), show(s.ranges()));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t(7), s.highest_explicit());
    CPPUNIT_ASSERT_EQUAL(std::string("4294967295:4294967295"), show(must("4294967295").ranges()));
    CPPUNIT_ASSERT_EQUAL(std::string("0:0"), show(must("*").ranges()));
    CPPUNIT_ASSERT_EQUAL(std::string("9:2"), show(must("9:2").ranges()));
  }
  void saved_result_dollar() {
    const auto s = must("$");
    CPPUNIT_ASSERT(s.is_saved_result());
    CPPUNIT_ASSERT(s.ranges().empty());
    CPPUNIT_ASSERT(!must("1").is_saved_result());
    refused("$,1");
    refused("1:$");
  }
  void refuses_malformed_sets() {
    for (const char* bad : {"", "0", "1:0", "01", "1,", ",1", "1::2", "a", "1:*:2", "4294967296",
                            "1 2", "-1", "1,,2", "**"})
      CPPUNIT_ASSERT(refused(bad) == sequence_error::syntax);
  }
  void range_count_limit() {
    must("1,2,3", 3);
    CPPUNIT_ASSERT(refused("1,2,3,4", 3) == sequence_error::too_many_ranges);
  }
  void resolve_sorts_merges_and_clips() {
    CPPUNIT_ASSERT_EQUAL(std::string("1:1,3:5,7:10"), show(must("1,3:5,7:*").resolve(10)));
    CPPUNIT_ASSERT_EQUAL(std::string("1:6"), show(must("5:6,1:2,3,4").resolve(10)));
    CPPUNIT_ASSERT_EQUAL(std::string("2:9"), show(must("9:2").resolve(10)));
    CPPUNIT_ASSERT_EQUAL(std::string("3:10"), show(must("3:20").resolve(10)));
    CPPUNIT_ASSERT_EQUAL(std::string(""), show(must("1:*").resolve(0)));
  }
  void star_past_the_end_still_names_the_last() {
    CPPUNIT_ASSERT_EQUAL(std::string("500:500"), show(must("559:*").resolve(500)));
    CPPUNIT_ASSERT(must("559:*").contains(500, 500));
    CPPUNIT_ASSERT(!must("559:*").contains(499, 500));
  }
  void membership_and_iteration() {
    const auto s = must("1,3:5,7:*");
    CPPUNIT_ASSERT(s.contains(1, 9));
    CPPUNIT_ASSERT(!s.contains(2, 9));
    CPPUNIT_ASSERT(s.contains(9, 9));
    CPPUNIT_ASSERT(!s.contains(10, 9));
    CPPUNIT_ASSERT(!s.contains(0, 9));
    std::vector<std::uint32_t> got;
    must("4,2:3,3,*").for_each(6, [&](std::uint32_t n) { got.push_back(n); });
    CPPUNIT_ASSERT((got == std::vector<std::uint32_t>{2, 3, 4, 6}));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(4), must("4,2:3,3,*").count(6));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(4294967295ull), must("1:*").count(4294967295u));
  }
  void saved_result_resolves_to_nothing() {
    CPPUNIT_ASSERT_EQUAL(std::string(""), show(must("$").resolve(10)));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), must("$").count(10));
  }
  void range_wholly_past_the_end_without_star_is_empty() {
    CPPUNIT_ASSERT_EQUAL(std::string(""), show(must("2000:3000").resolve(1000)));
    CPPUNIT_ASSERT_EQUAL(std::string("5:5"), show(must("2000,5").resolve(1000)));
    CPPUNIT_ASSERT(!must("2000:3000").contains(1000, 1000));
    CPPUNIT_ASSERT(must("*:2000").contains(1000, 1000));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(sequence_set_test);

}  // namespace
}  // namespace hamail::imap

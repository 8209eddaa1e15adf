#include "hamail/admin/placement.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <cmath>

using namespace hamail::admin;

class placement_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(placement_test);
  CPPUNIT_TEST(thousand_accounts_follow_weights_one_two_three);
  CPPUNIT_TEST(lowest_accounts_plus_one_over_weight_wins);
  CPPUNIT_TEST(ties_go_to_the_smaller_name);
  CPPUNIT_TEST(closed_draining_readonly_and_zero_weight_never_chosen);
  CPPUNIT_TEST(no_eligible_store_gives_nullopt);
  CPPUNIT_TEST(huge_weights_are_capped_not_overflowed);
  CPPUNIT_TEST(report_shares_and_imbalance);
  CPPUNIT_TEST(report_with_no_accounts_has_no_imbalance);
  CPPUNIT_TEST_SUITE_END();

 public:
  void thousand_accounts_follow_weights_one_two_three() {
    std::vector<store_load> s{{"a", 1, store_state::open, 0},
                              {"b", 2, store_state::open, 0},
                              {"c", 3, store_state::open, 0}};
    for (int i = 0; i < 1000; ++i) {
      const auto c = choose_store(s);
      CPPUNIT_ASSERT(c.has_value());
      ++s[*c].accounts;
    }
    CPPUNIT_ASSERT(std::llabs(static_cast<long long>(s[0].accounts) - 167) <= 2);
    CPPUNIT_ASSERT(std::llabs(static_cast<long long>(s[1].accounts) - 333) <= 2);
    CPPUNIT_ASSERT(std::llabs(static_cast<long long>(s[2].accounts) - 500) <= 2);
  }
  void lowest_accounts_plus_one_over_weight_wins() {
    // (10+1)/2 = 5.5 vs (3+1)/1 = 4 → b.
    std::vector<store_load> s{{"a", 2, store_state::open, 10}, {"b", 1, store_state::open, 3}};
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, *choose_store(s));
    s[1].accounts = 5;  // 6/1 = 6 > 5.5 → a
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, *choose_store(s));
  }
  void ties_go_to_the_smaller_name() {
    std::vector<store_load> s{{"zeta", 1, store_state::open, 0},
                              {"alpha", 1, store_state::open, 0}};
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, *choose_store(s));
    std::vector<store_load> t{{"b", 2, store_state::open, 1}, {"a", 1, store_state::open, 0}};
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, *choose_store(t));  // 2/2 == 1/1
  }
  void closed_draining_readonly_and_zero_weight_never_chosen() {
    std::vector<store_load> s{{"a", 100, store_state::closed, 0},
                              {"b", 100, store_state::draining, 0},
                              {"c", 100, store_state::readonly, 0},
                              {"d", 0, store_state::open, 0},
                              {"e", 1, store_state::open, 1000}};
    CPPUNIT_ASSERT_EQUAL(std::size_t{4}, *choose_store(s));
  }
  void no_eligible_store_gives_nullopt() {
    CPPUNIT_ASSERT(!choose_store({}).has_value());
    CPPUNIT_ASSERT(!choose_store({{"a", 0, store_state::open, 0}}).has_value());
    CPPUNIT_ASSERT(!choose_store({{"a", 5, store_state::closed, 0}}).has_value());
  }
  void huge_weights_are_capped_not_overflowed() {
    std::vector<store_load> s{{"a", UINT64_MAX, store_state::open, 1'000'000'000},
                              {"b", max_weight, store_state::open, 999'999'999}};
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, *choose_store(s));
  }
  void report_shares_and_imbalance() {
    const auto r = summarise_placement({{"a", 1, store_state::open, 50},
                                        {"b", 3, store_state::open, 30},
                                        {"c", 9, store_state::draining, 20}});
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{100}, r.total_accounts);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4}, r.eligible_weight);
    CPPUNIT_ASSERT_DOUBLES_EQUAL(0.25, r.rows[0].weight_share, 1e-9);
    CPPUNIT_ASSERT_DOUBLES_EQUAL(0.5, r.rows[0].share, 1e-9);
    CPPUNIT_ASSERT_DOUBLES_EQUAL(0.0, r.rows[2].weight_share, 1e-9);
    CPPUNIT_ASSERT(!r.rows[2].eligible);
    // a: 0.5-0.25 = 0.25; b: 0.3-0.75 = -0.45; c: 0.2-0 = 0.2 → 0.45
    CPPUNIT_ASSERT_DOUBLES_EQUAL(0.45, r.imbalance, 1e-9);
  }
  void report_with_no_accounts_has_no_imbalance() {
    const auto r = summarise_placement({{"a", 1, store_state::open, 0}});
    CPPUNIT_ASSERT_DOUBLES_EQUAL(0.0, r.imbalance, 1e-12);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(placement_test);

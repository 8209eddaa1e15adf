#include "hamail/admin/placement.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

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
  CPPUNIT_TEST(drain_spreads_by_weight_and_never_onto_the_drained_store);
  CPPUNIT_TEST(drain_without_a_destination_counts_the_unplaced);
  CPPUNIT_TEST(rebalance_moves_from_over_to_under_until_within_tolerance);
  CPPUNIT_TEST(rebalance_leaves_stores_that_take_no_accounts_alone);
  CPPUNIT_TEST(rebalance_of_a_balanced_placement_moves_nothing);
  CPPUNIT_TEST(rebalance_stops_at_max_moves);
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

  static std::vector<std::string> ids(const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
  }

  void drain_spreads_by_weight_and_never_onto_the_drained_store() {
    std::vector<store_load> s{{"a", 5, store_state::open, 30},
                              {"b", 1, store_state::open, 0},
                              {"c", 2, store_state::open, 0},
                              {"d", 9, store_state::closed, 0}};
    std::size_t unplaced = 99;
    const auto plan = plan_drain(s, 0, ids("u", 30), &unplaced);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, unplaced);
    CPPUNIT_ASSERT_EQUAL(std::size_t{30}, plan.size());
    int to_b = 0, to_c = 0;
    for (std::size_t i = 0; i < plan.size(); ++i) {
      CPPUNIT_ASSERT_EQUAL(std::string("u") + std::to_string(i), plan[i].account);
      CPPUNIT_ASSERT_EQUAL(std::string("a"), plan[i].from);
      CPPUNIT_ASSERT(plan[i].to == "b" || plan[i].to == "c");
      (plan[i].to == "b" ? to_b : to_c)++;
    }
    CPPUNIT_ASSERT_EQUAL(10, to_b);
    CPPUNIT_ASSERT_EQUAL(20, to_c);
  }

  void drain_without_a_destination_counts_the_unplaced() {
    std::vector<store_load> s{{"a", 1, store_state::open, 3}, {"b", 1, store_state::closed, 0}};
    std::size_t unplaced = 0;
    CPPUNIT_ASSERT(plan_drain(s, 0, ids("u", 3), &unplaced).empty());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, unplaced);
    CPPUNIT_ASSERT(plan_drain(s, 7, ids("u", 3)).empty());  // no such store
  }

  void rebalance_moves_from_over_to_under_until_within_tolerance() {
    // 90 accounts on a, none on b and c (weights 1:1:1): 30 each at tolerance 0.
    std::vector<store_load> s{{"a", 1, store_state::open, 90},
                              {"b", 1, store_state::open, 0},
                              {"c", 1, store_state::open, 0}};
    const auto plan = plan_rebalance(s, {ids("a", 90), {}, {}}, 0.0, 1000);
    CPPUNIT_ASSERT_EQUAL(std::size_t{60}, plan.size());
    std::map<std::string, int> to;
    for (const auto& m : plan) {
      CPPUNIT_ASSERT_EQUAL(std::string("a"), m.from);
      ++to[m.to];
    }
    CPPUNIT_ASSERT_EQUAL(30, to["b"]);
    CPPUNIT_ASSERT_EQUAL(30, to["c"]);
    CPPUNIT_ASSERT_EQUAL(std::string("a89"), plan.front().account);  // the last one first
    // Within 5 %: 90 accounts, 4.5 allowed over or under: stops at 34 / 28 / 28 at the latest.
    const auto loose = plan_rebalance(s, {ids("a", 90), {}, {}}, 0.05, 1000);
    CPPUNIT_ASSERT(loose.size() < plan.size());
    CPPUNIT_ASSERT(loose.size() >= 56);
    // Weights 1:2 with 30 on each: 10 go from a to b.
    std::vector<store_load> w{{"a", 1, store_state::open, 30}, {"b", 2, store_state::open, 30}};
    const auto by_weight = plan_rebalance(w, {ids("a", 30), ids("b", 30)}, 0.0, 1000);
    CPPUNIT_ASSERT_EQUAL(std::size_t{10}, by_weight.size());
    for (const auto& m : by_weight) CPPUNIT_ASSERT_EQUAL(std::string("b"), m.to);
  }

  void rebalance_leaves_stores_that_take_no_accounts_alone() {
    std::vector<store_load> s{{"a", 1, store_state::open, 10},
                              {"b", 1, store_state::open, 10},
                              {"old", 1, store_state::closed, 500},
                              {"zero", 0, store_state::open, 7}};
    CPPUNIT_ASSERT(
        plan_rebalance(s, {ids("a", 10), ids("b", 10), ids("o", 500), ids("z", 7)}, 0.0, 100)
            .empty());
  }

  void rebalance_of_a_balanced_placement_moves_nothing() {
    std::vector<store_load> s{{"a", 1, store_state::open, 11}, {"b", 1, store_state::open, 10}};
    CPPUNIT_ASSERT(plan_rebalance(s, {ids("a", 11), ids("b", 10)}, 0.0, 100).empty());
    CPPUNIT_ASSERT(plan_rebalance({}, {}, 0.0, 100).empty());
  }

  void rebalance_stops_at_max_moves() {
    std::vector<store_load> s{{"a", 1, store_state::open, 100}, {"b", 1, store_state::open, 0}};
    CPPUNIT_ASSERT_EQUAL(std::size_t{7}, plan_rebalance(s, {ids("a", 100), {}}, 0.0, 7).size());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(placement_test);

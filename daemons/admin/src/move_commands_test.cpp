#include "move_commands.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <cstdint>
#include <optional>
#include <string>

using namespace hamail::admin::detail;

class move_commands_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(move_commands_test);
  CPPUNIT_TEST(journal_round_trips);
  CPPUNIT_TEST(journal_rejects_what_is_not_one);
  CPPUNIT_TEST(a_small_delta_converges_at_once);
  CPPUNIT_TEST(a_large_first_pass_does_not_converge);
  CPPUNIT_TEST(a_shrinking_delta_goes_on);
  CPPUNIT_TEST(a_delta_that_stopped_shrinking_converges);
  CPPUNIT_TEST(many_small_files_or_few_large_ones_are_not_small);
  CPPUNIT_TEST(progress_bar_fills_in_proportion);
  CPPUNIT_TEST_SUITE_END();

 public:
  void journal_round_trips() {
    const move_journal j{"final", "store-a", "store-b", 1'790'000'000};
    const auto text = format_move_journal(j);
    const auto back = parse_move_journal(text);
    CPPUNIT_ASSERT(back.has_value());
    CPPUNIT_ASSERT_EQUAL(j.phase, back->phase);
    CPPUNIT_ASSERT_EQUAL(j.from, back->from);
    CPPUNIT_ASSERT_EQUAL(j.to, back->to);
    CPPUNIT_ASSERT_EQUAL(j.since, back->since);
  }

  void journal_rejects_what_is_not_one() {
    CPPUNIT_ASSERT(!parse_move_journal("").has_value());
    CPPUNIT_ASSERT(!parse_move_journal("copy store-a").has_value());
    CPPUNIT_ASSERT(!parse_move_journal("sideways store-a store-b 1").has_value());
    CPPUNIT_ASSERT(!parse_move_journal("copy store-a store-b soon").has_value());
  }

  void a_small_delta_converges_at_once() {
    CPPUNIT_ASSERT(copy_converged(std::nullopt, {0, 0, 0, 0}));
    CPPUNIT_ASSERT(copy_converged(std::nullopt, {small_delta_files - 1, small_delta_bytes - 1}));
  }

  void a_large_first_pass_does_not_converge() {
    CPPUNIT_ASSERT(!copy_converged(std::nullopt, {10'000, 30'000'000}));
  }

  void a_shrinking_delta_goes_on() {
    // A 10,000-message mailbox receiving mail: its index (~1 MB) comes again every pass.
    const pass_result first{10'550, 26'400'000};
    const pass_result second{40, 1'100'000};
    CPPUNIT_ASSERT(!copy_converged(first, second));
    const pass_result third{12, 1'050'000};
    CPPUNIT_ASSERT(!copy_converged(second, third));
  }

  void a_delta_that_stopped_shrinking_converges() {
    CPPUNIT_ASSERT(copy_converged(pass_result{12, 1'050'000}, {12, 1'060'000}));
    CPPUNIT_ASSERT(copy_converged(pass_result{12, 1'050'000}, {15, 1'070'000}));
    CPPUNIT_ASSERT(copy_converged(pass_result{500, 90'000'000}, {900, 99'000'000}));
  }

  void many_small_files_or_few_large_ones_are_not_small() {
    CPPUNIT_ASSERT(!copy_converged(std::nullopt, {small_delta_files, 1000}));
    CPPUNIT_ASSERT(!copy_converged(std::nullopt, {3, small_delta_bytes}));
  }

  void progress_bar_fills_in_proportion() {
    CPPUNIT_ASSERT_EQUAL(std::string("[..........]"), progress_bar(0, 100, 10));
    CPPUNIT_ASSERT_EQUAL(std::string("[#####.....]"), progress_bar(50, 100, 10));
    CPPUNIT_ASSERT_EQUAL(std::string("[#########.]"), progress_bar(99, 100, 10));
    CPPUNIT_ASSERT_EQUAL(std::string("[##########]"), progress_bar(100, 100, 10));
    CPPUNIT_ASSERT_EQUAL(std::string("[##########]"), progress_bar(7, 0, 10));
    CPPUNIT_ASSERT_EQUAL(std::string("[##########]"), progress_bar(200, 100, 10));
    CPPUNIT_ASSERT_EQUAL(std::string("[#####.....]"),
                         progress_bar(UINT64_MAX / 2 + 1, UINT64_MAX, 10));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(move_commands_test);

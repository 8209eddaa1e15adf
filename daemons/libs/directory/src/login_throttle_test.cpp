#include "hamail/directory/login_throttle.hpp"

#include <cppunit/extensions/HelperMacros.h>

using hamail::directory::login_throttle;
using namespace std::chrono_literals;

class login_throttle_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(login_throttle_test);
  CPPUNIT_TEST(address_blocked_after_max_failures_within_window);
  CPPUNIT_TEST(address_unblocked_after_window);
  CPPUNIT_TEST(account_delay_doubles_and_is_capped_but_never_refuses);
  CPPUNIT_TEST(success_clears_only_that_account);
  CPPUNIT_TEST(success_of_one_account_does_not_reset_the_address);
  CPPUNIT_TEST(other_address_is_not_blocked);
  CPPUNIT_TEST(memory_is_bounded_under_many_addresses);
  CPPUNIT_TEST_SUITE_END();

  login_throttle::clock::time_point t0 = login_throttle::clock::time_point{} + 1h;

 public:
  void address_blocked_after_max_failures_within_window() {
    login_throttle t({.max_failures_per_address = 3});
    for (int i = 0; i < 2; ++i) {
      CPPUNIT_ASSERT(!t.before_attempt("192.0.2.1", t0).refused);
      CPPUNIT_ASSERT(!t.after_failure("192.0.2.1", "user" + std::to_string(i), t0).refused);
    }
    CPPUNIT_ASSERT(t.after_failure("192.0.2.1", "x", t0 + 1s).refused);
    CPPUNIT_ASSERT(t.before_attempt("192.0.2.1", t0 + 10s).refused);
  }
  void address_unblocked_after_window() {
    login_throttle t({.max_failures_per_address = 2, .window = 60s});
    t.after_failure("192.0.2.1", "a", t0);
    t.after_failure("192.0.2.1", "a", t0);
    CPPUNIT_ASSERT(t.before_attempt("192.0.2.1", t0 + 59s).refused);
    CPPUNIT_ASSERT(!t.before_attempt("192.0.2.1", t0 + 60s).refused);
    // A failure after the window starts a new count.
    CPPUNIT_ASSERT(!t.after_failure("192.0.2.1", "a", t0 + 61s).refused);
  }
  void account_delay_doubles_and_is_capped_but_never_refuses() {
    login_throttle t(
        {.max_failures_per_address = 1000, .first_delay = 1s, .max_account_delay = 8s});
    std::vector<long> delays;
    for (int i = 0; i < 6; ++i) {
      // Every attempt from a different address: per-account backoff still applies.
      auto d =
          t.after_failure("198.51.100." + std::to_string(i), "alice", t0 + std::chrono::seconds(i));
      CPPUNIT_ASSERT(!d.refused);
      delays.push_back(static_cast<long>(d.delay.count()));
    }
    CPPUNIT_ASSERT((delays == std::vector<long>{1000, 2000, 4000, 8000, 8000, 8000}));
  }
  void success_clears_only_that_account() {
    login_throttle t({.max_failures_per_address = 10});
    t.after_failure("192.0.2.1", "alice", t0);
    t.after_failure("192.0.2.1", "alice", t0);
    t.after_failure("192.0.2.1", "bob", t0);
    t.after_success("192.0.2.1", "alice");
    // alice starts again at the first delay; bob keeps his doubling.
    CPPUNIT_ASSERT_EQUAL(std::chrono::milliseconds(1000),
                         t.after_failure("192.0.2.9", "alice", t0).delay);
    CPPUNIT_ASSERT_EQUAL(std::chrono::milliseconds(2000),
                         t.after_failure("192.0.2.9", "bob", t0).delay);
  }
  void success_of_one_account_does_not_reset_the_address() {
    // An attacker who owns one account logs in with it between guesses at
    // others: the address's failures must still add up to the block.
    login_throttle t({.max_failures_per_address = 3});
    CPPUNIT_ASSERT(!t.after_failure("192.0.2.1", "victim1", t0).refused);
    t.after_success("192.0.2.1", "attacker");
    CPPUNIT_ASSERT(!t.after_failure("192.0.2.1", "victim2", t0 + 1s).refused);
    t.after_success("192.0.2.1", "attacker");
    CPPUNIT_ASSERT(t.after_failure("192.0.2.1", "victim3", t0 + 2s).refused);
    CPPUNIT_ASSERT(t.before_attempt("192.0.2.1", t0 + 3s).refused);
    // Another address is unaffected.
    CPPUNIT_ASSERT(!t.before_attempt("192.0.2.2", t0 + 3s).refused);
  }
  void other_address_is_not_blocked() {
    login_throttle t({.max_failures_per_address = 1});
    t.after_failure("192.0.2.1", "a", t0);
    CPPUNIT_ASSERT(t.before_attempt("192.0.2.1", t0).refused);
    CPPUNIT_ASSERT(!t.before_attempt("192.0.2.2", t0).refused);
  }
  void memory_is_bounded_under_many_addresses() {
    login_throttle t({.max_entries = 100});
    for (int i = 0; i < 5000; ++i) {
      t.after_failure("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                      "acct" + std::to_string(i), t0 + std::chrono::milliseconds(i));
    }
    CPPUNIT_ASSERT(t.size() <= 200);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(login_throttle_test);

// The per-client key and the minimum-rate meter, without sockets.

#include "hamail/net/limits.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <boost/asio/ip/address.hpp>

using hamail::net::client_key;
using hamail::net::rate_meter;
using hamail::net::transfer_rate;
using namespace std::chrono_literals;

namespace {

std::string key(const char* text, unsigned v4 = 32, unsigned v6 = 64) {
  return client_key(boost::asio::ip::make_address(text), v4, v6);
}

}  // namespace

class limits_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(limits_test);
  CPPUNIT_TEST(ipv6_addresses_of_one_slash64_share_a_key);
  CPPUNIT_TEST(ipv6_prefix_is_configurable);
  CPPUNIT_TEST(ipv4_is_keyed_by_full_address_by_default);
  CPPUNIT_TEST(ipv4_prefix_is_configurable);
  CPPUNIT_TEST(ipv4_mapped_ipv6_counts_as_ipv4);
  CPPUNIT_TEST(rate_meter_without_minimum_never_expires);
  CPPUNIT_TEST(trickle_reaches_the_deadline_right_after_grace);
  CPPUNIT_TEST(client_at_the_rate_keeps_ahead);
  CPPUNIT_TEST(fast_start_buys_at_most_one_window);
  CPPUNIT_TEST(missed_deadline_stays_missed);
  CPPUNIT_TEST(huge_byte_counts_do_not_overflow);
  CPPUNIT_TEST_SUITE_END();

 public:
  void ipv6_addresses_of_one_slash64_share_a_key() {
    CPPUNIT_ASSERT_EQUAL(std::string("2001:db8:1:2::/64"), key("2001:db8:1:2::1"));
    CPPUNIT_ASSERT_EQUAL(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    CPPUNIT_ASSERT(key("2001:db8:1:2::1") != key("2001:db8:1:3::1"));
    CPPUNIT_ASSERT_EQUAL(std::string("::/64"), key("::1"));
  }

  void ipv6_prefix_is_configurable() {
    CPPUNIT_ASSERT_EQUAL(std::string("2001:db8:1::/48"), key("2001:db8:1:2::1", 32, 48));
    CPPUNIT_ASSERT_EQUAL(std::string("2001:db8:1:2::/63"), key("2001:db8:1:3::1", 32, 63));
    CPPUNIT_ASSERT_EQUAL(std::string("2001:db8::1"), key("2001:db8::1", 32, 128));
    CPPUNIT_ASSERT_EQUAL(std::string("2001:db8::1"), key("2001:db8::1", 32, 200));
    CPPUNIT_ASSERT_EQUAL(std::string("::/0"), key("2001:db8::1", 32, 0));
  }

  void ipv4_is_keyed_by_full_address_by_default() {
    CPPUNIT_ASSERT_EQUAL(std::string("192.0.2.7"), key("192.0.2.7"));
    CPPUNIT_ASSERT(key("192.0.2.7") != key("192.0.2.8"));
  }

  void ipv4_prefix_is_configurable() {
    CPPUNIT_ASSERT_EQUAL(std::string("198.51.100.0/24"), key("198.51.100.77", 24));
    CPPUNIT_ASSERT_EQUAL(std::string("198.51.100.64/26"), key("198.51.100.77", 26));
    CPPUNIT_ASSERT_EQUAL(std::string("0.0.0.0/0"), key("198.51.100.77", 0));
  }

  void ipv4_mapped_ipv6_counts_as_ipv4() {
    CPPUNIT_ASSERT_EQUAL(std::string("192.0.2.7"), key("::ffff:192.0.2.7"));
    CPPUNIT_ASSERT_EQUAL(std::string("192.0.2.0/24"), key("::ffff:192.0.2.7", 24));
  }

  void rate_meter_without_minimum_never_expires() {
    const auto t0 = rate_meter::clock::now();
    rate_meter m(transfer_rate{}, t0);
    CPPUNIT_ASSERT(m.deadline() == rate_meter::clock::time_point::max());
    CPPUNIT_ASSERT(!m.too_slow(t0 + 100h));
  }

  void trickle_reaches_the_deadline_right_after_grace() {
    const auto t0 = rate_meter::clock::now();
    rate_meter m(transfer_rate{100, 10s, 5s}, t0);
    auto t = t0;
    // One byte a second against 100 bytes/s: each byte buys 10 ms.
    for (int i = 0; i < 5; ++i) {
      t += 1s;
      CPPUNIT_ASSERT(!m.too_slow(t - 1ms));
      m.add(1, t);
    }
    CPPUNIT_ASSERT(m.deadline() < t0 + 5s + 100ms);
    CPPUNIT_ASSERT(m.too_slow(t0 + 5s + 100ms));
  }

  void client_at_the_rate_keeps_ahead() {
    const auto t0 = rate_meter::clock::now();
    rate_meter m(transfer_rate{1000, 10s, 2s}, t0);
    auto t = t0;
    for (int i = 0; i < 600; ++i) {  // ten minutes at 1000 bytes/s in 100 ms pieces
      t += 100ms;
      CPPUNIT_ASSERT(!m.too_slow(t));
      m.add(100, t);
    }
    CPPUNIT_ASSERT(m.deadline() > t + 1s);
  }

  void fast_start_buys_at_most_one_window() {
    const auto t0 = rate_meter::clock::now();
    rate_meter m(transfer_rate{100, 10s, 1s}, t0);
    m.add(100'000'000, t0 + 1ms);  // a million seconds' worth of credit
    CPPUNIT_ASSERT(m.deadline() <= t0 + 1ms + 10s);
    // Then a trickle: cut within one window.
    auto t = t0 + 1ms;
    while (!m.too_slow(t)) {
      t += 1s;
      m.add(1, t);
    }
    CPPUNIT_ASSERT(t <= t0 + 12s);
  }

  void missed_deadline_stays_missed() {
    const auto t0 = rate_meter::clock::now();
    rate_meter m(transfer_rate{100, 10s, 1s}, t0);
    m.add(1000, t0 + 5s);  // would buy 10 s, but the deadline passed at t0 + 1 s
    CPPUNIT_ASSERT(m.too_slow(t0 + 5s));
  }

  void huge_byte_counts_do_not_overflow() {
    const auto t0 = rate_meter::clock::now();
    rate_meter m(transfer_rate{1, 30s, 1s}, t0);
    m.add(UINT64_MAX, t0);
    CPPUNIT_ASSERT(m.deadline() > t0 + 29s);
    CPPUNIT_ASSERT(m.deadline() <= t0 + 30s);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(limits_test);

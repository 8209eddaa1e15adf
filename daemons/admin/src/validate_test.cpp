#include "hamail/admin/validate.hpp"

#include <cppunit/extensions/HelperMacros.h>

using namespace hamail::admin;

class validate_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(validate_test);
  CPPUNIT_TEST(sizes_with_binary_units_parse);
  CPPUNIT_TEST(malformed_sizes_rejected);
  CPPUNIT_TEST(size_overflow_rejected);
  CPPUNIT_TEST(counts_respect_their_maximum);
  CPPUNIT_TEST(store_names);
  CPPUNIT_TEST(account_ids);
  CPPUNIT_TEST(addresses);
  CPPUNIT_TEST(host_names_and_ip_addresses);
  CPPUNIT_TEST(store_states_round_trip);
  CPPUNIT_TEST_SUITE_END();

 public:
  void sizes_with_binary_units_parse() {
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{512}, *parse_size("512"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{0}, *parse_size("0"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4096}, *parse_size("4k"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4096}, *parse_size("4KiB"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{10} << 20, *parse_size("10M"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{10} << 20, *parse_size("10mib"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2} << 30, *parse_size("2G"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1} << 40, *parse_size("1T"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{7}, *parse_size("7B"));
  }
  void malformed_sizes_rejected() {
    for (const char* bad :
         {"", "10X", "-1", "1.5G", "G", " 10M", "10M ", "10 M", "0x10", "10MB", "+5"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !parse_size(bad).has_value());
    }
  }
  void size_overflow_rejected() {
    CPPUNIT_ASSERT(parse_size("18446744073709551615").has_value());
    CPPUNIT_ASSERT(!parse_size("18446744073709551616").has_value());
    CPPUNIT_ASSERT(!parse_size("16777216T").has_value());
    CPPUNIT_ASSERT(parse_size("16777215T").has_value());
  }
  void counts_respect_their_maximum() {
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{65535}, *parse_count("65535", 65535));
    CPPUNIT_ASSERT(!parse_count("65536", 65535).has_value());
    CPPUNIT_ASSERT(!parse_count("", 10).has_value());
    CPPUNIT_ASSERT(!parse_count("1e3").has_value());
    CPPUNIT_ASSERT(!parse_count("-0").has_value());
  }
  void store_names() {
    for (const char* ok : {"store-a", "a", "s_1", "0store"}) {
      CPPUNIT_ASSERT_MESSAGE(ok, valid_store_name(ok));
    }
    for (const char* bad : {"", "Store", "-a", "_a", "a b", "a,b", "a*", "a.b",
                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !valid_store_name(bad));
    }
  }
  void account_ids() {
    for (const char* ok : {"alice", "alice.smith", "a_b-c", "user+x", "alice@example.org"}) {
      CPPUNIT_ASSERT_MESSAGE(ok, valid_account_id(ok));
    }
    for (const char* bad : {"", "Alice", ".alice", "a..b", "a/b", "a b", "a,b", "a*", "../x"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !valid_account_id(bad));
    }
  }
  void addresses() {
    for (const char* ok : {"user@example.org", "First.Last@Example.ORG", "a+tag@x.y",
                           "o'neil@example.org", "u@localhost"}) {
      CPPUNIT_ASSERT_MESSAGE(ok, valid_address(ok));
    }
    for (const char* bad : {"", "user", "@example.org", "user@", "a@@b.org", "a b@x.org",
                            ".a@x.org", "a.@x.org", "a..b@x.org", "a@x..org", "a@-x.org",
                            "a@x_y.org", "a(b)@x.org", "a@x.org\n", "j\xc3\xb6rg@x.org"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !valid_address(bad));
    }
    CPPUNIT_ASSERT(!valid_address(std::string(65, 'a') + "@x.org"));
  }
  void host_names_and_ip_addresses() {
    CPPUNIT_ASSERT(valid_host_name("store-a.mail.example.org"));
    CPPUNIT_ASSERT(!valid_host_name("store_a.example.org"));
    CPPUNIT_ASSERT(!valid_host_name("a..b"));
    CPPUNIT_ASSERT(valid_ip_address("192.0.2.10"));
    CPPUNIT_ASSERT(valid_ip_address("2001:db8::1"));
    CPPUNIT_ASSERT(!valid_ip_address("300.1.1.1"));
    CPPUNIT_ASSERT(!valid_ip_address("example.org"));
  }
  void store_states_round_trip() {
    for (const char* s : {"open", "draining", "closed", "readonly"}) {
      const auto st = parse_store_state(s);
      CPPUNIT_ASSERT(st.has_value());
      CPPUNIT_ASSERT_EQUAL(std::string(s), std::string(to_string(*st)));
    }
    CPPUNIT_ASSERT(!parse_store_state("Open").has_value());
    CPPUNIT_ASSERT(!parse_store_state("half").has_value());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(validate_test);

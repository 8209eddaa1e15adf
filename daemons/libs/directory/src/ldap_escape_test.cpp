#include "hamail/directory/ldap_escape.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <optional>
#include <random>
#include <string>

using hamail::directory::escape_filter_value;
using hamail::directory::first_rdn_value;
using hamail::directory::make_child_dn;

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// Decodes an RFC 4515 `valueencoding`; nullopt when `text` is not one (an unescaped
/// NUL, '(', ')', '*' or '\', or a dangling escape).
std::optional<std::string> decode_filter_value(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_digit(text[i + 1]);
      const int lo = hex_digit(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '\0' || c == '(' || c == ')' || c == '*') {
      return std::nullopt;
    } else {
      out += c;
    }
  }
  return out;
}

const std::string parent = "ou=accounts,dc=example,dc=org";

}  // namespace

class ldap_escape_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ldap_escape_test);
  CPPUNIT_TEST(plain_filter_value_is_unchanged);
  CPPUNIT_TEST(filter_metacharacters_and_nul_are_escaped);
  CPPUNIT_TEST(filter_injection_cannot_close_the_assertion);
  CPPUNIT_TEST(filter_utf8_and_broken_utf8_round_trip);
  CPPUNIT_TEST(every_byte_and_random_values_round_trip_in_filters);
  CPPUNIT_TEST(plain_dn_is_attribute_value_parent);
  CPPUNIT_TEST(dn_specials_are_escaped_and_round_trip);
  CPPUNIT_TEST(dn_leading_hash_and_spaces_are_escaped);
  CPPUNIT_TEST(dn_hostile_values_stay_one_rdn);
  CPPUNIT_TEST(dn_utf8_round_trips_and_broken_utf8_is_refused);
  CPPUNIT_TEST(dn_with_bad_parent_or_empty_parts_is_refused);
  CPPUNIT_TEST(first_rdn_value_reads_escaped_values);
  CPPUNIT_TEST_SUITE_END();

 public:
  void plain_filter_value_is_unchanged() {
    CPPUNIT_ASSERT_EQUAL(std::string("alice@example.org"),
                         escape_filter_value("alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string(""), escape_filter_value(""));
  }

  void filter_metacharacters_and_nul_are_escaped() {
    CPPUNIT_ASSERT_EQUAL(std::string("\\2a"), lower(escape_filter_value("*")));
    CPPUNIT_ASSERT_EQUAL(std::string("\\28\\29"), escape_filter_value("()"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\5c"), lower(escape_filter_value("\\")));
    CPPUNIT_ASSERT_EQUAL(std::string("a\\00b"), escape_filter_value(std::string("a\0b", 3)));
    const std::string hostile("*()\\\0", 5);
    CPPUNIT_ASSERT_EQUAL(std::string("\\2a\\28\\29\\5c\\00"), lower(escape_filter_value(hostile)));
  }

  void filter_injection_cannot_close_the_assertion() {
    for (const std::string attack :
         {"*", "alice)(uid=*", "*)(|(uid=*", "x\\29(", ")(&", "admin)(|(objectClass=*"}) {
      const std::string e = escape_filter_value(attack);
      CPPUNIT_ASSERT_MESSAGE(e, e.find_first_of("()*") == std::string::npos);
      CPPUNIT_ASSERT_EQUAL(attack, decode_filter_value(e).value_or("<not a value>"));
    }
  }

  void filter_utf8_and_broken_utf8_round_trip() {
    const std::string utf8 = "j\xC3\xBCrgen@\xE4\xBE\x8B.\xF0\x9F\x93\xA7";
    CPPUNIT_ASSERT_EQUAL(utf8, decode_filter_value(escape_filter_value(utf8)).value_or(""));
    const std::string broken = "caf\xE9\x80\xF0\x9F";
    CPPUNIT_ASSERT_EQUAL(broken, decode_filter_value(escape_filter_value(broken)).value_or(""));
  }

  void every_byte_and_random_values_round_trip_in_filters() {
    for (int b = 0; b < 256; ++b) {
      const std::string v(1, static_cast<char>(b));
      const auto d = decode_filter_value(escape_filter_value(v));
      CPPUNIT_ASSERT_MESSAGE(std::to_string(b), d && *d == v);
    }
    std::mt19937 rng(4515);
    for (int n = 0; n < 2000; ++n) {
      std::string v(rng() % 40, '\0');
      for (auto& c : v) c = static_cast<char>(rng() & 0xFF);
      const auto d = decode_filter_value(escape_filter_value(v));
      CPPUNIT_ASSERT(d && *d == v);
    }
  }

  void plain_dn_is_attribute_value_parent() {
    CPPUNIT_ASSERT_EQUAL(std::string("uid=alice,ou=accounts,dc=example,dc=org"),
                         make_child_dn("uid", "alice", parent).value_or(""));
    CPPUNIT_ASSERT_EQUAL(std::string("hamailStoreName=store-a"),
                         make_child_dn("hamailStoreName", "store-a", "").value_or(""));
  }

  void dn_specials_are_escaped_and_round_trip() {
    for (const std::string v :
         {",", "+", "\"", "\\", "<", ">", ";", "=", "a,b+c=d", ",+\"<>;=", "ou=x,dc=evil"}) {
      const auto dn = make_child_dn("uid", v, parent);
      CPPUNIT_ASSERT_MESSAGE(v, dn.has_value());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(*dn, v, first_rdn_value(*dn, "uid").value_or("<none>"));
      CPPUNIT_ASSERT_MESSAGE(
          *dn, dn->size() > parent.size() &&
                   dn->compare(dn->size() - parent.size(), parent.size(), parent) == 0);
    }
  }

  void dn_leading_hash_and_spaces_are_escaped() {
    for (const std::string v : {"#", "#41", " lead", "trail ", " ", "  both  "}) {
      const auto dn = make_child_dn("uid", v, parent);
      CPPUNIT_ASSERT_MESSAGE(v, dn.has_value());
      // Unescaped, "uid=#41" would be the BER encoding of "A"; "uid= x" would lose the space.
      CPPUNIT_ASSERT_MESSAGE(*dn, dn->rfind("uid=#", 0) != 0 && dn->rfind("uid= ", 0) != 0);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(*dn, v, first_rdn_value(*dn, "uid").value_or("<none>"));
    }
  }

  void dn_hostile_values_stay_one_rdn() {
    const std::string hostile("*()\\\0", 5);
    for (const std::string& v : {hostile, std::string("a\0,ou=x", 7), std::string("x\r\ny"),
                                 std::string("\\2C"), std::string("a\\")}) {
      const auto dn = make_child_dn("uid", v, parent);
      CPPUNIT_ASSERT(dn.has_value());
      CPPUNIT_ASSERT(dn->find('\0') == std::string::npos);
      CPPUNIT_ASSERT_EQUAL(v, first_rdn_value(*dn, "uid").value_or("<none>"));
    }
  }

  void dn_utf8_round_trips_and_broken_utf8_is_refused() {
    const std::string utf8 = "j\xC3\xBCrgen \xE4\xBE\x8B \xF0\x9F\x93\xA7";
    const auto dn = make_child_dn("cn", utf8, parent);
    CPPUNIT_ASSERT(dn.has_value());
    CPPUNIT_ASSERT_EQUAL(utf8, first_rdn_value(*dn, "CN").value_or(""));
    CPPUNIT_ASSERT(!make_child_dn("cn", "caf\xE9", parent));
    CPPUNIT_ASSERT(!make_child_dn("cn", "\xED\xA0\x80", parent));
  }

  void dn_with_bad_parent_or_empty_parts_is_refused() {
    CPPUNIT_ASSERT(!make_child_dn("uid", "alice", "not a dn"));
    CPPUNIT_ASSERT(!make_child_dn("uid", "alice", "ou=x,,dc=y"));
    CPPUNIT_ASSERT(!make_child_dn("uid", "", parent));
    CPPUNIT_ASSERT(!make_child_dn("", "alice", parent));
  }

  void first_rdn_value_reads_escaped_values() {
    CPPUNIT_ASSERT_EQUAL(std::string("a,b"),
                         first_rdn_value("uid=a\\,b,ou=x,dc=y", "UID").value_or(""));
    CPPUNIT_ASSERT_EQUAL(std::string("bob"),
                         first_rdn_value("cn=Bob Smith+uid=bob,dc=y", "uid").value_or(""));
    CPPUNIT_ASSERT(!first_rdn_value("cn=x,uid=bob", "uid"));
    CPPUNIT_ASSERT(!first_rdn_value("garbage", "uid"));
  }

 private:
  static std::string lower(std::string s) {
    for (auto& c : s) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ldap_escape_test);

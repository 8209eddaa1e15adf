#include "hamail/admin/escape.hpp"

#include <cppunit/extensions/HelperMacros.h>

using namespace hamail::admin;

class escape_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(escape_test);
  CPPUNIT_TEST(filter_metacharacters_become_hex);
  CPPUNIT_TEST(filter_nul_and_controls_become_hex);
  CPPUNIT_TEST(filter_plain_and_utf8_pass_through);
  CPPUNIT_TEST(dn_specials_get_a_backslash);
  CPPUNIT_TEST(dn_leading_hash_space_and_trailing_space_escaped);
  CPPUNIT_TEST(dn_nul_becomes_hex);
  CPPUNIT_TEST_SUITE_END();

 public:
  void filter_metacharacters_become_hex() {
    CPPUNIT_ASSERT_EQUAL(std::string("a\\2ab\\28c\\29d\\5ce"), escape_filter_value("a*b(c)d\\e"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\2a\\29\\28uid=\\2a"), escape_filter_value("*)(uid=*"));
  }
  void filter_nul_and_controls_become_hex() {
    CPPUNIT_ASSERT_EQUAL(std::string("a\\00b\\0a"), escape_filter_value(std::string("a\0b\n", 4)));
  }
  void filter_plain_and_utf8_pass_through() {
    CPPUNIT_ASSERT_EQUAL(std::string("user@example.org"), escape_filter_value("user@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string("j\xc3\xb6rg"), escape_filter_value("j\xc3\xb6rg"));
  }
  void dn_specials_get_a_backslash() {
    CPPUNIT_ASSERT_EQUAL(std::string("a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\=i"),
                         escape_dn_value("a,b+c\"d\\e<f>g;h=i"));
    CPPUNIT_ASSERT_EQUAL(std::string("x\\,ou\\=evil"), escape_dn_value("x,ou=evil"));
  }
  void dn_leading_hash_space_and_trailing_space_escaped() {
    CPPUNIT_ASSERT_EQUAL(std::string("\\#a"), escape_dn_value("#a"));
    CPPUNIT_ASSERT_EQUAL(std::string("a#"), escape_dn_value("a#"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\ a\\ "), escape_dn_value(" a "));
    CPPUNIT_ASSERT_EQUAL(std::string("a b"), escape_dn_value("a b"));
  }
  void dn_nul_becomes_hex() {
    CPPUNIT_ASSERT_EQUAL(std::string("a\\00b"), escape_dn_value(std::string("a\0b", 3)));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(escape_test);

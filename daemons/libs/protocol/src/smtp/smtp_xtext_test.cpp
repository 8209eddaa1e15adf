#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hamail/protocol/smtp/xtext.hpp"

namespace hamail::smtp {
namespace {

class xtext_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(xtext_test);
  CPPUNIT_TEST(plus_hex_escapes_decode_to_octets);
  CPPUNIT_TEST(lower_case_hex_is_accepted);
  CPPUNIT_TEST(truncated_or_non_hex_escape_is_rejected);
  CPPUNIT_TEST(equals_space_controls_and_non_ascii_are_rejected);
  CPPUNIT_TEST(encoding_escapes_plus_equals_space_and_non_ascii);
  CPPUNIT_TEST(every_octet_round_trips);
  CPPUNIT_TEST_SUITE_END();

 public:
  void plus_hex_escapes_decode_to_octets() {
    CPPUNIT_ASSERT_EQUAL(std::string("a+b=c d"), *decode_xtext("a+2Bb+3Dc+20d"));
    CPPUNIT_ASSERT_EQUAL(std::string("<>"), *decode_xtext("<>"));
    CPPUNIT_ASSERT_EQUAL(std::string(), *decode_xtext(""));
    CPPUNIT_ASSERT_EQUAL(std::string("\xff", 1), *decode_xtext("+FF"));
  }
  void lower_case_hex_is_accepted() {
    CPPUNIT_ASSERT_EQUAL(std::string("+"), *decode_xtext("+2b"));
  }
  void truncated_or_non_hex_escape_is_rejected() {
    CPPUNIT_ASSERT(!decode_xtext("+"));
    CPPUNIT_ASSERT(!decode_xtext("abc+4"));
    CPPUNIT_ASSERT(!decode_xtext("+G0"));
    CPPUNIT_ASSERT(!decode_xtext("+0G"));
  }
  void equals_space_controls_and_non_ascii_are_rejected() {
    CPPUNIT_ASSERT(!decode_xtext("a=b"));
    CPPUNIT_ASSERT(!decode_xtext("a b"));
    CPPUNIT_ASSERT(!decode_xtext("a\x01"));
    CPPUNIT_ASSERT(!decode_xtext("\x7f"));
    CPPUNIT_ASSERT(!decode_xtext("caf\xc3\xa9"));
  }
  void encoding_escapes_plus_equals_space_and_non_ascii() {
    CPPUNIT_ASSERT_EQUAL(std::string("a+2Bb+3Dc+20d+C3+A9"), encode_xtext("a+b=c d\xc3\xa9"));
    CPPUNIT_ASSERT_EQUAL(std::string("user@example.com"), encode_xtext("user@example.com"));
  }
  void every_octet_round_trips() {
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    const auto encoded = encode_xtext(all);
    const auto decoded = decode_xtext(encoded);
    CPPUNIT_ASSERT(decoded.has_value());
    CPPUNIT_ASSERT(*decoded == all);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(xtext_test);

}  // namespace
}  // namespace hamail::smtp

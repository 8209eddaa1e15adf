#include "hamail/core/utf8.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

using hamail::decode_utf8;
using hamail::is_valid_utf8;

class utf8_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(utf8_test);
  CPPUNIT_TEST(ascii_and_nul_are_valid);
  CPPUNIT_TEST(boundaries_of_each_length_are_valid);
  CPPUNIT_TEST(overlong_forms_rejected);
  CPPUNIT_TEST(surrogates_and_above_10ffff_rejected);
  CPPUNIT_TEST(truncated_and_stray_bytes_rejected);
  CPPUNIT_TEST(decode_yields_code_points);
  CPPUNIT_TEST(every_two_byte_prefix_agrees_with_decode);
  CPPUNIT_TEST_SUITE_END();

 public:
  void ascii_and_nul_are_valid() {
    CPPUNIT_ASSERT(is_valid_utf8(""));
    CPPUNIT_ASSERT(is_valid_utf8("alice@example.org"));
    CPPUNIT_ASSERT(is_valid_utf8(std::string("a\0b\x7f", 4)));
  }

  void boundaries_of_each_length_are_valid() {
    CPPUNIT_ASSERT(is_valid_utf8("\xC2\x80"));          // U+0080
    CPPUNIT_ASSERT(is_valid_utf8("\xDF\xBF"));          // U+07FF
    CPPUNIT_ASSERT(is_valid_utf8("\xE0\xA0\x80"));      // U+0800
    CPPUNIT_ASSERT(is_valid_utf8("\xED\x9F\xBF"));      // U+D7FF
    CPPUNIT_ASSERT(is_valid_utf8("\xEE\x80\x80"));      // U+E000
    CPPUNIT_ASSERT(is_valid_utf8("\xEF\xBF\xBD"));      // U+FFFD
    CPPUNIT_ASSERT(is_valid_utf8("\xF0\x90\x80\x80"));  // U+10000
    CPPUNIT_ASSERT(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
    CPPUNIT_ASSERT(is_valid_utf8("j\xC3\xBCrgen@m\xC3\xBCnchen.example"));
  }

  void overlong_forms_rejected() {
    CPPUNIT_ASSERT(!is_valid_utf8("\xC0\xAF"));  // '/' in two bytes
    CPPUNIT_ASSERT(!is_valid_utf8("\xC1\xBF"));
    CPPUNIT_ASSERT(!is_valid_utf8("\xE0\x80\xAF"));      // '/' in three
    CPPUNIT_ASSERT(!is_valid_utf8("\xE0\x9F\xBF"));      // U+07FF in three
    CPPUNIT_ASSERT(!is_valid_utf8("\xF0\x80\x80\xAF"));  // '/' in four
    CPPUNIT_ASSERT(!is_valid_utf8("\xF0\x8F\xBF\xBF"));  // U+FFFF in four
    CPPUNIT_ASSERT(!is_valid_utf8("\xC0\x80"));          // "modified UTF-8" NUL
  }

  void surrogates_and_above_10ffff_rejected() {
    CPPUNIT_ASSERT(!is_valid_utf8("\xED\xA0\x80"));      // U+D800
    CPPUNIT_ASSERT(!is_valid_utf8("\xED\xBF\xBF"));      // U+DFFF
    CPPUNIT_ASSERT(!is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
    CPPUNIT_ASSERT(!is_valid_utf8("\xF5\x80\x80\x80"));
    CPPUNIT_ASSERT(!is_valid_utf8("\xFF"));
    CPPUNIT_ASSERT(!is_valid_utf8("\xFE"));
  }

  void truncated_and_stray_bytes_rejected() {
    CPPUNIT_ASSERT(!is_valid_utf8("\xC3"));
    CPPUNIT_ASSERT(!is_valid_utf8("\xE2\x82"));
    CPPUNIT_ASSERT(!is_valid_utf8("\xF0\x9F\x98"));
    CPPUNIT_ASSERT(!is_valid_utf8("\x80"));
    CPPUNIT_ASSERT(!is_valid_utf8("a\xBF"));
    CPPUNIT_ASSERT(!is_valid_utf8("\xC3(x"));
    CPPUNIT_ASSERT(!is_valid_utf8("\xE2\x28\xA1"));
  }

  void decode_yields_code_points() {
    std::vector<char32_t> cps;
    CPPUNIT_ASSERT(decode_utf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", cps));
    const std::vector<char32_t> want = {U'a', 0xE9, 0x20AC, 0x1F600};
    CPPUNIT_ASSERT(cps == want);
    cps.clear();
    CPPUNIT_ASSERT(!decode_utf8("a\xED\xA0\x80", cps));
  }

  void every_two_byte_prefix_agrees_with_decode() {
    // Validation and decoding apply one rule: for every lead and second byte, with
    // enough continuation bytes, they agree, and a decoded value re-encodes canonically.
    for (int a = 0; a < 256; ++a) {
      for (int b = 0; b < 256; ++b) {
        std::string s{static_cast<char>(a), static_cast<char>(b), '\x80', '\x80'};
        std::vector<char32_t> cps;
        const bool valid = is_valid_utf8(s);
        CPPUNIT_ASSERT_EQUAL(valid, decode_utf8(s, cps));
        if (!valid) continue;
        for (const char32_t cp : cps) {
          CPPUNIT_ASSERT(cp <= 0x10FFFF);
          CPPUNIT_ASSERT(cp < 0xD800 || cp > 0xDFFF);
        }
      }
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(utf8_test);

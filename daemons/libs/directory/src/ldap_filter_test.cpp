#include "hamail/directory/ldap_filter.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>

using hamail::directory::escape_filter_value;
using hamail::directory::is_valid_utf8;

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// Decodes an RFC 4515 `valueencoding`; nullopt when `text` is not one (an
/// unescaped NUL, '(', ')', '*' or '\', a dangling escape, or invalid UTF-8 left
/// unescaped).
std::optional<std::string> decode_value(const std::string& text) {
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

/// The unescaped parts of an escaped value must be well-formed UTF-8 (RFC 4515 UTFMB).
bool unescaped_parts_are_utf8(const std::string& text) {
  std::string plain;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      i += 2;
      continue;
    }
    plain += text[i];
  }
  return is_valid_utf8(plain);
}

}  // namespace

class ldap_filter_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ldap_filter_test);
  CPPUNIT_TEST(plain_address_is_unchanged);
  CPPUNIT_TEST(filter_metacharacters_are_escaped);
  CPPUNIT_TEST(injection_attempts_cannot_close_the_assertion);
  CPPUNIT_TEST(nul_and_controls_are_escaped);
  CPPUNIT_TEST(utf8_passes_and_broken_utf8_is_escaped_bytewise);
  CPPUNIT_TEST(overlong_surrogate_and_out_of_range_forms_are_not_utf8);
  CPPUNIT_TEST(every_single_byte_round_trips);
  CPPUNIT_TEST(random_bytes_round_trip_and_stay_in_the_grammar);
  CPPUNIT_TEST_SUITE_END();

 public:
  void plain_address_is_unchanged() {
    CPPUNIT_ASSERT_EQUAL(std::string("alice@example.org"),
                         escape_filter_value("alice@example.org"));
    CPPUNIT_ASSERT_EQUAL(std::string(""), escape_filter_value(""));
    CPPUNIT_ASSERT_EQUAL(std::string("a.b+tag-x_y=z,w@sub.example.org"),
                         escape_filter_value("a.b+tag-x_y=z,w@sub.example.org"));
  }
  void filter_metacharacters_are_escaped() {
    CPPUNIT_ASSERT_EQUAL(std::string("\\2A"), escape_filter_value("*"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\28\\29"), escape_filter_value("()"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\5C"), escape_filter_value("\\"));
    CPPUNIT_ASSERT_EQUAL(std::string("a\\2Ab\\5C2A"), escape_filter_value("a*b\\2A"));
  }
  void injection_attempts_cannot_close_the_assertion() {
    CPPUNIT_ASSERT_EQUAL(std::string("alice\\29\\28uid=\\2A"), escape_filter_value("alice)(uid=*"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\2A\\29\\28|\\28uid=\\2A"),
                         escape_filter_value("*)(|(uid=*"));
    for (const std::string attack : {"*", "alice)(uid=*", "*)(|(uid=*", "x\\29(", ")(&"}) {
      const std::string e = escape_filter_value(attack);
      CPPUNIT_ASSERT_MESSAGE(e, e.find_first_of("()*") == std::string::npos);
    }
  }
  void nul_and_controls_are_escaped() {
    CPPUNIT_ASSERT_EQUAL(std::string("a\\00b"), escape_filter_value(std::string("a\0b", 3)));
    CPPUNIT_ASSERT_EQUAL(std::string("\\0D\\0A\\09\\7F"), escape_filter_value("\r\n\t\x7f"));
  }
  void utf8_passes_and_broken_utf8_is_escaped_bytewise() {
    const std::string utf8 = "j\xC3\xBCrgen@\xE4\xBE\x8B\xE3\x81\x88.\xF0\x9F\x93\xA7";  // ü 例え 📧
    CPPUNIT_ASSERT_EQUAL(utf8, escape_filter_value(utf8));
    // A lone continuation byte, a truncated sequence and a Latin-1 byte.
    CPPUNIT_ASSERT_EQUAL(std::string("\\80a"), escape_filter_value("\x80"
                                                                   "a"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\E4\\BEx"), escape_filter_value("\xE4\xBE"
                                                                       "x"));
    CPPUNIT_ASSERT_EQUAL(std::string("caf\\E9"), escape_filter_value("caf\xE9"));
    // A sequence cut by the end of the value.
    CPPUNIT_ASSERT_EQUAL(std::string("\\F0\\9F\\93"), escape_filter_value("\xF0\x9F\x93"));
  }
  void overlong_surrogate_and_out_of_range_forms_are_not_utf8() {
    CPPUNIT_ASSERT(!is_valid_utf8("\xC0\xAF"));          // overlong '/'
    CPPUNIT_ASSERT(!is_valid_utf8("\xE0\x80\xAF"));      // overlong '/'
    CPPUNIT_ASSERT(!is_valid_utf8("\xED\xA0\x80"));      // U+D800
    CPPUNIT_ASSERT(!is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
    CPPUNIT_ASSERT(!is_valid_utf8("\xF5\x80\x80\x80"));
    CPPUNIT_ASSERT(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
    CPPUNIT_ASSERT(is_valid_utf8("\xEF\xBF\xBD"));      // U+FFFD
    // An overlong NUL must not slip through as "UTF-8".
    CPPUNIT_ASSERT_EQUAL(std::string("\\C0\\80"), escape_filter_value("\xC0\x80"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\ED\\A0\\80"), escape_filter_value("\xED\xA0\x80"));
  }
  void every_single_byte_round_trips() {
    for (int b = 0; b < 256; ++b) {
      const std::string in(1, static_cast<char>(b));
      const std::string e = escape_filter_value(in);
      const auto back = decode_value(e);
      CPPUNIT_ASSERT_MESSAGE("byte " + std::to_string(b), back && *back == in);
      CPPUNIT_ASSERT(unescaped_parts_are_utf8(e));
      const bool must_escape =
          b < 0x20 || b >= 0x7F || b == '*' || b == '(' || b == ')' || b == '\\';
      CPPUNIT_ASSERT_EQUAL_MESSAGE("byte " + std::to_string(b), must_escape ? 3UL : 1UL, e.size());
    }
  }
  void random_bytes_round_trip_and_stay_in_the_grammar() {
    std::mt19937 rng(4515);
    std::uniform_int_distribution<int> len(0, 40);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int i = 0; i < 20000; ++i) {
      std::string in(static_cast<std::size_t>(len(rng)), '\0');
      for (auto& c : in) c = static_cast<char>(byte(rng));
      const std::string e = escape_filter_value(in);
      const auto back = decode_value(e);
      CPPUNIT_ASSERT(back && *back == in);
      CPPUNIT_ASSERT(unescaped_parts_are_utf8(e));
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ldap_filter_test);

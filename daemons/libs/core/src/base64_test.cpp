#include "hamail/core/base64.hpp"

#include <cppunit/extensions/HelperMacros.h>

using hamail::base64_decode;
using hamail::base64_encode;

class base64_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(base64_test);
  CPPUNIT_TEST(rfc4648_vectors_encode_and_decode);
  CPPUNIT_TEST(every_byte_value_round_trips);
  CPPUNIT_TEST(length_not_multiple_of_four_rejected);
  CPPUNIT_TEST(padding_in_the_middle_rejected);
  CPPUNIT_TEST(characters_outside_alphabet_rejected);
  CPPUNIT_TEST(non_canonical_trailing_bits_rejected);
  CPPUNIT_TEST(sasl_plain_response_decodes_with_nuls);
  CPPUNIT_TEST_SUITE_END();

 public:
  void rfc4648_vectors_encode_and_decode() {
    const std::pair<const char*, const char*> v[] = {{"", ""},
                                                     {"f", "Zg=="},
                                                     {"fo", "Zm8="},
                                                     {"foo", "Zm9v"},
                                                     {"foob", "Zm9vYg=="},
                                                     {"fooba", "Zm9vYmE="},
                                                     {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, enc] : v) {
      CPPUNIT_ASSERT_EQUAL(std::string(enc), base64_encode(plain));
      auto d = base64_decode(enc);
      CPPUNIT_ASSERT(d.has_value());
      CPPUNIT_ASSERT_EQUAL(std::string(plain), *d);
    }
  }
  void every_byte_value_round_trips() {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += 37) {
      auto d = base64_decode(base64_encode(all.substr(0, n)));
      CPPUNIT_ASSERT(d && *d == all.substr(0, n));
    }
  }
  void length_not_multiple_of_four_rejected() {
    CPPUNIT_ASSERT(!base64_decode("Zm9"));
    CPPUNIT_ASSERT(!base64_decode("Zm9vY"));
  }
  void padding_in_the_middle_rejected() {
    CPPUNIT_ASSERT(!base64_decode("Zg==Zm9v"));
    CPPUNIT_ASSERT(!base64_decode("Z==="));
    CPPUNIT_ASSERT(!base64_decode("Zm=v"));
  }
  void characters_outside_alphabet_rejected() {
    CPPUNIT_ASSERT(!base64_decode("Zm9v\r\n"));
    CPPUNIT_ASSERT(!base64_decode("Zm 9"));
    CPPUNIT_ASSERT(!base64_decode("Zm-_"));
  }
  void non_canonical_trailing_bits_rejected() {
    CPPUNIT_ASSERT(base64_decode("Zg=="));
    CPPUNIT_ASSERT(!base64_decode("Zh=="));
    CPPUNIT_ASSERT(!base64_decode("Zm9="));
  }
  void sasl_plain_response_decodes_with_nuls() {
    auto d = base64_decode("AGFsaWNlAHNlY3JldA==");
    CPPUNIT_ASSERT(d.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("\0alice\0secret", 13), *d);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(base64_test);

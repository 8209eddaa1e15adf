// The POP3 wire size counter, against a model of the POP3 dot-stuffer's line ends.

#include "wire_size.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace hamail::store::detail {

namespace {

/// What POP3 RETR sends for `message` before dot-stuffing and the terminator,
/// as the dot-stuffer builds it: every LF (with or without its CR) as CRLF, a
/// CR not before LF as content, CRLF after a last line without a line end.
std::string wire_form(std::string_view message) {
  std::string out;
  bool line_started = false;
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') continue;
    if (c == '\n') {
      out += "\r\n";
      line_started = false;
      continue;
    }
    out += c;
    line_started = true;
  }
  if (line_started) out += "\r\n";
  return out;
}

/// The wire size counted over `pieces` written one after the other.
std::uint64_t counted(std::initializer_list<std::string_view> pieces) {
  wire_counter c;
  std::uint64_t size = 0;
  for (auto p : pieces) {
    c.add(p);
    size += p.size();
  }
  return c.wire_size(size);
}

}  // namespace

class wire_size_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(wire_size_test);
  CPPUNIT_TEST(crlf_message_has_its_own_size);
  CPPUNIT_TEST(bare_lf_counts_as_crlf);
  CPPUNIT_TEST(missing_final_line_end_adds_crlf);
  CPPUNIT_TEST(crlf_split_across_writes_is_one_line_end);
  CPPUNIT_TEST(every_short_message_at_every_split_matches_the_wire_form);
  CPPUNIT_TEST_SUITE_END();

 public:
  void crlf_message_has_its_own_size() {
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{0}, wire_size_of(""));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, wire_size_of("\r\n"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{17}, wire_size_of("Subject: x\r\n\r\nb\r\n"));
    // A CR before CRLF is content: the line end is still one CRLF.
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4}, wire_size_of("a\r\r\n"));
  }

  void bare_lf_counts_as_crlf() {
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{6}, wire_size_of("a\nb\n"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, wire_size_of("\n"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{6}, wire_size_of("\n\n\n"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{6}, wire_size_of("a\r\nb\n"));
    // LF CR: the CR starts the next line and is not a line end.
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{7}, wire_size_of("a\n\rb"));
  }

  void missing_final_line_end_adds_crlf() {
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, wire_size_of("abc"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{6}, wire_size_of("abc\r"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{3}, wire_size_of("\r"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{7}, wire_size_of("a\r\nbc"));
  }

  void crlf_split_across_writes_is_one_line_end() {
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{6}, counted({"a\r", "\nb\r\n"}));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, counted({"a\r", "", "\n", "\r\n"}));
    // An empty write does not forget the octet before it.
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, counted({"\r", "", "\n"}));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{3}, counted({"a", "\n"}));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{0}, counted({"", ""}));
  }

  void every_short_message_at_every_split_matches_the_wire_form() {
    // Every message of up to 7 octets over {a, CR, LF, '.'}, written in three
    // pieces cut at every pair of positions.
    constexpr char alphabet[] = {'a', '\r', '\n', '.'};
    std::size_t checked = 0;
    for (std::size_t len = 0; len <= 7; ++len) {
      std::size_t combos = 1;
      for (std::size_t i = 0; i < len; ++i) combos *= 4;
      for (std::size_t n = 0; n < combos; ++n) {
        std::string m;
        for (std::size_t i = 0, k = n; i < len; ++i, k /= 4) m += alphabet[k % 4];
        const auto want = static_cast<std::uint64_t>(wire_form(m).size());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(m, want, wire_size_of(m));
        const std::string_view v(m);
        for (std::size_t a = 0; a <= len; ++a)
          for (std::size_t b = a; b <= len; ++b) {
            CPPUNIT_ASSERT_EQUAL_MESSAGE(
                m, want, counted({v.substr(0, a), v.substr(a, b - a), v.substr(b)}));
            ++checked;
          }
      }
    }
    CPPUNIT_ASSERT(checked > 100000);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(wire_size_test);

}  // namespace hamail::store::detail

#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hamail/protocol/imap/writer.hpp"

namespace hamail::imap {
namespace {

std::string str(std::string_view v, write_options o = {}) {
  std::string out;
  append_string(out, v, o);
  return out;
}

class writer_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(writer_test);
  CPPUNIT_TEST(plain_text_is_quoted_with_escapes);
  CPPUNIT_TEST(cr_lf_nul_force_a_literal);
  CPPUNIT_TEST(eight_bit_is_literal_unless_utf8_mode_and_valid);
  CPPUNIT_TEST(long_value_becomes_literal_at_the_limit);
  CPPUNIT_TEST(nul_uses_literal8_only_when_allowed);
  CPPUNIT_TEST(literal_headers);
  CPPUNIT_TEST(nstring_writes_nil_for_no_value_and_quotes_the_word_nil);
  CPPUNIT_TEST(astring_is_bare_only_when_safe);
  CPPUNIT_TEST(numbers);
  CPPUNIT_TEST(list_writer_nests_and_separates);
  CPPUNIT_TEST_SUITE_END();

 public:
  void plain_text_is_quoted_with_escapes() {
    CPPUNIT_ASSERT_EQUAL(std::string("\"Hello\""), str("Hello"));
    CPPUNIT_ASSERT_EQUAL(std::string("\"\""), str(""));
    CPPUNIT_ASSERT_EQUAL(std::string("\"a\\\"b\\\\c\""), str("a\"b\\c"));
    CPPUNIT_ASSERT_EQUAL(std::string("\"tab\there\""), str("tab\there"));
  }
  void cr_lf_nul_force_a_literal() {
    CPPUNIT_ASSERT_EQUAL(std::string("{3}\r\na\rb"), str("a\rb"));
    CPPUNIT_ASSERT_EQUAL(std::string("{3}\r\na\nb"), str("a\nb"));
    CPPUNIT_ASSERT_EQUAL(std::string("{3}\r\na\0b", 8), str(std::string("a\0b", 3)));
    CPPUNIT_ASSERT(!can_quote("x\r\n"));
  }
  void eight_bit_is_literal_unless_utf8_mode_and_valid() {
    const std::string u = "Gr\xc3\xbc\xc3\x9f";
    CPPUNIT_ASSERT_EQUAL("{" + std::to_string(u.size()) + "}\r\n" + u, str(u));
    CPPUNIT_ASSERT_EQUAL("\"" + u + "\"", str(u, {.utf8 = true}));
    const std::string bad = "bad\xff";
    CPPUNIT_ASSERT_EQUAL(std::string("{4}\r\n") + bad, str(bad, {.utf8 = true}));
  }
  void long_value_becomes_literal_at_the_limit() {
    const write_options o{.max_quoted = 8};
    CPPUNIT_ASSERT_EQUAL(std::string("\"12345678\""), str("12345678", o));
    CPPUNIT_ASSERT_EQUAL(std::string("{9}\r\n123456789"), str("123456789", o));
  }
  void nul_uses_literal8_only_when_allowed() {
    const std::string v("a\0", 2);
    CPPUNIT_ASSERT_EQUAL(std::string("~{2}\r\n") + v, str(v, {.literal8 = true}));
    CPPUNIT_ASSERT_EQUAL(std::string("{2}\r\n") + v, str(v));
    // literal8 is not used when a plain literal will do
    CPPUNIT_ASSERT_EQUAL(std::string("{2}\r\na\n"), str("a\n", {.literal8 = true}));
  }
  void literal_headers() {
    std::string out;
    append_literal_header(out, 0);
    append_literal_header(out, 1234567, true);
    CPPUNIT_ASSERT_EQUAL(std::string("{0}\r\n~{1234567}\r\n"), out);
    out.clear();
    append_literal(out, "");
    CPPUNIT_ASSERT_EQUAL(std::string("{0}\r\n"), out);
  }
  void nstring_writes_nil_for_no_value_and_quotes_the_word_nil() {
    std::string out;
    append_nstring(out, std::nullopt);
    out += ' ';
    append_nstring(out, std::string_view("NIL"));
    out += ' ';
    append_astring(out, "nil");
    CPPUNIT_ASSERT_EQUAL(std::string("NIL \"NIL\" \"nil\""), out);
  }
  void astring_is_bare_only_when_safe() {
    auto a = [](std::string_view v) {
      std::string out;
      append_astring(out, v);
      return out;
    };
    CPPUNIT_ASSERT_EQUAL(std::string("INBOX"), a("INBOX"));
    CPPUNIT_ASSERT_EQUAL(std::string("a]b"), a("a]b"));  // ']' is an ASTRING-CHAR
    CPPUNIT_ASSERT_EQUAL(std::string("\"\""), a(""));
    CPPUNIT_ASSERT_EQUAL(std::string("\"a b\""), a("a b"));
    CPPUNIT_ASSERT_EQUAL(std::string("\"a*\""), a("a*"));
    CPPUNIT_ASSERT_EQUAL(std::string("\"a%\""), a("a%"));
    CPPUNIT_ASSERT_EQUAL(std::string("\"(x\""), a("(x"));
    CPPUNIT_ASSERT_EQUAL(std::string("\"{1}\""), a("{1}"));
    CPPUNIT_ASSERT_EQUAL(std::string("\"\\\\x\""), a("\\x"));
    CPPUNIT_ASSERT(is_atom("\\Seen") == false);
    CPPUNIT_ASSERT(is_atom("$Junk"));
    CPPUNIT_ASSERT(!is_atom("a]"));
    CPPUNIT_ASSERT(!is_atom("a\x7f"));
  }
  void numbers() {
    std::string out;
    append_number(out, 0);
    out += ' ';
    append_number(out, 18446744073709551615ull);
    CPPUNIT_ASSERT_EQUAL(std::string("0 18446744073709551615"), out);
  }
  void list_writer_nests_and_separates() {
    std::string out = "* 1 FETCH ";
    list_writer w(out);
    w.atom("FLAGS").open().atom("\\Seen").atom("\\Answered").close();
    w.atom("UID").number(42).atom("X").nstring(std::nullopt).atom("Y").string("a b");
    w.atom("E").open().close();
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), w.depth());
    w.close();
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), w.depth());
    CPPUNIT_ASSERT_EQUAL(std::string("* 1 FETCH (FLAGS (\\Seen \\Answered) UID 42 X NIL Y \"a "
                                     "b\" E ())"),
                         out);
    std::string lit;
    list_writer(lit).string("a\r\nb").astring("Sent").nil().raw("BODY[] {0}\r\n").close();
    CPPUNIT_ASSERT_EQUAL(std::string("({4}\r\na\r\nb Sent NIL BODY[] {0}\r\n)"), lit);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(writer_test);

}  // namespace
}  // namespace hamail::imap

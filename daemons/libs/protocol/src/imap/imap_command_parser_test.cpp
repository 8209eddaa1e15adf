#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "imap_test_support.hpp"

namespace hamail::imap {
namespace {

using test::check_every_split;
using test::parse_whole;
using V = std::vector<std::string>;
using namespace std::string_literals;

std::string show(const V& v) {
  std::string out;
  for (const auto& s : v) out += "[" + s + "]";
  return out;
}

#define EXPECT(input, ...) CPPUNIT_ASSERT_EQUAL(show(V{__VA_ARGS__}), show(parse_whole(input)))

class command_parser_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(command_parser_test);
  CPPUNIT_TEST(simple_commands_and_case);
  CPPUNIT_TEST(atoms_numbers_nil_quoted);
  CPPUNIT_TEST(uid_prefix_names_the_command);
  CPPUNIT_TEST(lists_nest_and_empty_lists);
  CPPUNIT_TEST(sections_and_partials);
  CPPUNIT_TEST(literals_sync_nonsync_literal8_and_size_zero);
  CPPUNIT_TEST(literal_errors);
  CPPUNIT_TEST(huge_sync_literal_is_refused_before_continuation);
  CPPUNIT_TEST(non_sync_literal_limits);
  CPPUNIT_TEST(skipped_line_still_skips_its_non_sync_literals);
  CPPUNIT_TEST(line_too_long_is_skipped_and_bad);
  CPPUNIT_TEST(nesting_to_the_limit_and_one_past);
  CPPUNIT_TEST(argument_count_limit);
  CPPUNIT_TEST(eight_bit_needs_utf8_accept);
  CPPUNIT_TEST(tag_and_name_errors);
  CPPUNIT_TEST(command_total_limit_counts_line_octets);
  CPPUNIT_TEST(line_mode_returns_raw_lines);
  CPPUNIT_TEST(set_limits_takes_effect_after_login);
  CPPUNIT_TEST(reset_drops_a_partial_command);
  CPPUNIT_TEST(every_error_case_splits_the_same);
  CPPUNIT_TEST(real_sessions_split_at_every_byte);
  CPPUNIT_TEST_SUITE_END();

 public:
  void simple_commands_and_case() {
    EXPECT("a1 NOOP\r\n", "a1 NOOP");
    EXPECT("a1 noop\r\nA.2 capability\r\n", "a1 NOOP", "A.2 CAPABILITY");
    EXPECT("t] LOGOUT\n", "t] LOGOUT");  // bare LF accepted, ']' allowed in a tag
  }
  void atoms_numbers_nil_quoted() {
    EXPECT("a LOGIN fred \"pass word\"\r\n", "a LOGIN fred q'pass word'");
    EXPECT("a X 0 42 18446744073709551615 18446744073709551616 nil NIL\r\n",
           "a X #0 #42 #18446744073709551615 18446744073709551616 NIL NIL");
    EXPECT("a X \"\" \"a\\\"b\\\\c\"\r\n", "a X q'' q'a\"b\\c'");
    EXPECT("a LIST \"\" *\r\na LIST \"\" %/a]b\r\n", "a LIST q'' *", "a LIST q'' %/a]b");
    EXPECT("a STORE 1:* +FLAGS (\\Seen $Junk)\r\n", "a STORE 1:* +FLAGS (\\Seen $Junk)");
    EXPECT("a SELECT foo[bar]\r\n", "a SELECT foo[bar]");  // '[' only opens a FETCH section
  }
  void uid_prefix_names_the_command() {
    EXPECT("a uid fetch 1:2 FLAGS\r\n", "a UID FETCH 1:2 FLAGS");
    EXPECT("a UID\r\n", "err:syntax:bad:a");
    EXPECT("a UID (x)\r\n", "err:syntax:bad:a");
  }
  void lists_nest_and_empty_lists() {
    EXPECT("a X () (a (b ()) \"c\") x\r\n", "a X () (a (b ()) q'c') x");
    EXPECT("a X (a\r\n", "err:syntax:bad:a");
    EXPECT("a X a)\r\n", "err:syntax:bad:a");
    EXPECT("a X (a)(b)\r\n", "err:syntax:bad:a");
    EXPECT("a X \"a\"b\r\n", "err:syntax:bad:a");
  }
  void sections_and_partials() {
    EXPECT("a FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.1024>)\r\n",
           "a FETCH #1 (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.1024>)");
    EXPECT("a FETCH 1 body[]\r\n", "a FETCH #1 body[]");
    EXPECT("a FETCH 1 (BODY[1.2.MIME] BINARY[1]<5.10> BINARY.SIZE[2])\r\n",
           "a FETCH #1 (BODY[1.2.MIME] BINARY[#1]<5.10> BINARY.SIZE[#2])");
    EXPECT("a FETCH 1 BODY[\r\n", "err:syntax:bad:a");
    EXPECT("a FETCH 1 BODY[]<0.0>\r\n", "err:syntax:bad:a");
    EXPECT("a FETCH 1 BODY[]<5>\r\n", "err:syntax:bad:a");
    EXPECT("a FETCH 1 BODY[]x\r\n", "err:syntax:bad:a");
  }
  void literals_sync_nonsync_literal8_and_size_zero() {
    EXPECT("a LOGIN {4}\r\nfred {0}\r\n\r\n", "+", "+", "a LOGIN {4}fred {0}");
    EXPECT("a LOGIN {4+}\r\nfred {0+}\r\n\r\n", "a LOGIN {4}fred {0}");
    EXPECT("a APPEND INBOX ~{3+}\r\na\0b\r\n"s, "a APPEND INBOX ~{3}a\0b"s);
    EXPECT("a APPEND INBOX ~{3}\r\nabc\r\n", "+", "a APPEND INBOX ~{3}abc");
    EXPECT("a X {2}\r\n\r\n\r\n", "+", "a X {2}\r\n");
    EXPECT("a X ~x\r\n", "a X ~x");
  }
  void literal_errors() {
    EXPECT("a X {2}x\r\n", "err:syntax:bad:a");
    EXPECT("a X {}\r\n", "err:syntax:bad:a");
    EXPECT("a X {2+x}\r\n", "err:syntax:bad:a");
    EXPECT("a X {2\r\nb NOOP\r\n", "err:syntax:bad:a", "b NOOP");
    EXPECT("a X {2}\r\nxy)\r\n", "+", "err:syntax:bad:a");
    // NUL only in literal8; the rest of the line is skipped
    EXPECT("a X {1}\r\n\0 y\r\nb NOOP\r\n"s, "+", "err:nul_in_literal:bad:a", "b NOOP");
  }
  void huge_sync_literal_is_refused_before_continuation() {
    const command_limits l{.max_literal = 100, .max_command = 1000};
    CPPUNIT_ASSERT_EQUAL(show(V{"err:literal_too_large:bad:a", "b NOOP"}),
                         show(parse_whole("a APPEND INBOX {101}\r\nb NOOP\r\n", l)));
    CPPUNIT_ASSERT_EQUAL(
        show(V{"+", "a APPEND INBOX {100}" + std::string(100, 'x')}),
        show(parse_whole("a APPEND INBOX {100}\r\n" + std::string(100, 'x') + "\r\n", l)));
    CPPUNIT_ASSERT_EQUAL(show(V{"err:literal_too_large:bad:a"}),
                         show(parse_whole("a APPEND INBOX {99999999999999999999999}\r\n", l)));
    // the command total: two literals that each fit but not together
    const command_limits t{.max_literal = 100, .max_command = 150};
    CPPUNIT_ASSERT_EQUAL(show(V{"+", "err:command_too_large:bad:a"}),
                         show(parse_whole("a X {90}\r\n" + std::string(90, 'x') + " {90}\r\n", t)));
  }
  void non_sync_literal_limits() {
    const command_limits l{.max_literal = 100, .max_command = 1000};
    // over max_literal: the octets can't sensibly be skipped, so the connection closes
    CPPUNIT_ASSERT_EQUAL(show(V{"err:literal_too_large:close:a"}),
                         show(parse_whole("a APPEND INBOX {101+}\r\n" + std::string(101, 'x'), l)));
    // LITERAL-: over 4096 is refused and skipped (RFC 7888 §4)
    command_limits minus{.non_sync = literal_mode::literal_minus};
    const std::string big(4097, 'x');
    CPPUNIT_ASSERT_EQUAL(
        show(V{"err:non_sync_too_large:bad:a", "b NOOP"}),
        show(parse_whole("a APPEND INBOX {4097+}\r\n" + big + " {1+}\r\nz\r\nb NOOP\r\n", minus)));
    CPPUNIT_ASSERT_EQUAL(
        show(V{"a APPEND INBOX {4096}" + big.substr(1)}),
        show(parse_whole("a APPEND INBOX {4096+}\r\n" + big.substr(1) + "\r\n", minus)));
    command_limits none{.non_sync = literal_mode::synchronizing_only};
    CPPUNIT_ASSERT_EQUAL(show(V{"err:non_sync_not_allowed:bad:a", "b NOOP"}),
                         show(parse_whole("a LOGIN {3+}\r\nabc x\r\nb NOOP\r\n", none)));
  }
  void skipped_line_still_skips_its_non_sync_literals() {
    // refused early in the line; a {n+} at its end still carries octets to skip
    EXPECT("a X ) {5+}\r\nb NOO\r\nc NOOP\r\n", "err:syntax:bad:a", "c NOOP");
    EXPECT("a X ) {5}\r\nb NOOP\r\n", "err:syntax:bad:a", "b NOOP");
    EXPECT("a X ) {9999999999+}\r\nxx", "err:literal_too_large:close:a");
  }
  void line_too_long_is_skipped_and_bad() {
    const command_limits l{.max_line = 20};
    CPPUNIT_ASSERT_EQUAL(show(V{"a X #12345678901234"}),
                         show(parse_whole("a X 12345678901234\r\n", l)));  // 20 with CRLF
    CPPUNIT_ASSERT_EQUAL(show(V{"err:line_too_long:bad:a", "b NOOP"}),
                         show(parse_whole("a X 1234567890123456\r\nb NOOP\r\n", l)));
    // the limit is per line segment: literals start a new one
    CPPUNIT_ASSERT_EQUAL(show(V{"+", "a X {3}abc #12345678901234567"}),
                         show(parse_whole("a X {3}\r\nabc 12345678901234567\r\n", l)));
    // an endless line holds no memory
    command_parser p(l);
    for (int i = 0; i < 1000; ++i) {
      CPPUNIT_ASSERT(p.feed(std::string(100, 'x')).status == parse_status::need_more);
      CPPUNIT_ASSERT_EQUAL(std::size_t(0), p.buffered());
    }
    const auto s = p.feed("\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::error);
    CPPUNIT_ASSERT_EQUAL(std::string(""), s.error->tag);
  }
  void nesting_to_the_limit_and_one_past() {
    const command_limits l{.max_depth = 3};
    CPPUNIT_ASSERT_EQUAL(show(V{"a X (((x)))"}), show(parse_whole("a X (((x)))\r\n", l)));
    CPPUNIT_ASSERT_EQUAL(show(V{"err:too_deep:bad:a", "b NOOP"}),
                         show(parse_whole("a X ((((x))))\r\nb NOOP\r\n", l)));
    // a section counts as a level
    CPPUNIT_ASSERT_EQUAL(show(V{"err:too_deep:bad:a"}),
                         show(parse_whole("a FETCH 1 ((BODY[HEADER.FIELDS (a)]))\r\n", l)));
  }
  void argument_count_limit() {
    const command_limits l{.max_arguments = 4};
    CPPUNIT_ASSERT_EQUAL(show(V{"a X a b (c)"}), show(parse_whole("a X a b (c)\r\n", l)));
    CPPUNIT_ASSERT_EQUAL(show(V{"err:too_many_arguments:bad:a"}),
                         show(parse_whole("a X a b (c d)\r\n", l)));
    CPPUNIT_ASSERT_EQUAL(show(V{"err:too_many_arguments:bad:a"}),
                         show(parse_whole("a X a b c \"d\" e\r\n", l)));
    CPPUNIT_ASSERT_EQUAL(show(V{"err:too_many_arguments:bad:a"}),
                         show(parse_whole("a X a b c d {1+}\r\nz\r\n", l)));
  }
  void eight_bit_needs_utf8_accept() {
    const std::string u = "a SELECT \"Entw\xc3\xbcrfe\"\r\n";
    EXPECT(u, "err:eight_bit_not_allowed:bad:a");
    CPPUNIT_ASSERT_EQUAL(show(V{"a SELECT q'Entw\xc3\xbcrfe'"}), show(parse_whole(u, {}, true)));
    CPPUNIT_ASSERT_EQUAL(show(V{"err:bad_utf8:bad:a"}),
                         show(parse_whole("a SELECT \"x\xff\"\r\n", {}, true)));
    EXPECT("a SELECT Entw\xc3\xbcrfe\r\n", "err:eight_bit_not_allowed:bad:a");
    // 8-bit in a literal is always fine
    EXPECT("a X {2+}\r\n\xc3\xbc\r\n", "a X {2}\xc3\xbc");
  }
  void tag_and_name_errors() {
    EXPECT("\r\n", "err:empty_line:bad:");
    EXPECT("\r\na NOOP\r\n", "err:empty_line:bad:", "a NOOP");
    EXPECT(" NOOP\r\n", "err:bad_tag:bad:");
    EXPECT("a+b NOOP\r\n", "err:bad_tag:bad:");
    EXPECT("a*\r\n", "err:bad_tag:bad:");
    EXPECT("a\r\n", "err:syntax:bad:a");
    EXPECT("a \r\n", "err:syntax:bad:a");
    EXPECT("a NO(OP\r\n", "err:syntax:bad:a");
    EXPECT("a NOOP\rx\r\n", "err:syntax:bad:a");
    EXPECT("a X \"abc\r\n", "err:syntax:bad:a");
    EXPECT("a X \"a\\b\"\r\n", "err:syntax:bad:a");
    EXPECT("a X a\0b\r\n"s, "err:syntax:bad:a");
  }
  void command_total_limit_counts_line_octets() {
    const command_limits l{.max_line = 100, .max_command = 30};
    CPPUNIT_ASSERT_EQUAL(show(V{"+", "err:command_too_large:bad:a"}),
                         show(parse_whole("a X {10}\r\n0123456789 0123456789012\r\n", l)));
  }
  void line_mode_returns_raw_lines() {
    command_parser p;
    const auto a = test::feed_all(p, {"a IDLE\r\nDONE\r\nb NOOP\r\n"});
    CPPUNIT_ASSERT_EQUAL(show(V{"a IDLE", "line:DONE", "b NOOP"}), show(a));
    p.expect_line();
    CPPUNIT_ASSERT_EQUAL(show(V{"line:", "c NOOP"}), show(test::feed_all(p, {"\r\nc NOOP\r\n"})));
    command_parser q(command_limits{.max_line = 20});
    q.expect_line();
    CPPUNIT_ASSERT_EQUAL(show(V{"err:line_too_long:bad:", "c NOOP"}),
                         show(test::feed_all(q, {std::string(30, 'x') + "\r\nc NOOP\r\n"})));
  }
  void set_limits_takes_effect_after_login() {
    command_parser p(command_limits::before_login());
    CPPUNIT_ASSERT_EQUAL(show(V{"err:literal_too_large:bad:a"}),
                         show(test::feed_all(p, {"a APPEND INBOX {5000}\r\n"})));
    p.set_limits(command_limits{});
    CPPUNIT_ASSERT_EQUAL(show(V{"+", "partial"}),
                         show(test::feed_all(p, {"a APPEND INBOX {5000}\r\n"})));
  }
  void reset_drops_a_partial_command() {
    command_parser p;
    CPPUNIT_ASSERT(p.feed("a LOGIN fr").status == parse_status::need_more);
    CPPUNIT_ASSERT(p.buffered() > 0);
    p.reset();
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), p.buffered());
    CPPUNIT_ASSERT_EQUAL(show(V{"b NOOP"}), show(test::feed_all(p, {"b NOOP\r\n"})));
  }
  void every_error_case_splits_the_same() {
    const char* cases[] = {
        "a X ) {5+}\r\nb NOO\r\nc NOOP\r\n",
        "a X (a\r\nb NOOP\r\n",
        "\r\na NOOP\r\n",
        "a X {2}\r\nxy)\r\nb NOOP\r\n",
        "a X \"abc\r\nb NOOP\r\n",
        "a FETCH 1 BODY[]<0.0>\r\nb NOOP\r\n",
        "a X {2\r\nb NOOP\r\n",
    };
    for (const char* c : cases) check_every_split(c, parse_whole(c));
    const command_limits l{.max_line = 20,
                           .max_literal = 10,
                           .max_depth = 2,
                           .max_arguments = 6,
                           .non_sync = literal_mode::literal_minus};
    const char* limited[] = {
        "a X 1234567890123456\r\nb NOOP\r\n",
        "a X {11}\r\nb NOOP\r\n",
        "a X (((a)))\r\nb NOOP\r\n",
        "a X 1 2 3 4 5 6 7\r\nb NOOP\r\n",
        "a X {3+}\r\nabc\r\nb NOOP\r\n",
        "a X ) {3+}\r\nabc\r\nb NOOP\r\n",
        "a X {11+}\r\n01234567890\r\nb NOOP\r\n",
    };
    for (const char* c : limited) check_every_split(c, parse_whole(c, l), l);
  }
  void real_sessions_split_at_every_byte() {
    const std::string session =
        "a1 CAPABILITY\r\n"
        "a2 LOGIN \"fred\" {6}\r\nsecret\r\n"
        "a3 SELECT inbox\r\n"
        "a4 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.1024>)\r\n"
        "a5 APPEND Sent (\\Seen) \"02-Dec-2026 07:20:35 +0000\" {22}\r\n"
        "Subject: hi\r\n\r\nHello\r\n\r\n"
        "a6 UID STORE 1,3:5,7:* +FLAGS.SILENT (\\Deleted $Junk)\r\n"
        "a7 SEARCH CHARSET UTF-8 OR (FROM \"bob\" NOT SEEN) SUBJECT {3+}\r\nfoo UID 1:*\r\n"
        "a8 IDLE\r\nDONE\r\n"
        "a9 LOGOUT\r\n";
    const V expected{
        "a1 CAPABILITY",
        "+",
        "a2 LOGIN q'fred' {6}secret",
        "a3 SELECT inbox",
        "a4 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.1024>)",
        "+",
        "a5 APPEND Sent (\\Seen) q'02-Dec-2026 07:20:35 +0000' {22}Subject: hi\r\n\r\nHello\r\n",
        "a6 UID STORE 1,3:5,7:* +FLAGS.SILENT (\\Deleted $Junk)",
        "a7 SEARCH CHARSET UTF-8 OR (FROM q'bob' NOT SEEN) SUBJECT {3}foo UID 1:*",
        "a8 IDLE",
        "line:DONE",
        "a9 LOGOUT",
    };
    CPPUNIT_ASSERT_EQUAL(show(expected), show(parse_whole(session)));
    check_every_split(session, expected);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(command_parser_test);

}  // namespace
}  // namespace hamail::imap

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "hamail/protocol/smtp/reply_parser.hpp"
#include "hamail/test/split.hpp"

namespace hamail::smtp {
namespace {

using hamail::test::cut;

/// Renders a step: "250|2.1.5|line1|line2" or "err:<name>".
std::string render(const reply_step& s) {
  if (s.status == parse_status::error) return "err:" + std::string(to_string(s.error));
  std::string out = std::to_string(s.reply->code) + "|" + s.reply->enhanced;
  for (const auto& l : s.reply->lines) out += "|" + l;
  return out;
}

/// Feeds pieces the way the client does (keeping unconsumed octets) and
/// checks the feed contract; "partial" at the end when a reply is unfinished.
std::vector<std::string> feed_all(reply_parser& p, const std::vector<std::string_view>& pieces) {
  std::vector<std::string> out;
  std::string pending;
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto s = p.feed(view);
      CPPUNIT_ASSERT(s.consumed <= view.size());
      if (s.status == parse_status::need_more) {
        CPPUNIT_ASSERT_EQUAL(view.size(), s.consumed);
        view = {};
        break;
      }
      CPPUNIT_ASSERT(s.consumed > 0);
      CPPUNIT_ASSERT((s.status == parse_status::complete) == s.reply.has_value());
      out.push_back(render(s));
      view.remove_prefix(s.consumed);
    }
    pending.assign(view);
  }
  if (p.in_reply()) out.emplace_back("partial");
  return out;
}

/// Asserts that the input gives `expected` whole, at every 2-way and every 3-way split, and byte by
/// byte.
void check_every_split(std::string_view in, const std::vector<std::string>& expected,
                       reply_limits limits = {}) {
  for (std::size_t a = 0; a <= in.size(); ++a) {
    for (std::size_t b = a; b <= in.size(); ++b) {
      reply_parser p(limits);
      const auto got = feed_all(p, cut(in, {a, b}));
      CPPUNIT_ASSERT_MESSAGE(
          "split at " + std::to_string(a) + "," + std::to_string(b) + " of " + std::string(in),
          got == expected);
    }
  }
  std::vector<std::size_t> every;
  for (std::size_t c = 1; c < in.size(); ++c) every.push_back(c);
  reply_parser p(limits);
  CPPUNIT_ASSERT_MESSAGE("byte by byte: " + std::string(in),
                         feed_all(p, cut(in, every)) == expected);
}

class reply_parser_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(reply_parser_test);
  CPPUNIT_TEST(single_line_with_enhanced_code_at_every_split);
  CPPUNIT_TEST(multi_line_ehlo_reply_at_every_split);
  CPPUNIT_TEST(repeated_enhanced_code_is_stripped_from_every_line);
  CPPUNIT_TEST(enhanced_code_of_other_class_is_text);
  CPPUNIT_TEST(code_alone_and_code_with_empty_text);
  CPPUNIT_TEST(pipelined_replies_come_out_one_per_feed);
  CPPUNIT_TEST(lines_disagreeing_on_code_are_an_error);
  CPPUNIT_TEST(bad_syntax_is_an_error_and_parsing_resumes);
  CPPUNIT_TEST(over_long_line_is_refused_with_bounded_memory);
  CPPUNIT_TEST(too_many_lines_is_refused);
  CPPUNIT_TEST(bare_lf_accepted_by_default_refused_when_configured);
  CPPUNIT_TEST(bare_cr_is_refused);
  CPPUNIT_TEST(describe_and_classes);
  CPPUNIT_TEST_SUITE_END();

 public:
  void single_line_with_enhanced_code_at_every_split() {
    check_every_split("250 2.1.5 Recipient OK\r\n", {"250|2.1.5|Recipient OK"});
    check_every_split("452 4.2.2 Mailbox full\r\n", {"452|4.2.2|Mailbox full"});
    check_every_split("220 mx.example ESMTP\r\n", {"220||mx.example ESMTP"});
  }
  void multi_line_ehlo_reply_at_every_split() {
    check_every_split(
        "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n",
        {"250||mx.example|PIPELINING|CHUNKING|ENHANCEDSTATUSCODES"});
    check_every_split("250-a\r\n250-b\r\n", {"partial"});
  }
  void repeated_enhanced_code_is_stripped_from_every_line() {
    check_every_split("550-5.1.1 No such user\r\n550-5.1.1 here\r\n550 5.1.1\r\n",
                      {"550|5.1.1|No such user|here|"});
    // a different code on a later line is kept as text
    check_every_split("550-5.1.1 a\r\n550 5.7.1 b\r\n", {"550|5.1.1|a|5.7.1 b"});
  }
  void enhanced_code_of_other_class_is_text() {
    check_every_split("250 5.1.1 odd\r\n", {"250||5.1.1 odd"});
    check_every_split("250 2.1.5x\r\n", {"250||2.1.5x"});
    check_every_split("250 2.1234.5 x\r\n", {"250||2.1234.5 x"});
    check_every_split("250 2.0.0\r\n", {"250|2.0.0|"});
  }
  void code_alone_and_code_with_empty_text() {
    check_every_split("250\r\n", {"250||"});
    check_every_split("250 \r\n", {"250||"});
    check_every_split("354 \r\n", {"354||"});
  }
  void pipelined_replies_come_out_one_per_feed() {
    check_every_split(
        "250 2.1.0 Sender OK\r\n550 5.1.1 No such user\r\n250 2.1.5 OK\r\n354 Go ahead\r\n",
        {"250|2.1.0|Sender OK", "550|5.1.1|No such user", "250|2.1.5|OK", "354||Go ahead"});
  }
  void lines_disagreeing_on_code_are_an_error() {
    check_every_split("250-a\r\n251 b\r\n220 ok\r\n", {"err:code_mismatch", "220||ok"});
  }
  void bad_syntax_is_an_error_and_parsing_resumes() {
    check_every_split("hello\r\n250 ok\r\n", {"err:bad_syntax", "250||ok"});
    check_every_split("25\r\n", {"err:bad_syntax"});
    check_every_split("250x\r\n", {"err:bad_syntax"});
    check_every_split("199 no\r\n", {"err:bad_syntax"});
    check_every_split("600 no\r\n", {"err:bad_syntax"});
    check_every_split("260 no\r\n", {"err:bad_syntax"});
    check_every_split("25a no\r\n", {"err:bad_syntax"});
    check_every_split("250-a\r\nxyz\r\n250 b\r\n", {"err:bad_syntax", "250||b"});
  }
  void over_long_line_is_refused_with_bounded_memory() {
    reply_limits limits{.max_line = 64};
    const std::string ok = "250 " + std::string(58, 'a') + "\r\n";  // 64 octets
    check_every_split(ok, {"250||" + std::string(58, 'a')}, limits);
    const std::string over = "250 " + std::string(59, 'a') + "\r\n250 b\r\n";
    check_every_split(over, {"err:line_too_long", "250||b"}, limits);
    // a megabyte without a line end is consumed without growing the buffer
    reply_parser p(limits);
    const std::string chunk(4096, 'x');
    for (int i = 0; i < 256; ++i) {
      const auto s = p.feed(chunk);
      CPPUNIT_ASSERT(s.status == parse_status::need_more);
    }
    CPPUNIT_ASSERT(feed_all(p, {"\r\n250 ok\r\n"}) ==
                   (std::vector<std::string>{"err:line_too_long", "250||ok"}));
  }
  void too_many_lines_is_refused() {
    reply_limits limits{.max_lines = 3};
    check_every_split("250-a\r\n250-b\r\n250 c\r\n", {"250||a|b|c"}, limits);
    check_every_split("250-a\r\n250-b\r\n250-c\r\n250 d\r\n", {"err:too_many_lines", "250||d"},
                      limits);
    // the default bounds a server that never ends its reply
    reply_parser p;
    std::string endless;
    for (int i = 0; i < 150; ++i) endless += "250-more\r\n";
    const auto got = feed_all(p, {endless});
    CPPUNIT_ASSERT_EQUAL(std::string("err:too_many_lines"), got.front());
  }
  void bare_lf_accepted_by_default_refused_when_configured() {
    check_every_split("250-a\n250 b\n", {"250||a|b"});
    check_every_split("250-a\n250 b\r\n", {"err:bare_lf", "250||b"},
                      reply_limits{.bare_lf = bare_lf_policy::reject});
  }
  void bare_cr_is_refused() {
    check_every_split("250 a\rb\r\n250 c\r\n", {"err:bare_cr", "250||c"});
  }
  void describe_and_classes() {
    reply_parser p;
    auto s = p.feed("451-4.3.0 try\r\n451 4.3.0 later\r\n");
    CPPUNIT_ASSERT(s.reply.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("451 4.3.0 try later"), s.reply->describe());
    CPPUNIT_ASSERT(s.reply->temporary() && !s.reply->permanent() && !s.reply->positive());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(reply_parser_test);

}  // namespace
}  // namespace hamail::smtp

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/pop3/command_parser.hpp"
#include "hamail/protocol/pop3/response.hpp"
#include "hamail/test/split.hpp"

namespace hamail::pop3 {
namespace {

using hamail::test::cut;

// "cmd:KEYWORD|arg|arg", "rsp:<line>" or "err:<name>".
std::string render(const parse_step& step) {
  if (step.status == parse_status::error) return "err:" + std::string(to_string(step.error->code));
  if (step.response) return "rsp:" + std::string(*step.response);
  std::string s = "cmd:" + step.cmd->keyword;
  for (const auto& a : step.cmd->args) s += "|" + a;
  return s;
}

// Feeds pieces the way a session does (keeping unconsumed octets), checking
// the feed contract. After "AUTH <mech>" without an initial response the next
// line is read as a continuation line.
std::vector<std::string> feed_all(command_parser& parser,
                                  const std::vector<std::string_view>& pieces, std::size_t bound) {
  std::vector<std::string> out;
  std::string pending;
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto step = parser.feed(view);
      CPPUNIT_ASSERT(step.consumed <= view.size());
      CPPUNIT_ASSERT(parser.buffered() < bound);
      if (step.status == parse_status::need_more) {
        CPPUNIT_ASSERT_EQUAL(view.size(), step.consumed);
        view = {};
        break;
      }
      CPPUNIT_ASSERT(step.consumed > 0);
      out.push_back(render(step));
      parser.set_mode(step.cmd && step.cmd->keyword == "AUTH" && step.cmd->args.size() == 1
                          ? input_mode::auth_continuation
                          : input_mode::command);
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  if (parser.buffered() != 0) out.emplace_back("partial");
  return out;
}

void check_every_split(std::string_view input, const std::vector<std::string>& expected,
                       command_limits limits = {}) {
  const std::size_t bound = std::max(limits.max_line, limits.max_auth_line);
  for (std::size_t c = 0; c <= input.size(); ++c) {
    command_parser parser(limits);
    const auto got = feed_all(parser, cut(input, {c}), bound);
    CPPUNIT_ASSERT_MESSAGE("split at " + std::to_string(c) + " of " + std::string(input),
                           got == expected);
  }
  std::vector<std::size_t> every;
  for (std::size_t c = 1; c < input.size(); ++c) every.push_back(c);
  command_parser parser(limits);
  CPPUNIT_ASSERT_MESSAGE("byte by byte: " + std::string(input),
                         feed_all(parser, cut(input, every), bound) == expected);
}

using strings = std::vector<std::string>;

class pop3_command_parser_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(pop3_command_parser_test);
  CPPUNIT_TEST(every_command_parses_at_every_split);
  CPPUNIT_TEST(keyword_is_case_insensitive_and_upper_cased);
  CPPUNIT_TEST(pass_keeps_spaces);
  CPPUNIT_TEST(arguments_split_on_single_spaces);
  CPPUNIT_TEST(bare_lf_accepted_by_default_refused_when_configured);
  CPPUNIT_TEST(control_octets_and_bare_cr_are_refused);
  CPPUNIT_TEST(empty_line_and_bad_keywords);
  CPPUNIT_TEST(line_limit_is_255_including_crlf);
  CPPUNIT_TEST(over_long_line_is_skipped_once_with_bounded_memory);
  CPPUNIT_TEST(auth_lines_get_the_larger_limit);
  CPPUNIT_TEST(auth_continuation_mode);
  CPPUNIT_TEST(error_texts_are_exact);
  CPPUNIT_TEST(reset_drops_partial_line_and_mode);
  CPPUNIT_TEST_SUITE_END();

 public:
  void every_command_parses_at_every_split() {
    const std::string input =
        "USER alice@example.org\r\nPASS s3cret pass\r\nSTAT\r\nLIST\r\nLIST 2\r\nRETR 1\r\n"
        "DELE 3\r\nNOOP\r\nRSET\r\nTOP 1 10\r\nUIDL\r\nUIDL 4\r\nCAPA\r\nSTLS\r\n"
        "AUTH\r\nAUTH PLAIN AGFsaWNlAHB3\r\nAUTH LOGIN\r\ndXNlcg==\r\nAUTH PLAIN\r\n*\r\n"
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\nQUIT\r\n";
    check_every_split(input, strings{"cmd:USER|alice@example.org",
                                     "cmd:PASS|s3cret pass",
                                     "cmd:STAT",
                                     "cmd:LIST",
                                     "cmd:LIST|2",
                                     "cmd:RETR|1",
                                     "cmd:DELE|3",
                                     "cmd:NOOP",
                                     "cmd:RSET",
                                     "cmd:TOP|1|10",
                                     "cmd:UIDL",
                                     "cmd:UIDL|4",
                                     "cmd:CAPA",
                                     "cmd:STLS",
                                     "cmd:AUTH",
                                     "cmd:AUTH|PLAIN|AGFsaWNlAHB3",
                                     "cmd:AUTH|LOGIN",
                                     "rsp:dXNlcg==",
                                     "cmd:AUTH|PLAIN",
                                     "rsp:*",
                                     "cmd:APOP|mrose|c4c9334bac560ecc979e58001b3e22fb",
                                     "cmd:QUIT"});
  }
  void keyword_is_case_insensitive_and_upper_cased() {
    check_every_split("retr 1\r\nQuIt\r\ntop 2 0\r\n",
                      strings{"cmd:RETR|1", "cmd:QUIT", "cmd:TOP|2|0"});
  }
  void pass_keeps_spaces() {
    // Like Dovecot's pop3-login, PASS takes the rest of the line verbatim:
    // leading, inner and trailing spaces are part of the password.
    check_every_split("PASS  two  spaces \r\nPASS\r\nPASS \r\n",
                      strings{"cmd:PASS| two  spaces ", "cmd:PASS", "cmd:PASS|"});
  }
  void arguments_split_on_single_spaces() {
    check_every_split("TOP 1  2\r\nSTAT \r\nLIST 1   \r\nUSER \xc3\xa9mile\r\n",
                      strings{"err:syntax", "cmd:STAT", "cmd:LIST|1", "cmd:USER|\xc3\xa9mile"});
    check_every_split(" STAT\r\n", strings{"err:unknown_command"});
  }
  void bare_lf_accepted_by_default_refused_when_configured() {
    check_every_split("STAT\nLIST 1\r\nQUIT\n", strings{"cmd:STAT", "cmd:LIST|1", "cmd:QUIT"});
    check_every_split("STAT\nQUIT\r\n", strings{"err:bare_lf", "cmd:QUIT"},
                      command_limits{.bare_lf = bare_lf_policy::reject});
  }
  void control_octets_and_bare_cr_are_refused() {
    check_every_split(std::string("RETR 1\0\r\nNOOP\r\n", 15),
                      strings{"err:control_character", "cmd:NOOP"});
    check_every_split(
        "PASS a\tb\r\nUSER x\x7f\r\nSTAT\rQUIT\r\nNOOP\r\n",
        strings{"err:control_character", "err:control_character", "err:bare_cr", "cmd:NOOP"});
  }
  void empty_line_and_bad_keywords() {
    check_every_split("\r\n\nRETRIEVEX 1\r\nST\r\n12AB\r\nST4T\r\nXYZ\r\n",
                      strings{"err:empty_line", "err:empty_line", "err:unknown_command", "cmd:ST",
                              "err:unknown_command", "err:unknown_command", "cmd:XYZ"});
    check_every_split("partial", strings{"partial"});
  }
  void line_limit_is_255_including_crlf() {
    const std::string exact = "USER " + std::string(248, 'u') + "\r\n";  // 255
    const std::string over = "USER " + std::string(249, 'u') + "\r\n";   // 256
    CPPUNIT_ASSERT_EQUAL(std::size_t(255), exact.size());
    check_every_split(exact + over + "NOOP\r\n", strings{"cmd:USER|" + std::string(248, 'u'),
                                                         "err:line_too_long", "cmd:NOOP"});
    check_every_split("NOOP " + std::string(40, 'x') + "\r\n", strings{"err:line_too_long"},
                      command_limits{.max_line = 32});
  }
  void over_long_line_is_skipped_once_with_bounded_memory() {
    command_parser parser;
    const std::string chunk(4096, 'x');
    for (int i = 0; i < 256; ++i) {  // 1 MiB without a line end
      const auto s = parser.feed(chunk);
      CPPUNIT_ASSERT(s.status == parse_status::need_more);
      CPPUNIT_ASSERT_EQUAL(chunk.size(), s.consumed);
      CPPUNIT_ASSERT(parser.buffered() < 255);
    }
    const std::string tail = "yy\r\nSTAT\r\n";
    auto s = parser.feed(tail);
    CPPUNIT_ASSERT_EQUAL(std::string("err:line_too_long"), render(s));
    CPPUNIT_ASSERT_EQUAL(std::size_t(4), s.consumed);
    s = parser.feed(std::string_view(tail).substr(4));
    CPPUNIT_ASSERT_EQUAL(std::string("cmd:STAT"), render(s));
  }
  void auth_lines_get_the_larger_limit() {
    const std::string ir(400, 'A');
    check_every_split("AUTH PLAIN " + ir + "\r\nUSER " + ir + "\r\n",
                      strings{"cmd:AUTH|PLAIN|" + ir, "err:line_too_long"});
    check_every_split("AUTH PLAIN " + ir + "\r\n", strings{"err:line_too_long"},
                      command_limits{.max_auth_line = 300});
  }
  void auth_continuation_mode() {
    const std::string big(1000, 'B');
    check_every_split("AUTH LOGIN\r\ndXNlcg==\r\n", strings{"cmd:AUTH|LOGIN", "rsp:dXNlcg=="});
    check_every_split("AUTH LOGIN\r\n\r\n", strings{"cmd:AUTH|LOGIN", "rsp:"});
    check_every_split("AUTH X\r\n" + big + "\r\nSTAT\r\n",
                      strings{"cmd:AUTH|X", "rsp:" + big, "cmd:STAT"});
    check_every_split("AUTH X\r\nno base64!\r\nAUTH X\r\nabc\r\nAUTH X\r\n**\r\n",
                      strings{"cmd:AUTH|X", "err:bad_base64", "cmd:AUTH|X", "err:bad_base64",
                              "cmd:AUTH|X", "err:bad_base64"});
    check_every_split("AUTH X\r\n" + std::string(9000, 'C') + "\r\nSTAT\r\n",
                      strings{"cmd:AUTH|X", "err:line_too_long", "cmd:STAT"});
  }
  void error_texts_are_exact() {
    command_parser parser;
    auto s = parser.feed("\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Empty command line\r\n"), err(*s.error));
    s = parser.feed(std::string(300, 'x') + "\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Line too long\r\n"), err(*s.error));
    s = parser.feed("A\x01\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Control character in line\r\n"), err(*s.error));
    s = parser.feed("A\rB\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR CR inside line\r\n"), err(*s.error));
    s = parser.feed("A  B\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Empty argument\r\n"), err(*s.error));
    s = parser.feed("HELLOWORLD\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Unknown command\r\n"), err(*s.error));
    parser.set_mode(input_mode::auth_continuation);
    s = parser.feed("!!\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Invalid base64 data in continued response\r\n"),
                         err(*s.error));
    command_parser strict(command_limits{.bare_lf = bare_lf_policy::reject});
    s = strict.feed("STAT\n");
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Line not ended by CRLF\r\n"), err(*s.error));
  }
  void reset_drops_partial_line_and_mode() {
    command_parser parser;
    CPPUNIT_ASSERT(parser.feed("STL").status == parse_status::need_more);
    CPPUNIT_ASSERT_EQUAL(std::size_t(3), parser.buffered());
    parser.set_mode(input_mode::auth_continuation);
    parser.reset();
    CPPUNIT_ASSERT(parser.mode() == input_mode::command);
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), parser.buffered());
    CPPUNIT_ASSERT_EQUAL(std::string("cmd:CAPA"), render(parser.feed("CAPA\r\n")));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(pop3_command_parser_test);

}  // namespace
}  // namespace hamail::pop3

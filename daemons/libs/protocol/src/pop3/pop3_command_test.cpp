#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hamail/protocol/pop3/command.hpp"
#include "hamail/protocol/pop3/command_parser.hpp"
#include "hamail/protocol/pop3/response.hpp"

namespace hamail::pop3 {
namespace {

constexpr auto before = session_state::authorization;
constexpr auto after = session_state::transaction;

// Parses one line and validates it; "ok:VERB msg=.. lines=.. text=.. ir=.." or the -ERR line.
std::string check(std::string_view line, session_state state) {
  const auto step = command_parser::parse_line(line);
  if (step.error) return err(*step.error);
  const auto c = validate(*step.cmd, state);
  CPPUNIT_ASSERT(c.req.has_value() != c.error.has_value());
  if (c.error) return err(*c.error);
  std::string s = "ok:" + std::string(to_string(c.req->what));
  if (c.req->msg) s += " msg=" + std::to_string(*c.req->msg);
  if (c.req->lines) s += " lines=" + std::to_string(*c.req->lines);
  if (!c.req->text.empty()) s += " text=" + c.req->text;
  if (c.req->initial_response) s += " ir=" + *c.req->initial_response;
  return s;
}

class pop3_command_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(pop3_command_test);
  CPPUNIT_TEST(authorization_state_commands);
  CPPUNIT_TEST(transaction_state_commands);
  CPPUNIT_TEST(commands_in_the_wrong_state);
  CPPUNIT_TEST(argument_counts);
  CPPUNIT_TEST(message_numbers);
  CPPUNIT_TEST(top_line_counts);
  CPPUNIT_TEST(auth_arguments);
  CPPUNIT_TEST(apop_and_unknown);
  CPPUNIT_TEST(base64);
  CPPUNIT_TEST(xclient_attributes);
  CPPUNIT_TEST_SUITE_END();

 public:
  void authorization_state_commands() {
    CPPUNIT_ASSERT_EQUAL(std::string("ok:USER text=bob@example.org"),
                         check("user bob@example.org", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:PASS text=a b "), check("PASS a b ", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:STLS"), check("STLS", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:CAPA"), check("CAPA", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:QUIT"), check("QUIT", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:AUTH"), check("AUTH", before));
  }
  void transaction_state_commands() {
    CPPUNIT_ASSERT_EQUAL(std::string("ok:STAT"), check("STAT", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:LIST"), check("LIST", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:LIST msg=7"), check("LIST 7", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:RETR msg=1"), check("RETR 1", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:DELE msg=2"), check("dele 2", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:NOOP"), check("NOOP", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:RSET"), check("RSET", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:TOP msg=3 lines=0"), check("TOP 3 0", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:UIDL"), check("UIDL", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:UIDL msg=9"), check("UIDL 9", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:CAPA"), check("CAPA", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:QUIT"), check("QUIT", after));
  }
  void commands_in_the_wrong_state() {
    const std::string early = "-ERR Command not valid before login\r\n";
    const std::string late = "-ERR Command not valid after login\r\n";
    for (auto line : {"STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"})
      CPPUNIT_ASSERT_EQUAL(early, check(line, before));
    for (auto line : {"USER a", "PASS b", "STLS", "AUTH PLAIN"})
      CPPUNIT_ASSERT_EQUAL(late, check(line, after));
    // state is checked before the arguments
    CPPUNIT_ASSERT_EQUAL(early, check("RETR x y", before));
  }
  void argument_counts() {
    const std::string missing = "-ERR Missing argument\r\n";
    const std::string many = "-ERR Too many arguments\r\n";
    CPPUNIT_ASSERT_EQUAL(missing, check("USER", before));
    CPPUNIT_ASSERT_EQUAL(missing, check("PASS", before));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Missing password\r\n"), check("PASS ", before));
    CPPUNIT_ASSERT_EQUAL(many, check("USER a b", before));
    CPPUNIT_ASSERT_EQUAL(missing, check("RETR", after));
    CPPUNIT_ASSERT_EQUAL(missing, check("DELE", after));
    CPPUNIT_ASSERT_EQUAL(missing, check("TOP 1", after));
    CPPUNIT_ASSERT_EQUAL(many, check("TOP 1 2 3", after));
    CPPUNIT_ASSERT_EQUAL(many, check("LIST 1 2", after));
    CPPUNIT_ASSERT_EQUAL(many, check("UIDL 1 2", after));
    CPPUNIT_ASSERT_EQUAL(many, check("STAT 1", after));
    CPPUNIT_ASSERT_EQUAL(many, check("NOOP x", after));
    CPPUNIT_ASSERT_EQUAL(many, check("QUIT now", after));
    CPPUNIT_ASSERT_EQUAL(many, check("CAPA x", before));
    CPPUNIT_ASSERT_EQUAL(many, check("STLS x", before));
    CPPUNIT_ASSERT_EQUAL(many, check("AUTH PLAIN abcd efgh", before));
  }
  void message_numbers() {
    const std::string bad = "-ERR Invalid message number\r\n";
    CPPUNIT_ASSERT_EQUAL(std::string("ok:RETR msg=2147483647"), check("RETR 2147483647", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:RETR msg=7"), check("RETR 007", after));
    for (auto line :
         {"RETR 0", "RETR 00", "RETR 2147483648", "RETR 99999999999999999999", "RETR +1", "RETR -1",
          "RETR 1a", "RETR a", "RETR 0x10", "RETR 1.0", "LIST 0", "DELE -0", "UIDL x", "TOP 0 1"})
      CPPUNIT_ASSERT_EQUAL_MESSAGE(line, bad, check(line, after));
    CPPUNIT_ASSERT_EQUAL(bad, check("RETR " + std::string(41, '0') + "1", after));
    CPPUNIT_ASSERT(!parse_message_number(""));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t(42), *parse_message_number("42"));
  }
  void top_line_counts() {
    const std::string bad = "-ERR Invalid line count\r\n";
    CPPUNIT_ASSERT_EQUAL(std::string("ok:TOP msg=1 lines=2147483647"),
                         check("TOP 1 2147483647", after));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:TOP msg=1 lines=2147483647"),
                         check("TOP 1 99999999999999999999", after));
    CPPUNIT_ASSERT_EQUAL(bad, check("TOP 1 " + std::string(41, '9'), after));
    CPPUNIT_ASSERT_EQUAL(bad, check("TOP 1 -1", after));
    CPPUNIT_ASSERT_EQUAL(bad, check("TOP 1 +1", after));
    CPPUNIT_ASSERT_EQUAL(bad, check("TOP 1 x", after));
  }
  void auth_arguments() {
    CPPUNIT_ASSERT_EQUAL(std::string("ok:AUTH text=PLAIN"), check("auth plain", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:AUTH text=SCRAM-SHA-256"),
                         check("AUTH scram-sha-256", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:AUTH text=PLAIN ir=AGEAYg=="),
                         check("AUTH PLAIN AGEAYg==", before));
    CPPUNIT_ASSERT_EQUAL(std::string("ok:AUTH text=PLAIN ir=="), check("AUTH PLAIN =", before));
    const std::string mech = "-ERR Invalid SASL mechanism name\r\n";
    CPPUNIT_ASSERT_EQUAL(mech, check("AUTH PL@IN", before));
    CPPUNIT_ASSERT_EQUAL(mech, check("AUTH " + std::string(21, 'A'), before));
    const std::string b64 = "-ERR Invalid base64 in initial response\r\n";
    CPPUNIT_ASSERT_EQUAL(b64, check("AUTH PLAIN AGEAY", before));
    CPPUNIT_ASSERT_EQUAL(b64, check("AUTH PLAIN *", before));
    CPPUNIT_ASSERT_EQUAL(b64, check("AUTH PLAIN ====", before));
  }
  void apop_and_unknown() {
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR APOP not supported\r\n"),
                         check("APOP mrose c4c9334bac560ecc979e58001b3e22fb", before));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR APOP not supported\r\n"), check("APOP", after));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Unknown command\r\n"), check("XTND", after));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Unknown command\r\n"), check("LAST", after));
  }
  void xclient_attributes() {
    auto ok = validate(command{"XCLIENT", {"addr=192.0.2.7", "PORT=4711", "SESSION=a:b=c"}},
                       session_state::authorization);
    CPPUNIT_ASSERT(ok.req);
    CPPUNIT_ASSERT(ok.req->what == verb::xclient);
    using attr = std::pair<std::string, std::string>;
    const std::vector<attr> want{{"ADDR", "192.0.2.7"}, {"PORT", "4711"}, {"SESSION", "a:b=c"}};
    CPPUNIT_ASSERT(ok.req->attributes == want);
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR XCLIENT takes NAME=VALUE attributes\r\n"),
                         check("XCLIENT ADDR", before));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR XCLIENT takes NAME=VALUE attributes\r\n"),
                         check("XCLIENT =1", before));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Missing argument\r\n"), check("XCLIENT", before));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR Command not valid after login\r\n"),
                         check("XCLIENT ADDR=1.2.3.4", after));
  }
  void base64() {
    CPPUNIT_ASSERT(is_base64(""));
    CPPUNIT_ASSERT(is_base64("AAAA"));
    CPPUNIT_ASSERT(is_base64("AA=="));
    CPPUNIT_ASSERT(is_base64("AAA="));
    CPPUNIT_ASSERT(is_base64("ab+/"));
    CPPUNIT_ASSERT(!is_base64("AAA"));
    CPPUNIT_ASSERT(!is_base64("A==="));
    CPPUNIT_ASSERT(!is_base64("A=AA"));
    CPPUNIT_ASSERT(!is_base64("AA-_"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(pop3_command_test);

}  // namespace
}  // namespace hamail::pop3

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <utility>
#include <vector>

#include "hamail/protocol/smtp/command_parser.hpp"
#include "smtp_test_support.hpp"

namespace hamail::smtp {
namespace {

using test::check_every_split;
using test::parse_whole;

struct row {
  std::string line;      // without CRLF
  std::string expected;  // "cmd:<canonical wire>" or "err:<parse_error>"
};

// For every command: good forms (expected canonical wire) and bad forms (expected error).
const std::vector<row>& rows() {
  static const std::vector<row> table = {
      // HELO / EHLO / LHLO
      {"HELO mx.example.com", "cmd:HELO mx.example.com"},
      {"helo mx", "cmd:HELO mx"},
      {"HELO", "err:syntax"},
      {"HELO   ", "err:syntax"},
      {"EHLO [192.0.2.1]", "cmd:EHLO [192.0.2.1]"},
      {"Ehlo client.example", "cmd:EHLO client.example"},
      {"EHLO bad_host name", "cmd:EHLO bad_host name"},
      {"EHLO", "err:syntax"},
      {"LHLO lmtp.example", "cmd:LHLO lmtp.example"},
      {"LHLO", "err:syntax"},
      // MAIL
      {"MAIL FROM:<a@b.example>", "cmd:MAIL FROM:<a@b.example>"},
      {"mail from:<>", "cmd:MAIL FROM:<>"},
      {"MAIL FROM: <a@b.example>", "cmd:MAIL FROM:<a@b.example>"},
      {"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME",
       "cmd:MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME"},
      {"MAIL FROM:<a@b.example>  size=5 body=binarymime",
       "cmd:MAIL FROM:<a@b.example> SIZE=5 BODY=BINARYMIME"},
      {"MAIL FROM:<a@b.example> BODY=7bit", "cmd:MAIL FROM:<a@b.example> BODY=7BIT"},
      {"MAIL FROM:<jos\xc3\xa9@b.example> SMTPUTF8",
       "cmd:MAIL FROM:<jos\xc3\xa9@b.example> SMTPUTF8"},
      {"MAIL FROM:<a@b.example> RET=hdrs ENVID=QQ+2B314 AUTH=<>",
       "cmd:MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ+2B314 AUTH=<>"},
      {"MAIL FROM:<a@b.example> RET=FULL AUTH=e+3Dmc2@example.com",
       "cmd:MAIL FROM:<a@b.example> RET=FULL AUTH=e+3Dmc2@example.com"},
      {"MAIL FROM:<a@b.example> X-FOO=bar XYZ", "cmd:MAIL FROM:<a@b.example> X-FOO=bar XYZ"},
      {"MAIL FROM:<@r.example:a@b.example>", "cmd:MAIL FROM:<a@b.example>"},
      {"MAIL FROM:<\"a b\"@[IPv6:2001:db8::1]>", "cmd:MAIL FROM:<\"a b\"@[IPv6:2001:db8::1]>"},
      {"MAIL", "err:syntax"},
      {"MAIL TO:<a@b.example>", "err:syntax"},
      {"MAIL FROM:a@b.example", "err:syntax"},
      {"MAIL FROM:<a@b.example", "err:syntax"},
      {"MAIL FROM:<a@b.example>SIZE=1", "err:syntax"},
      {"MAIL FROM:<a@@b.example>", "err:bad_sender_address"},
      {"MAIL FROM:<a>", "err:bad_sender_address"},
      {"MAIL FROM:<jos\xc3\xa9@b.example>", "err:utf8_not_permitted"},
      {"MAIL FROM:<a@b.example> SIZE=abc", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> SIZE=123456789012345678901", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> SIZE", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> SIZE=1 size=2", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> BODY=9BIT", "err:unsupported_parameter"},
      {"MAIL FROM:<a@b.example> SMTPUTF8=yes", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> RET=ALL", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> ENVID=a=b", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> ENVID=" + std::string(101, 'x'), "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> AUTH=+ZZ", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> X-FOO=1 x-foo=2", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> =x", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> FOO=", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> -FOO", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> FOO=caf\xc3\xa9", "err:bad_parameter_syntax"},
      {"MAIL FROM:<a@b.example> SIZE=1\x7f", "err:syntax"},
      // RCPT
      {"RCPT TO:<c@d.example>", "cmd:RCPT TO:<c@d.example>"},
      {"rcpt to:<Postmaster>", "cmd:RCPT TO:<Postmaster>"},
      {"RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+40d.example",
       "cmd:RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example"},
      {"RCPT TO:<c@d.example> notify=never", "cmd:RCPT TO:<c@d.example> NOTIFY=NEVER"},
      {"RCPT TO:<c@d.example> NOTIFY=delay,success",
       "cmd:RCPT TO:<c@d.example> NOTIFY=SUCCESS,DELAY"},
      {"RCPT TO:<c@d.example> SIZE=10", "cmd:RCPT TO:<c@d.example> SIZE=10"},
      {"RCPT", "err:syntax"},
      {"RCPT FROM:<c@d.example>", "err:syntax"},
      {"RCPT TO:<>", "err:bad_recipient_address"},
      {"RCPT TO:<c@d..example>", "err:bad_recipient_address"},
      {"RCPT TO:<" + std::string(65, 'c') + "@d.example>", "err:bad_recipient_address"},
      {"RCPT TO:<jos\xc3\xa9@d.example>", "err:utf8_not_permitted"},
      {"RCPT TO:<c@d.example> NOTIFY=NEVER,SUCCESS", "err:bad_parameter_syntax"},
      {"RCPT TO:<c@d.example> NOTIFY=SOMETIMES", "err:bad_parameter_syntax"},
      {"RCPT TO:<c@d.example> NOTIFY=SUCCESS,SUCCESS", "err:bad_parameter_syntax"},
      {"RCPT TO:<c@d.example> NOTIFY=SUCCESS,", "err:bad_parameter_syntax"},
      {"RCPT TO:<c@d.example> ORCPT=rfc822", "err:bad_parameter_syntax"},
      {"RCPT TO:<c@d.example> ORCPT=;c@d.example", "err:bad_parameter_syntax"},
      {"RCPT TO:<c@d.example> ORCPT=rfc822;c+ZZ", "err:bad_parameter_syntax"},
      {"RCPT TO:<c@d.example> NOTIFY=NEVER NOTIFY=NEVER", "err:bad_parameter_syntax"},
      // DATA, BDAT
      {"DATA", "cmd:DATA"},
      {"data", "cmd:DATA"},
      {"DATA now", "err:syntax"},
      {"BDAT 1000", "cmd:BDAT 1000"},
      {"BDAT 0 LAST", "cmd:BDAT 0 LAST"},
      {"bdat 5 last", "cmd:BDAT 5 LAST"},
      {"BDAT", "err:syntax"},
      {"BDAT x", "err:syntax"},
      {"BDAT -1", "err:syntax"},
      {"BDAT 10 FIRST", "err:syntax"},
      {"BDAT 10 LAST more", "err:syntax"},
      {"BDAT 123456789012345678901", "err:syntax"},
      // RSET, NOOP, QUIT
      {"RSET", "cmd:RSET"},
      {"RSET x", "err:syntax"},
      {"NOOP", "cmd:NOOP"},
      {"NOOP hello there", "cmd:NOOP hello there"},
      {"NOOP \x01", "err:syntax"},
      {"QUIT", "cmd:QUIT"},
      {"QUIT ", "cmd:QUIT"},
      {"QUIT now", "err:syntax"},
      // VRFY, EXPN, HELP
      {"VRFY postmaster", "cmd:VRFY postmaster"},
      {"VRFY", "err:syntax"},
      {"EXPN staff", "cmd:EXPN staff"},
      {"EXPN", "err:syntax"},
      {"HELP", "cmd:HELP"},
      {"HELP MAIL", "cmd:HELP MAIL"},
      {"HELP \x1b[2J", "err:syntax"},
      // STARTTLS
      {"STARTTLS", "cmd:STARTTLS"},
      {"starttls", "cmd:STARTTLS"},
      {"STARTTLS now", "err:syntax"},
      // AUTH
      {"AUTH PLAIN", "cmd:AUTH PLAIN"},
      {"auth plain AHVzZXIAcGFzcw==", "cmd:AUTH PLAIN AHVzZXIAcGFzcw=="},
      {"AUTH LOGIN =", "cmd:AUTH LOGIN ="},
      {"AUTH X-OAUTH2_V2 dGVzdA==", "cmd:AUTH X-OAUTH2_V2 dGVzdA=="},
      {"AUTH", "err:syntax"},
      {"AUTH PL@IN", "err:syntax"},
      {"AUTH " + std::string(21, 'A'), "err:syntax"},
      {"AUTH PLAIN abc", "err:bad_base64"},
      {"AUTH PLAIN ab=c", "err:bad_base64"},
      {"AUTH PLAIN a===", "err:bad_base64"},
      {"AUTH PLAIN a b", "err:syntax"},
      // XCLIENT
      {"XCLIENT ADDR=192.0.2.7 PORT=40123", "cmd:XCLIENT ADDR=192.0.2.7 PORT=40123"},
      {"xclient addr=IPV6:2001:db8::1 helo=pc+20one",
       "cmd:XCLIENT ADDR=IPV6:2001:db8::1 HELO=pc+20one"},
      {"XCLIENT LOGIN= NAME=[UNAVAILABLE]", "cmd:XCLIENT LOGIN= NAME=[UNAVAILABLE]"},
      {"XCLIENT HELO=a+2bb", "cmd:XCLIENT HELO=a+2Bb"},
      {"XCLIENT X-HAMAIL_1=v", "cmd:XCLIENT X-HAMAIL_1=v"},
      {"XCLIENT", "err:syntax"},
      {"XCLIENT ADDR", "err:syntax"},
      {"XCLIENT =1.2.3.4", "err:syntax"},
      {"XCLIENT AD.DR=1", "err:syntax"},
      {"XCLIENT ADDR=1 addr=2", "err:syntax"},
      {"XCLIENT HELO=a=b", "err:syntax"},
      {"XCLIENT HELO=+4", "err:syntax"},
      {"XCLIENT HELO=+ZZ", "err:syntax"},
      {"XCLIENT HELO=caf\xc3\xa9", "err:syntax"},
      {"XCLIENT " + std::string(33, 'N') + "=1", "err:syntax"},
      {"XCLIENT HELO=" + std::string(256, 'h'), "err:syntax"},
      {"XCLIENT HELO=" + std::string(255, 'h'), "cmd:XCLIENT HELO=" + std::string(255, 'h')},
      // unknown verbs
      {"", "err:unknown_command"},
      {"FOO", "err:unknown_command"},
      {"MAILFROM:<a@b.example>", "err:unknown_command"},
      {"ETRN example.com", "err:unknown_command"},
      {std::string("\0QUIT", 5), "err:unknown_command"},
  };
  return table;
}

class command_parser_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(command_parser_test);
  CPPUNIT_TEST(every_command_good_and_bad_form);
  CPPUNIT_TEST(every_command_form_same_at_every_split_point);
  CPPUNIT_TEST(canonical_wire_form_parses_back_to_itself);
  CPPUNIT_TEST(pipelined_session_same_at_every_split_point);
  CPPUNIT_TEST(mail_parameters_are_typed_and_decoded);
  CPPUNIT_TEST(unknown_parameters_are_returned_to_the_session);
  CPPUNIT_TEST(rcpt_parameters_are_typed_and_decoded);
  CPPUNIT_TEST(hello_argument_kept_with_well_formed_flag);
  CPPUNIT_TEST(quoted_local_part_keeps_decoded_and_original);
  CPPUNIT_TEST(utf8_rcpt_needs_smtputf8_transaction);
  CPPUNIT_TEST(starttls_leaves_pipelined_bytes_unconsumed);
  CPPUNIT_TEST(over_long_line_is_skipped_then_next_command_parses);
  CPPUNIT_TEST(auth_line_may_exceed_line_limit_up_to_auth_limit);
  CPPUNIT_TEST(bare_lf_line_rejected_by_default_accepted_when_configured);
  CPPUNIT_TEST(bare_cr_in_command_is_rejected);
  CPPUNIT_TEST(errors_carry_reply_detail);
  CPPUNIT_TEST(xclient_attributes_are_upper_cased_and_decoded);
  CPPUNIT_TEST(xclient_attribute_count_is_limited);
  CPPUNIT_TEST_SUITE_END();

 public:
  void every_command_good_and_bad_form() {
    for (const auto& r : rows()) {
      const auto got = parse_whole(r.line + "\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r.line, std::size_t(1), got.size());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r.line, r.expected, got[0]);
    }
  }

  void every_command_form_same_at_every_split_point() {
    for (const auto& r : rows()) check_every_split(r.line + "\r\n", {r.expected});
  }

  void canonical_wire_form_parses_back_to_itself() {
    for (const auto& r : rows()) {
      if (r.expected.compare(0, 4, "cmd:") != 0) continue;
      const std::string wire = r.expected.substr(4) + "\r\n";
      command_parser parser;
      const auto step = parser.feed(wire);
      CPPUNIT_ASSERT_MESSAGE(wire, step.status == parse_status::complete);
      CPPUNIT_ASSERT_EQUAL(wire.size(), step.consumed);
      CPPUNIT_ASSERT_EQUAL(wire, to_wire(*step.cmd));
    }
  }

  void pipelined_session_same_at_every_split_point() {
    const std::string session =
        "EHLO client.example\r\n"
        "MAIL FROM:<\"a b\\\"c\"@example.org> SIZE=2048 BODY=8BITMIME\r\n"
        "RCPT TO:<x@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x+40example.net\r\n"
        "RCPT TO:<Postmaster>\r\n"
        "RCPT TO:<bad@@example.net>\r\n"
        "BOGUS\r\n"
        "NOOP\r\n"
        "RSET\r\n"
        "MAIL FROM:<>\r\n"
        "MAIL FROM:<u@example.org> SMTPUTF8\r\n"
        "RCPT TO:<jos\xc3\xa9@example.net>\r\n"
        "DATA\r\n"
        "VRFY someone\r\n"
        "AUTH PLAIN AHVzZXIAcGFzcw==\r\n"
        "QUIT\r\n"
        "HELO partial";
    const std::vector<std::string> expected = {
        "cmd:EHLO client.example",
        "cmd:MAIL FROM:<\"a b\\\"c\"@example.org> SIZE=2048 BODY=8BITMIME",
        "cmd:RCPT TO:<x@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x@example.net",
        "cmd:RCPT TO:<Postmaster>",
        "err:bad_recipient_address",
        "err:unknown_command",
        "cmd:NOOP",
        "cmd:RSET",
        "cmd:MAIL FROM:<>",
        "cmd:MAIL FROM:<u@example.org> SMTPUTF8",
        "cmd:RCPT TO:<jos\xc3\xa9@example.net>",
        "cmd:DATA",
        "cmd:VRFY someone",
        "cmd:AUTH PLAIN AHVzZXIAcGFzcw==",
        "cmd:QUIT",
        "partial",
    };
    CPPUNIT_ASSERT(parse_whole(session) == expected);
    check_every_split(session, expected);
  }

  void mail_parameters_are_typed_and_decoded() {
    command_parser p;
    auto s = p.feed(
        "MAIL FROM:<a@b.example> SIZE=18446744073709551615 BODY=BINARYMIME SMTPUTF8 "
        "RET=HDRS ENVID=QQ+2B314+3D AUTH=<>\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    const auto& m = std::get<mail_command>(*s.cmd);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(18446744073709551615ull), *m.params.size);
    CPPUNIT_ASSERT(*m.params.body == body_type::binary_mime);
    CPPUNIT_ASSERT(m.params.smtputf8);
    CPPUNIT_ASSERT(*m.params.ret == dsn_return::headers);
    CPPUNIT_ASSERT_EQUAL(std::string("QQ+314="), *m.params.envid);
    CPPUNIT_ASSERT_EQUAL(std::string("<>"), *m.params.auth);
    CPPUNIT_ASSERT(m.params.unknown.empty());
    CPPUNIT_ASSERT(m.sender.kind == path_kind::mailbox);
  }

  void unknown_parameters_are_returned_to_the_session() {
    command_parser p;
    auto s = p.feed("MAIL FROM:<a@b.example> x-Foo=Bar REQUIRETLS NOTIFY=NEVER\r\n");
    const auto& m = std::get<mail_command>(*s.cmd);
    CPPUNIT_ASSERT_EQUAL(std::size_t(3), m.params.unknown.size());
    CPPUNIT_ASSERT_EQUAL(std::string("x-Foo"), m.params.unknown[0].keyword);
    CPPUNIT_ASSERT_EQUAL(std::string("Bar"), *m.params.unknown[0].value);
    CPPUNIT_ASSERT_EQUAL(std::string("REQUIRETLS"), m.params.unknown[1].keyword);
    CPPUNIT_ASSERT(!m.params.unknown[1].value);
    CPPUNIT_ASSERT_EQUAL(std::string("NOTIFY"), m.params.unknown[2].keyword);  // RCPT-only keyword
  }

  void rcpt_parameters_are_typed_and_decoded() {
    command_parser p;
    auto s =
        p.feed("RCPT TO:<c@d.example> NOTIFY=failure,Delay ORCPT=rfc822;c+2Bx+40d.example\r\n");
    const auto& r = std::get<rcpt_command>(*s.cmd);
    CPPUNIT_ASSERT(r.params.notify ==
                   (dsn_notify{.never = false, .success = false, .failure = true, .delay = true}));
    CPPUNIT_ASSERT_EQUAL(std::string("rfc822"), r.params.orcpt->address_type);
    CPPUNIT_ASSERT_EQUAL(std::string("c+x@d.example"), r.params.orcpt->address);
    CPPUNIT_ASSERT_EQUAL(std::string("rfc822;c+2Bx+40d.example"), r.params.orcpt->raw);
    s = p.feed("RCPT TO:<c@d.example> ORCPT=utf-8;c\\x{E9}@d.example\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT_EQUAL(std::string("c\\x{E9}@d.example"),
                         std::get<rcpt_command>(*s.cmd).params.orcpt->address);
  }

  void xclient_attributes_are_upper_cased_and_decoded() {
    command_parser p;
    auto s = p.feed("XCLIENT addr=192.0.2.7 Helo=my+20pc LOGIN= session=ab+2Bc\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    const auto& x = std::get<xclient_command>(*s.cmd);
    const std::vector<xclient_attribute> expected = {
        {"ADDR", "192.0.2.7"}, {"HELO", "my pc"}, {"LOGIN", ""}, {"SESSION", "ab+c"}};
    CPPUNIT_ASSERT(x.attributes == expected);
    CPPUNIT_ASSERT_EQUAL(std::string_view("XCLIENT"), verb_name(*s.cmd));
  }

  void xclient_attribute_count_is_limited() {
    command_parser p;
    std::string line = "XCLIENT";
    for (std::size_t i = 0; i < max_xclient_attributes; ++i)
      line += " A" + std::to_string(i) + "=x";
    auto s = p.feed(line + "\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT_EQUAL(max_xclient_attributes,
                         std::get<xclient_command>(*s.cmd).attributes.size());
    s = p.feed(line + " ONE=more\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::error);
    CPPUNIT_ASSERT(s.error->code == parse_error::syntax);
  }

  void hello_argument_kept_with_well_formed_flag() {
    command_parser p;
    auto s = p.feed("EHLO mail.example.org\r\n");
    CPPUNIT_ASSERT(std::get<ehlo_command>(*s.cmd).well_formed);
    s = p.feed("EHLO [IPv6:2001:db8::5]\r\n");
    CPPUNIT_ASSERT(std::get<ehlo_command>(*s.cmd).well_formed);
    s = p.feed("HELO my_pc\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("my_pc"), std::get<helo_command>(*s.cmd).domain);
    CPPUNIT_ASSERT(!std::get<helo_command>(*s.cmd).well_formed);
    s = p.feed("LHLO [300.1.1.1]\r\n");
    CPPUNIT_ASSERT(!std::get<lhlo_command>(*s.cmd).well_formed);
  }

  void quoted_local_part_keeps_decoded_and_original() {
    command_parser p;
    auto s = p.feed("RCPT TO:<\"john \\\"q\\\" doe\"@example.com>\r\n");
    const auto& r = std::get<rcpt_command>(*s.cmd);
    CPPUNIT_ASSERT_EQUAL(std::string("john \"q\" doe"), r.recipient.box.local_part);
    CPPUNIT_ASSERT_EQUAL(std::string("\"john \\\"q\\\" doe\"@example.com"), r.recipient.original);
  }

  void utf8_rcpt_needs_smtputf8_transaction() {
    command_parser p;
    const std::string rcpt =
        "RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example>\r\n";
    auto s = p.feed(rcpt);
    CPPUNIT_ASSERT(s.error && s.error->code == parse_error::utf8_not_permitted);
    p.set_utf8_transaction(true);
    s = p.feed(rcpt);
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT(std::get<rcpt_command>(*s.cmd).recipient.box.is_utf8());
    p.reset();
    s = p.feed(rcpt);
    CPPUNIT_ASSERT(s.error && s.error->code == parse_error::utf8_not_permitted);
  }

  void starttls_leaves_pipelined_bytes_unconsumed() {
    command_parser p;
    const std::string in = "STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n";
    auto s = p.feed(in);
    CPPUNIT_ASSERT(std::holds_alternative<starttls_command>(*s.cmd));
    CPPUNIT_ASSERT_EQUAL(std::size_t(10), s.consumed);
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), p.buffered());
  }

  void over_long_line_is_skipped_then_next_command_parses() {
    const std::string in = "NOOP " + std::string(600, 'x') + "\r\nQUIT\r\n";
    const std::vector<std::string> expected = {"err:line_too_long", "cmd:QUIT"};
    CPPUNIT_ASSERT(parse_whole(in) == expected);
    check_every_split(in, expected);
    // a line of exactly 512 octets with its CRLF is fine
    const std::string exact = "NOOP " + std::string(505, 'x') + "\r\n";
    CPPUNIT_ASSERT_EQUAL(std::size_t(512), exact.size());
    CPPUNIT_ASSERT_EQUAL(std::string("cmd:NOOP ") + std::string(505, 'x'), parse_whole(exact)[0]);
    CPPUNIT_ASSERT_EQUAL(std::string("err:line_too_long"),
                         parse_whole("NOOP " + std::string(506, 'x') + "\r\n")[0]);
  }

  void auth_line_may_exceed_line_limit_up_to_auth_limit() {
    const std::string token(8000, 'A');
    const std::string ok = "AUTH XOAUTH2 " + token + "\r\n";
    CPPUNIT_ASSERT_EQUAL("cmd:AUTH XOAUTH2 " + token, parse_whole(ok)[0]);
    const std::string too_long = "AUTH XOAUTH2 " + std::string(12288, 'A') + "\r\n";
    CPPUNIT_ASSERT_EQUAL(std::string("err:line_too_long"), parse_whole(too_long)[0]);
    CPPUNIT_ASSERT_EQUAL(
        std::string("err:line_too_long"),
        parse_whole(too_long, command_limits{.max_line = 512, .max_auth_line = 600})[0]);
    // a non-AUTH line does not get the AUTH limit
    CPPUNIT_ASSERT_EQUAL(std::string("err:line_too_long"),
                         parse_whole("NOOP " + token + "\r\n")[0]);
  }

  void bare_lf_line_rejected_by_default_accepted_when_configured() {
    const std::string in = "NOOP\nQUIT\r\n";
    const std::vector<std::string> rejected = {"err:bare_lf", "cmd:QUIT"};
    check_every_split(in, rejected);
    const std::vector<std::string> accepted = {"cmd:NOOP", "cmd:QUIT"};
    check_every_split(in, accepted, command_limits{.bare_lf = bare_lf_policy::accept});
  }

  void bare_cr_in_command_is_rejected() {
    const std::vector<std::string> expected = {"err:bare_cr", "cmd:QUIT"};
    check_every_split("RSET\rDATA\r\nQUIT\r\n", expected);
  }

  void errors_carry_reply_detail() {
    command_parser p;
    auto s = p.feed("MAIL FROM:<a@b.example> SIZE=x\r\n");
    CPPUNIT_ASSERT(s.error->code == parse_error::bad_parameter_syntax);
    CPPUNIT_ASSERT_EQUAL(std::string("Bad SIZE parameter"), std::string(s.error->detail));
    s = p.feed("RCPT TO:<a@b..example>\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("Bad domain"), std::string(s.error->detail));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(command_parser_test);

}  // namespace
}  // namespace hamail::smtp

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "hamail/protocol/smtp/reply.hpp"

namespace hamail::smtp {
namespace {

std::vector<std::string> wire_lines(const std::string& wire) {
  std::vector<std::string> lines;
  std::size_t from = 0;
  while (from < wire.size()) {
    const auto end = wire.find("\r\n", from);
    CPPUNIT_ASSERT(end != std::string::npos);
    lines.push_back(wire.substr(from, end - from));
    from = end + 2;
  }
  return lines;
}

class reply_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(reply_test);
  CPPUNIT_TEST(single_line_reply_has_code_enhanced_and_text);
  CPPUNIT_TEST(multi_line_reply_uses_dash_continuations);
  CPPUNIT_TEST(reply_without_text_has_no_trailing_space);
  CPPUNIT_TEST(crlf_in_text_cannot_inject_a_reply_line);
  CPPUNIT_TEST(long_text_wraps_under_512_octets_at_spaces);
  CPPUNIT_TEST(long_word_is_split_hard);
  CPPUNIT_TEST(ehlo_reply_lists_extensions_without_enhanced_codes);
  CPPUNIT_TEST(status_table_codes_match_their_enhanced_class);
  CPPUNIT_TEST(status_table_has_the_agreed_codes);
  CPPUNIT_TEST(every_parse_error_maps_to_its_reply);
  CPPUNIT_TEST(every_body_verdict_maps_to_its_reply);
  CPPUNIT_TEST_SUITE_END();

 public:
  void single_line_reply_has_code_enhanced_and_text() {
    CPPUNIT_ASSERT_EQUAL(std::string("503 5.5.1 Bad sequence of commands\r\n"),
                         reply(status::bad_sequence).wire());
    CPPUNIT_ASSERT_EQUAL(std::string("250 2.1.5 Recipient <b@x> OK\r\n"),
                         reply(status::recipient_ok, "Recipient <b@x> OK").wire());
    CPPUNIT_ASSERT_EQUAL(std::string("354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
                         reply(status::start_data).wire());
  }
  void multi_line_reply_uses_dash_continuations() {
    reply r(452, "4.2.2");
    r.add_line("first").add_line("second").add_line("third");
    CPPUNIT_ASSERT_EQUAL(std::string("452-4.2.2 first\r\n452-4.2.2 second\r\n452 4.2.2 third\r\n"),
                         r.wire());
  }
  void reply_without_text_has_no_trailing_space() {
    CPPUNIT_ASSERT_EQUAL(std::string("250\r\n"), reply(250).wire());
    CPPUNIT_ASSERT_EQUAL(std::string("250 2.0.0\r\n"), reply(250, "2.0.0").wire());
    CPPUNIT_ASSERT_EQUAL(std::string("334 \r\n"), reply(status::auth_continue).wire());
    CPPUNIT_ASSERT_EQUAL(std::string("334 VXNlcm5hbWU6\r\n"),
                         reply(status::auth_continue, "VXNlcm5hbWU6").wire());
  }
  void crlf_in_text_cannot_inject_a_reply_line() {
    const auto wire = reply(status::unknown_user, "no such user <x>\r\n250 2.0.0 OK\n").wire();
    const auto lines = wire_lines(wire);
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), lines.size());
    CPPUNIT_ASSERT_EQUAL(std::string("550 5.1.1 no such user <x>  250 2.0.0 OK "), lines[0]);
    const auto with_nul =
        reply(status::unknown_user, std::string_view("a\0b\x7f\xc3\xa9", 6)).wire();
    CPPUNIT_ASSERT_EQUAL(std::string("550 5.1.1 a b ??\r\n"), with_nul);
  }
  void long_text_wraps_under_512_octets_at_spaces() {
    std::string text;
    for (int i = 0; i < 300; ++i) text += "word" + std::to_string(i) + " ";
    text.pop_back();
    const auto lines = wire_lines(reply(status::local_error, text).wire());
    CPPUNIT_ASSERT(lines.size() > 1);
    std::string rebuilt;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      CPPUNIT_ASSERT(lines[i].size() + 2 <= max_reply_line);
      const std::string prefix = i + 1 < lines.size() ? "451-4.3.0 " : "451 4.3.0 ";
      CPPUNIT_ASSERT_EQUAL(prefix, lines[i].substr(0, prefix.size()));
      if (i != 0) rebuilt += ' ';
      rebuilt += lines[i].substr(prefix.size());
    }
    CPPUNIT_ASSERT_EQUAL(text, rebuilt);  // only the breaking spaces were used up
  }
  void long_word_is_split_hard() {
    const std::string word(1200, 'x');
    const auto lines = wire_lines(reply(status::syntax, word).wire());
    CPPUNIT_ASSERT_EQUAL(std::size_t(3), lines.size());
    std::string rebuilt;
    for (const auto& l : lines) {
      CPPUNIT_ASSERT_EQUAL(max_reply_line - 2, std::max(l.size(), max_reply_line - 2));
      rebuilt += l.substr(10);
    }
    CPPUNIT_ASSERT_EQUAL(word, rebuilt);
    CPPUNIT_ASSERT_EQUAL(max_reply_line - 2, lines[0].size());  // filled to the limit exactly
  }
  void ehlo_reply_lists_extensions_without_enhanced_codes() {
    const auto wire = ehlo_reply("mx.example.org Hello [192.0.2.1]",
                                 {"PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8"})
                          .wire();
    CPPUNIT_ASSERT_EQUAL(std::string("250-mx.example.org Hello [192.0.2.1]\r\n"
                                     "250-PIPELINING\r\n"
                                     "250-SIZE 10240000\r\n"
                                     "250-8BITMIME\r\n"
                                     "250 SMTPUTF8\r\n"),
                         wire);
    CPPUNIT_ASSERT_EQUAL(std::string("250 mx.example.org\r\n"),
                         ehlo_reply("mx.example.org", {}).wire());
  }
  void status_table_codes_match_their_enhanced_class() {
    const status_code all[] = {status::ok,
                               status::sender_ok,
                               status::recipient_ok,
                               status::message_accepted,
                               status::chunk_accepted,
                               status::reset_ok,
                               status::noop_ok,
                               status::closing,
                               status::help,
                               status::ready_for_tls,
                               status::auth_ok,
                               status::cannot_verify,
                               status::shutting_down,
                               status::timeout,
                               status::busy,
                               status::too_many_errors,
                               status::mailbox_unavailable_temp,
                               status::local_error,
                               status::backend_unavailable,
                               status::over_quota_temp,
                               status::too_many_recipients,
                               status::insufficient_storage,
                               status::auth_temp_failure,
                               status::tls_not_available,
                               status::unknown_command,
                               status::line_too_long,
                               status::command_bare_lf,
                               status::command_bare_cr,
                               status::syntax,
                               status::bad_sender_syntax,
                               status::bad_recipient_syntax,
                               status::bad_parameter_syntax,
                               status::bad_base64,
                               status::auth_cancelled,
                               status::not_implemented,
                               status::bad_sequence,
                               status::auth_mechanism_unknown,
                               status::auth_required,
                               status::tls_required,
                               status::auth_failed,
                               status::encryption_required,
                               status::unknown_user,
                               status::relay_denied,
                               status::bare_lf,
                               status::bare_cr,
                               status::too_big,
                               status::over_quota_perm,
                               status::utf8_not_permitted,
                               status::message_line_too_long,
                               status::no_valid_recipients,
                               status::transaction_failed,
                               status::unsupported_parameter};
    for (const auto& s : all) {
      CPPUNIT_ASSERT(s.code >= 200 && s.code <= 599);
      CPPUNIT_ASSERT(!s.enhanced.empty());
      CPPUNIT_ASSERT_EQUAL(char('0' + s.code / 100), s.enhanced[0]);
      CPPUNIT_ASSERT(!s.text.empty());
    }
  }
  void status_table_has_the_agreed_codes() {
    auto check = [](const status_code& s, int code, std::string_view enhanced) {
      CPPUNIT_ASSERT_EQUAL(code, s.code);
      CPPUNIT_ASSERT_EQUAL(std::string(enhanced), std::string(s.enhanced));
    };
    check(status::bad_sequence, 503, "5.5.1");
    check(status::syntax, 501, "5.5.4");
    check(status::too_big, 552, "5.3.4");
    check(status::unknown_user, 550, "5.1.1");
    check(status::over_quota_temp, 452, "4.2.2");
    check(status::over_quota_perm, 552, "5.2.2");
    check(status::shutting_down, 421, "4.3.2");
    check(status::timeout, 421, "4.4.2");
    check(status::busy, 421, "4.7.0");
    check(status::tls_required, 530, "5.7.0");
    check(status::auth_ok, 235, "2.7.0");
    check(status::auth_failed, 535, "5.7.8");
    check(status::bare_lf, 550, "5.5.2");
    check(status::line_too_long, 500, "5.5.2");
    check(status::unknown_command, 500, "5.5.1");
    check(status::message_line_too_long, 554, "5.6.0");
    check(status::unsupported_parameter, 555, "5.5.4");
  }
  void every_parse_error_maps_to_its_reply() {
    auto code = [](parse_error e) { return status_for(e).code; };
    CPPUNIT_ASSERT_EQUAL(500, code(parse_error::line_too_long));
    CPPUNIT_ASSERT_EQUAL(500, code(parse_error::bare_lf));
    CPPUNIT_ASSERT_EQUAL(500, code(parse_error::bare_cr));
    CPPUNIT_ASSERT_EQUAL(500, code(parse_error::unknown_command));
    CPPUNIT_ASSERT_EQUAL(501, code(parse_error::syntax));
    CPPUNIT_ASSERT_EQUAL(std::string("5.1.7"),
                         std::string(status_for(parse_error::bad_sender_address).enhanced));
    CPPUNIT_ASSERT_EQUAL(std::string("5.1.3"),
                         std::string(status_for(parse_error::bad_recipient_address).enhanced));
    CPPUNIT_ASSERT_EQUAL(553, code(parse_error::utf8_not_permitted));
    CPPUNIT_ASSERT_EQUAL(501, code(parse_error::bad_parameter_syntax));
    CPPUNIT_ASSERT_EQUAL(555, code(parse_error::unsupported_parameter));
    CPPUNIT_ASSERT_EQUAL(501, code(parse_error::bad_base64));
    CPPUNIT_ASSERT_EQUAL(
        std::string("500 5.5.2 Line too long\r\n"),
        reply_for(command_error{parse_error::line_too_long, "Line too long"}).wire());
    CPPUNIT_ASSERT_EQUAL(std::string("501 5.5.4 Syntax error in parameters or arguments\r\n"),
                         reply_for(command_error{parse_error::syntax, {}}).wire());
  }
  void every_body_verdict_maps_to_its_reply() {
    CPPUNIT_ASSERT_EQUAL(250, status_for(data_status::ok).code);
    CPPUNIT_ASSERT_EQUAL(550, status_for(data_status::bare_lf).code);
    CPPUNIT_ASSERT_EQUAL(550, status_for(data_status::bare_cr).code);
    CPPUNIT_ASSERT_EQUAL(552, status_for(data_status::too_big).code);
    CPPUNIT_ASSERT_EQUAL(554, status_for(data_status::line_too_long).code);
    CPPUNIT_ASSERT_EQUAL(std::string("5.6.0"),
                         std::string(status_for(data_status::line_too_long).enhanced));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(reply_test);

}  // namespace
}  // namespace hamail::smtp

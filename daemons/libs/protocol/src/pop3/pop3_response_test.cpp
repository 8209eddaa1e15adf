#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hamail/protocol/pop3/response.hpp"

namespace hamail::pop3 {
namespace {

class pop3_response_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(pop3_response_test);
  CPPUNIT_TEST(status_lines);
  CPPUNIT_TEST(response_codes);
  CPPUNIT_TEST(lines_are_cleaned_and_cut_at_512);
  CPPUNIT_TEST(capa_list);
  CPPUNIT_TEST(capa_minimal_and_long_sasl);
  CPPUNIT_TEST_SUITE_END();

 public:
  void status_lines() {
    CPPUNIT_ASSERT_EQUAL(std::string("+OK\r\n"), ok());
    CPPUNIT_ASSERT_EQUAL(std::string("+OK 2 320\r\n"), ok("2 320"));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR no such message\r\n"), err("no such message"));
    CPPUNIT_ASSERT_EQUAL(std::string("+ \r\n"), challenge(""));
    CPPUNIT_ASSERT_EQUAL(std::string("+ VXNlcm5hbWU6\r\n"), challenge("VXNlcm5hbWU6"));
  }
  void response_codes() {
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH] Authentication failed\r\n"),
                         err("Authentication failed", resp_code::auth));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/TEMP] Try later\r\n"),
                         err("Try later", resp_code::sys_temp));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/PERM] Gone\r\n"), err("Gone", resp_code::sys_perm));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [IN-USE] Mailbox locked\r\n"),
                         err("Mailbox locked", resp_code::in_use));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [LOGIN-DELAY] Wait\r\n"),
                         err("Wait", resp_code::login_delay));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [AUTH]\r\n"), err("", resp_code::auth));
    CPPUNIT_ASSERT_EQUAL(std::string("+OK [IN-USE] x\r\n"), ok("x", resp_code::in_use));
  }
  void lines_are_cleaned_and_cut_at_512() {
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR a  b c\r\n"), err(std::string_view("a\r\nb\0c", 6)));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR a  b\r\n"), err(std::string_view("a\r\nb", 4)));
    const auto long_err = err(std::string(1000, 'x'), resp_code::sys_temp);
    CPPUNIT_ASSERT_EQUAL(std::size_t(512), long_err.size());
    CPPUNIT_ASSERT_EQUAL(std::string("\r\n"), long_err.substr(510));
    CPPUNIT_ASSERT_EQUAL(std::string("-ERR [SYS/TEMP] xx"), long_err.substr(0, 18));
    CPPUNIT_ASSERT_EQUAL(std::size_t(512), ok(std::string(511, 'y')).size());
    CPPUNIT_ASSERT_EQUAL(std::size_t(511), ok(std::string(505, 'y')).size());
  }
  void capa_list() {
    capabilities caps;
    caps.stls = true;
    caps.sasl = {"PLAIN", "LOGIN"};
    caps.expire = "NEVER";
    caps.login_delay = "0";
    caps.implementation = "hamail";
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Capability list follows\r\n"
                                     "TOP\r\nUIDL\r\nUSER\r\nPIPELINING\r\nRESP-CODES\r\n"
                                     "AUTH-RESP-CODE\r\nSTLS\r\nSASL PLAIN LOGIN\r\n"
                                     "EXPIRE NEVER\r\nLOGIN-DELAY 0\r\nIMPLEMENTATION hamail\r\n"
                                     ".\r\n"),
                         capa(caps));
  }
  void capa_minimal_and_long_sasl() {
    capabilities caps{.top = false,
                      .uidl = false,
                      .user = false,
                      .pipelining = false,
                      .resp_codes = false,
                      .auth_resp_code = false};
    CPPUNIT_ASSERT_EQUAL(std::string("+OK Capability list follows\r\n.\r\n"), capa(caps));
    for (int i = 0; i < 60; ++i) caps.sasl.push_back("MECHANISM-" + std::to_string(i));
    const auto out = capa(caps);
    std::size_t from = 0;
    while (from < out.size()) {
      const auto end = out.find("\r\n", from);
      CPPUNIT_ASSERT(end != std::string::npos);
      CPPUNIT_ASSERT(end + 2 - from <= max_response_line);
      const auto line = out.substr(from, end - from);
      if (line.rfind("SASL", 0) == 0)
        CPPUNIT_ASSERT(line.back() >= '0' && line.back() <= '9');  // whole names only
      from = end + 2;
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(pop3_response_test);

}  // namespace
}  // namespace hamail::pop3

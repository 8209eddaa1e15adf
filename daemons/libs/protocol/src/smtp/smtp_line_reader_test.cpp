#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hamail/protocol/smtp/line_reader.hpp"

namespace hamail::smtp {
namespace {

class line_reader_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(line_reader_test);
  CPPUNIT_TEST(crlf_line_completes_and_leaves_the_rest);
  CPPUNIT_TEST(line_at_limit_passes_one_octet_more_is_too_long);
  CPPUNIT_TEST(over_long_line_is_skipped_with_bounded_buffer);
  CPPUNIT_TEST(over_long_line_split_before_lf_is_reported_once);
  CPPUNIT_TEST(extended_prefix_gets_longer_limit_even_split);
  CPPUNIT_TEST(bare_lf_rejected_by_default);
  CPPUNIT_TEST(bare_lf_accepted_when_configured);
  CPPUNIT_TEST(bare_cr_inside_line_is_rejected);
  CPPUNIT_TEST(buffered_line_view_is_whole_line);
  CPPUNIT_TEST_SUITE_END();

 public:
  void crlf_line_completes_and_leaves_the_rest() {
    line_reader r;
    const std::string in = "NOOP\r\nQUIT\r\n";
    auto s = r.feed(in);
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT_EQUAL(std::size_t(6), s.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string("NOOP"), std::string(s.line));
  }
  void line_at_limit_passes_one_octet_more_is_too_long() {
    line_reader r(line_limits{.max_line = 512});
    const std::string exact = std::string(510, 'a') + "\r\n";
    auto s = r.feed(exact);
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    const std::string over = std::string(511, 'a') + "\r\n";
    s = r.feed(over);
    CPPUNIT_ASSERT(s.status == parse_status::error);
    CPPUNIT_ASSERT(s.error == line_error::line_too_long);
    CPPUNIT_ASSERT_EQUAL(over.size(), s.consumed);
    // the same, arriving one octet at a time
    line_reader slow(line_limits{.max_line = 512});
    for (std::size_t i = 0; i + 1 < over.size(); ++i) {
      s = slow.feed(std::string_view(over).substr(i, 1));
      CPPUNIT_ASSERT(s.status == parse_status::need_more);
    }
    s = slow.feed("\n");
    CPPUNIT_ASSERT(s.error == line_error::line_too_long);
    for (std::size_t i = 0; i < exact.size(); ++i)
      s = slow.feed(std::string_view(exact).substr(i, 1));
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT_EQUAL(std::size_t(510), s.line.size());
  }
  void over_long_line_is_skipped_with_bounded_buffer() {
    line_reader r(line_limits{.max_line = 512});
    const std::string chunk(4096, 'x');
    for (int i = 0; i < 256; ++i) {  // 1 MiB without a line end
      auto s = r.feed(chunk);
      CPPUNIT_ASSERT(s.status == parse_status::need_more);
      CPPUNIT_ASSERT_EQUAL(chunk.size(), s.consumed);
      CPPUNIT_ASSERT(r.buffered() < 512);
    }
    const std::string tail = "yyy\r\nNOOP\r\n";
    auto s = r.feed(tail);
    CPPUNIT_ASSERT(s.error == line_error::line_too_long);
    CPPUNIT_ASSERT_EQUAL(std::size_t(5), s.consumed);
    s = r.feed(std::string_view(tail).substr(5));
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT_EQUAL(std::string("NOOP"), std::string(s.line));
  }
  void over_long_line_split_before_lf_is_reported_once() {
    line_reader r(line_limits{.max_line = 16});
    auto s = r.feed(std::string(20, 'a'));
    CPPUNIT_ASSERT(s.status == parse_status::need_more);
    s = r.feed("\r");
    CPPUNIT_ASSERT(s.status == parse_status::need_more);
    s = r.feed("\nNOOP\r\n");
    CPPUNIT_ASSERT(s.error == line_error::line_too_long);
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), s.consumed);
    s = r.feed("NOOP\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
  }
  void extended_prefix_gets_longer_limit_even_split() {
    const line_limits limits{.max_line = 32, .max_extended_line = 100, .extended_prefix = "AUTH "};
    const std::string auth = "auth PLAIN " + std::string(80, 'A') + "\r\n";  // 93 octets
    const std::string other = "NOOP " + std::string(80, 'A') + "\r\n";
    for (std::size_t cut = 0; cut <= auth.size(); ++cut) {
      line_reader r(limits);
      auto s = r.feed(std::string_view(auth).substr(0, cut));
      if (s.status == parse_status::need_more) s = r.feed(std::string_view(auth).substr(cut));
      CPPUNIT_ASSERT_MESSAGE("cut " + std::to_string(cut), s.status == parse_status::complete);
      line_reader o(limits);
      s = o.feed(std::string_view(other).substr(0, cut));
      if (s.status == parse_status::need_more) s = o.feed(std::string_view(other).substr(cut));
      CPPUNIT_ASSERT_MESSAGE("cut " + std::to_string(cut), s.error == line_error::line_too_long);
    }
    line_reader r(limits);
    auto s = r.feed("AUTH PLAIN " + std::string(100, 'A') + "\r\n");
    CPPUNIT_ASSERT(s.error == line_error::line_too_long);
  }
  void bare_lf_rejected_by_default() {
    line_reader r;
    auto s = r.feed("NOOP\nQUIT\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::error);
    CPPUNIT_ASSERT(s.error == line_error::bare_lf);
    CPPUNIT_ASSERT_EQUAL(std::size_t(5), s.consumed);
  }
  void bare_lf_accepted_when_configured() {
    line_reader r(line_limits{.bare_lf = bare_lf_policy::accept});
    auto s = r.feed("NOOP\nQUIT\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT_EQUAL(std::string("NOOP"), std::string(s.line));
  }
  void bare_cr_inside_line_is_rejected() {
    line_reader r(line_limits{.bare_lf = bare_lf_policy::accept});
    auto s = r.feed("NOOP\rQUIT\r\n");
    CPPUNIT_ASSERT(s.error == line_error::bare_cr);
    CPPUNIT_ASSERT_EQUAL(std::size_t(11), s.consumed);
  }
  void buffered_line_view_is_whole_line() {
    line_reader r;
    CPPUNIT_ASSERT(r.feed("MAIL FROM:").status == parse_status::need_more);
    CPPUNIT_ASSERT_EQUAL(std::size_t(10), r.buffered());
    auto s = r.feed("<a@b>\r\nRSET\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT_EQUAL(std::size_t(7), s.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string("MAIL FROM:<a@b>"), std::string(s.line));
    s = r.feed("RSET\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("RSET"), std::string(s.line));
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), r.buffered());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(line_reader_test);

}  // namespace
}  // namespace hamail::smtp

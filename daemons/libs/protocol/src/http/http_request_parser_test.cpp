#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/http/request_parser.hpp"
#include "hamail/test/split.hpp"

namespace hamail::http {
namespace {

using hamail::test::cut;
using strings = std::vector<std::string>;

// "req:METHOD target 1.x name=value|name=value" or "err:<name>".
std::string render(const parse_step& step) {
  if (step.status == parse_status::error) return "err:" + std::string(to_string(*step.error));
  const auto& r = *step.req;
  std::string s = "req:" + r.method_name + " " + r.target + " 1." + std::to_string(r.version_minor);
  for (std::size_t i = 0; i < r.headers.size(); ++i)
    s += (i ? "|" : " ") + r.headers[i].name + "=" + r.headers[i].value;
  return s;
}

// Feeds pieces the way a session does (keeping unconsumed octets), checking
// the feed contract; stops at the first error, as a session closes.
strings feed_all(request_parser& parser, const std::vector<std::string_view>& pieces,
                 const request_limits& limits) {
  strings out;
  std::string pending;
  const std::size_t bound = std::max(limits.max_request_line + 1, limits.max_header_bytes);
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto step = parser.feed(view);
      CPPUNIT_ASSERT(step.consumed <= view.size());
      CPPUNIT_ASSERT(parser.buffered() <= bound);
      if (step.status == parse_status::need_more) {
        CPPUNIT_ASSERT_EQUAL(view.size(), step.consumed);
        view = {};
        break;
      }
      out.push_back(render(step));
      if (step.status == parse_status::error) return out;
      CPPUNIT_ASSERT(step.consumed > 0);
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  if (!parser.idle() || !pending.empty()) out.emplace_back("partial");
  return out;
}

void check_every_split(std::string_view input, const strings& expected,
                       request_limits limits = {}) {
  for (std::size_t c = 0; c <= input.size(); ++c) {
    request_parser parser(limits);
    const auto got = feed_all(parser, cut(input, {c}), limits);
    std::string shown;
    for (const auto& g : got) shown += "[" + g + "]";
    CPPUNIT_ASSERT_MESSAGE("split at " + std::to_string(c) + ": got " + shown, got == expected);
  }
  std::vector<std::size_t> every;
  for (std::size_t c = 1; c < input.size(); ++c) every.push_back(c);
  request_parser parser(limits);
  CPPUNIT_ASSERT_MESSAGE("byte by byte", feed_all(parser, cut(input, every), limits) == expected);
}

request parse_one(std::string_view input) {
  request_parser parser;
  auto step = parser.feed(input);
  CPPUNIT_ASSERT_MESSAGE(std::string(input), step.status == parse_status::complete);
  return std::move(*step.req);
}

class http_request_parser_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(http_request_parser_test);
  CPPUNIT_TEST(pipelined_requests_parse_at_every_split);
  CPPUNIT_TEST(what_curl_haproxy_and_keepalived_send);
  CPPUNIT_TEST(bare_lf_line_ends_and_leading_empty_lines);
  CPPUNIT_TEST(header_names_lowered_values_trimmed);
  CPPUNIT_TEST(malformed_request_lines_are_bad_requests);
  CPPUNIT_TEST(http_versions);
  CPPUNIT_TEST(malformed_header_fields_are_bad_requests);
  CPPUNIT_TEST(host_is_required_once_in_http_1_1);
  CPPUNIT_TEST(bodies_are_refused);
  CPPUNIT_TEST(request_line_limit_is_1024);
  CPPUNIT_TEST(header_section_limit_is_8192);
  CPPUNIT_TEST(at_most_50_header_fields);
  CPPUNIT_TEST(endless_input_is_bounded);
  CPPUNIT_TEST(error_is_sticky_until_reset);
  CPPUNIT_TEST(path_and_keep_alive);
  CPPUNIT_TEST(status_codes_and_texts);
  CPPUNIT_TEST_SUITE_END();

 public:
  void pipelined_requests_parse_at_every_split() {
    check_every_split(
        "GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text\r\n\r\n"
        "HEAD /ready HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /live?x=1 HTTP/1.0\r\n\r\n"
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        strings{"req:GET /metrics 1.1 host=a|accept=application/openmetrics-text",
                "req:HEAD /ready 1.1 host=a", "req:GET /live?x=1 1.0",
                "req:POST /x 1.1 host=a|content-length=0"});
    check_every_split("GET / HTTP/1.1\r\nHost: a\r\n", strings{"partial"});
  }

  void what_curl_haproxy_and_keepalived_send() {
    check_every_split(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: curl/7.88.1\r\n"
        "Accept: */*\r\n\r\n",
        strings{"req:GET /metrics 1.1 host=127.0.0.1:9100|user-agent=curl/7.88.1|accept=*/*"});
    check_every_split("OPTIONS * HTTP/1.0\r\n\r\nGET /ready HTTP/1.0\r\n\r\n",
                      strings{"req:OPTIONS * 1.0", "req:GET /ready 1.0"});
    check_every_split(
        "GET /ready HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.5:9100\r\n\r\n",
        strings{"req:GET /ready 1.0 user-agent=KeepAliveClient|host=10.0.0.5:9100"});
    check_every_split("GET http://proxy.example/metrics HTTP/1.1\r\nHost: proxy.example\r\n\r\n",
                      strings{"req:GET http://proxy.example/metrics 1.1 host=proxy.example"});
  }

  void bare_lf_line_ends_and_leading_empty_lines() {
    check_every_split("GET / HTTP/1.1\nHost: a\n\nGET /b HTTP/1.0\r\n\n",
                      strings{"req:GET / 1.1 host=a", "req:GET /b 1.0"});
    check_every_split("\r\n\r\n\nGET / HTTP/1.0\r\n\r\n", strings{"req:GET / 1.0"});
    check_every_split("GET / HTTP/1.0\r\nX: a\rb\r\n\r\n", strings{"err:bad_request"});
    check_every_split("GET /\r HTTP/1.0\r\n\r\n", strings{"err:bad_request"});
    check_every_split("GET / HTTP/1.0\r\n\r\r\n", strings{"err:bad_request"});
  }

  void header_names_lowered_values_trimmed() {
    check_every_split(
        "GET / HTTP/1.1\r\nHOST:a\r\nX-Empty:\r\nX-Sp: \t v  a l \t\r\n"
        "X-Utf8: caf\xc3\xa9\r\n\r\n",
        strings{"req:GET / 1.1 host=a|x-empty=|x-sp=v  a l|x-utf8=caf\xc3\xa9"});
  }

  void malformed_request_lines_are_bad_requests() {
    for (const char* line :
         {"GET\r\n", "GET /\r\n", "GET  / HTTP/1.1\r\n", "GET / HTTP/1.1 \r\n",
          " GET / HTTP/1.1\r\n", "GET / HTTP/1.1 x\r\n", "G(T / HTTP/1.1\r\n", "GET x HTTP/1.1\r\n",
          "GET /\x01 HTTP/1.1\r\n", "GET /\xc3\xa9 HTTP/1.1\r\n", "GET /a\tb HTTP/1.1\r\n",
          "GET / http/1.1\r\n", "GET / HTTP/1.\r\n", "GET / HTTP/11.1\r\n", "GET / HTTP/1.1x\r\n",
          "GET / HTTP/x.1\r\n", "GET ftp://x/ HTTP/1.1\r\n"}) {
      check_every_split(std::string(line) + "Host: a\r\n\r\n", strings{"err:bad_request"});
    }
    check_every_split(std::string("GET /\0 HTTP/1.1\r\n\r\n", 19), strings{"err:bad_request"});
  }

  void http_versions() {
    check_every_split("GET / HTTP/2.0\r\n\r\n", strings{"err:version_not_supported"});
    check_every_split("GET / HTTP/0.9\r\n\r\n", strings{"err:version_not_supported"});
    check_every_split("GET / HTTP/1.9\r\nHost: a\r\n\r\n", strings{"req:GET / 1.1 host=a"});
  }

  void malformed_header_fields_are_bad_requests() {
    for (const char* field :
         {"NoColon\r\n", ": empty-name\r\n", "Bad Name: x\r\n", "Name : x\r\n", " folded: x\r\n",
          "\tfolded: x\r\n", "X: a\x01z\r\n", "X: a\x7fz\r\n", "X(: y\r\n"}) {
      check_every_split("GET / HTTP/1.0\r\n" + std::string(field) + "\r\n",
                        strings{"err:bad_request"});
    }
    // obs-fold after a good field is refused too.
    check_every_split("GET / HTTP/1.0\r\nX: a\r\n b\r\n\r\n", strings{"err:bad_request"});
  }

  void host_is_required_once_in_http_1_1() {
    check_every_split("GET / HTTP/1.1\r\n\r\n", strings{"err:missing_host"});
    check_every_split("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", strings{"err:missing_host"});
    check_every_split("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", strings{"err:missing_host"});
    check_every_split("GET / HTTP/1.1\r\nHost:\r\n\r\n", strings{"req:GET / 1.1 host="});
  }

  void bodies_are_refused() {
    check_every_split("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                      strings{"err:body_not_allowed"});
    check_every_split("GET / HTTP/1.0\r\nContent-Length: 00\r\n\r\n",
                      strings{"req:GET / 1.0 content-length=00"});
    check_every_split("GET / HTTP/1.0\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
                      strings{"err:body_not_allowed"});
    for (const char* bad :
         {"Content-Length: -1\r\n", "Content-Length: 0, 0\r\n", "Content-Length:\r\n",
          "Content-Length: 0x0\r\n", "Content-Length: 0\r\nContent-Length: 00\r\n"}) {
      check_every_split("GET / HTTP/1.0\r\n" + std::string(bad) + "\r\n",
                        strings{"err:body_not_allowed"});
    }
    check_every_split("GET / HTTP/1.0\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
                      strings{"req:GET / 1.0 content-length=0|content-length=0"});
    check_every_split("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      strings{"err:transfer_encoding"});
    // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3), so no smuggling shape passes.
    check_every_split(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        strings{"err:transfer_encoding"});
  }

  void request_line_limit_is_1024() {
    const std::string at = "GET /" + std::string(1024 - 14, 'a') + " HTTP/1.0";
    const std::string over = "GET /" + std::string(1025 - 14, 'a') + " HTTP/1.0";
    CPPUNIT_ASSERT_EQUAL(std::size_t(1024), at.size());
    CPPUNIT_ASSERT_EQUAL(std::size_t(1025), over.size());
    check_every_split(at + "\r\n\r\n", strings{"req:" + at.substr(0, at.size() - 9) + " 1.0"});
    check_every_split(at + "\n\n", strings{"req:" + at.substr(0, at.size() - 9) + " 1.0"});
    check_every_split(over + "\r\n\r\n", strings{"err:uri_too_long"});
    check_every_split(over + "\n\n", strings{"err:uri_too_long"});
    check_every_split("GET /" + std::string(5000, 'a'), strings{"err:uri_too_long"});
    check_every_split("GET /abc HTTP/1.0\r\n\r\n", strings{"err:uri_too_long"},
                      request_limits{.max_request_line = 16});
    // Leading empty lines count against the same limit.
    check_every_split(std::string(1030, '\n') + "GET / HTTP/1.0\r\n\r\n",
                      strings{"err:bad_request"});
  }

  void header_section_limit_is_8192() {
    // "X: " + value + CRLF per field, then the final CRLF: 8192 octets exactly.
    const std::string head = "GET / HTTP/1.0\r\n";
    const std::string big = "X: " + std::string(8192 - 2 - 5, 'v') + "\r\n";
    CPPUNIT_ASSERT_EQUAL(std::size_t(8190), big.size());
    check_every_split(head + big + "\r\n", strings{"req:GET / 1.0 x=" + std::string(8185, 'v')});
    const std::string bigger = "X: " + std::string(8192 - 2 - 4, 'v') + "\r\n";
    check_every_split(head + bigger + "\r\n", strings{"err:headers_too_large"});
    check_every_split(head + "X: " + std::string(9000, 'v'), strings{"err:headers_too_large"});
    check_every_split(head + "A: 1\r\nB: 2\r\n\r\n", strings{"err:headers_too_large"},
                      request_limits{.max_header_bytes = 13});
    check_every_split(head + "A: 1\r\nB: 2\r\n\r\n", strings{"req:GET / 1.0 a=1|b=2"},
                      request_limits{.max_header_bytes = 14});
  }

  void at_most_50_header_fields() {
    std::string fields;
    std::string expected = "req:GET / 1.0 ";
    for (int i = 0; i < 50; ++i) {
      fields += "H" + std::to_string(i) + ": v\r\n";
      expected += (i ? "|h" : "h") + std::to_string(i) + "=v";
    }
    check_every_split("GET / HTTP/1.0\r\n" + fields + "\r\n", strings{expected});
    check_every_split("GET / HTTP/1.0\r\n" + fields + "H50: v\r\n\r\n",
                      strings{"err:headers_too_large"});
  }

  void endless_input_is_bounded() {
    request_parser parser;
    const std::string chunk(4096, 'x');
    CPPUNIT_ASSERT(parser.idle());
    auto s = parser.feed("GET / HTTP/1.0\r\nX: ");
    CPPUNIT_ASSERT(s.status == parse_status::need_more);
    CPPUNIT_ASSERT(!parser.idle());
    s = parser.feed(chunk);
    CPPUNIT_ASSERT(s.status == parse_status::need_more);
    CPPUNIT_ASSERT_EQUAL(std::size_t(4099), parser.buffered());
    s = parser.feed(chunk);
    CPPUNIT_ASSERT(s.status == parse_status::error);
    CPPUNIT_ASSERT(s.consumed <= chunk.size());
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), parser.buffered());
    // Endless empty lines before a request are bounded too.
    request_parser blank;
    for (int i = 0; i < 600 && s.status != parse_status::error; ++i) s = blank.feed("\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::error);
  }

  void error_is_sticky_until_reset() {
    request_parser parser;
    auto s = parser.feed("BAD\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::error);
    CPPUNIT_ASSERT_EQUAL(std::size_t(5), s.consumed);
    s = parser.feed("GET / HTTP/1.0\r\n\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::error);
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), s.consumed);
    CPPUNIT_ASSERT(*s.error == request_error::bad_request);
    parser.reset();
    s = parser.feed("GET / HTTP/1.0\r\n\r\n");
    CPPUNIT_ASSERT(s.status == parse_status::complete);
    CPPUNIT_ASSERT(s.req->verb == method::get);
  }

  void path_and_keep_alive() {
    auto r = parse_one("GET /metrics?name[]=x HTTP/1.1\r\nHost: a\r\n\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("/metrics"), std::string(r.path()));
    CPPUNIT_ASSERT(r.keep_alive());
    CPPUNIT_ASSERT(r.verb == method::get);
    r = parse_one("GET http://h:1/ready?x HTTP/1.1\r\nHost: h\r\n\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("/ready"), std::string(r.path()));
    r = parse_one("GET https://h HTTP/1.1\r\nHost: h\r\n\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("/"), std::string(r.path()));
    r = parse_one("HEAD / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n");
    CPPUNIT_ASSERT(!r.keep_alive());
    CPPUNIT_ASSERT(r.verb == method::head);
    r = parse_one("GET / HTTP/1.0\r\n\r\n");
    CPPUNIT_ASSERT(!r.keep_alive());
    r = parse_one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CPPUNIT_ASSERT(r.keep_alive());
    r = parse_one("get / HTTP/1.0\r\n\r\n");
    CPPUNIT_ASSERT(r.verb == method::other);  // methods are case-sensitive
    CPPUNIT_ASSERT(r.header("x") == std::nullopt);
    // The first of repeated fields.
    CPPUNIT_ASSERT_EQUAL(
        std::string("1"),
        std::string(*parse_one("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nX: 2\r\n\r\n").header("x")));
  }

  void status_codes_and_texts() {
    CPPUNIT_ASSERT_EQUAL(400, status_code(request_error::bad_request));
    CPPUNIT_ASSERT_EQUAL(400, status_code(request_error::missing_host));
    CPPUNIT_ASSERT_EQUAL(400, status_code(request_error::body_not_allowed));
    CPPUNIT_ASSERT_EQUAL(414, status_code(request_error::uri_too_long));
    CPPUNIT_ASSERT_EQUAL(431, status_code(request_error::headers_too_large));
    CPPUNIT_ASSERT_EQUAL(501, status_code(request_error::transfer_encoding));
    CPPUNIT_ASSERT_EQUAL(505, status_code(request_error::version_not_supported));
    CPPUNIT_ASSERT_EQUAL(std::string("Transfer-Encoding is not supported"),
                         std::string(describe(request_error::transfer_encoding)));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(http_request_parser_test);

}  // namespace
}  // namespace hamail::http

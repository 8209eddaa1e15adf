#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/proxy/header_parser.hpp"
#include "hamail/test/split.hpp"

namespace hamail::proxy_protocol {
namespace {

using hamail::test::cut;

// ---- building headers by hand, independently of encode_v2 ----------------

std::string octets(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

std::string be16(std::size_t v) {
  return octets({static_cast<int>(v >> 8), static_cast<int>(v & 0xff)});
}

// A v2 header: signature, version/command, family/transport, length, body.
std::string v2(int ver_cmd, int fam_proto, const std::string& body) {
  return std::string(v2_signature) + octets({ver_cmd, fam_proto}) + be16(body.size()) + body;
}

std::string tlv_bytes(int type, const std::string& value) {
  return octets({type}) + be16(value.size()) + value;
}

// 192.0.2.1:56324 -> 198.51.100.11:443
const std::string inet_block = octets({192, 0, 2, 1, 198, 51, 100, 11}) + be16(56324) + be16(443);
// [2001:db8::1]:12345 -> [2001:db8::2]:993
const std::string inet6_block =
    octets({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}) +
    be16(12345) + be16(993);

std::string unix_block(std::string a, std::string b) {
  a.resize(108, '\0');
  b.resize(108, '\0');
  return a + b;
}

// The header with its trailing CRC32C TLV value filled in.
std::string with_crc(std::string hdr) {
  const std::uint32_t crc = crc32c(hdr);
  for (int k = 0; k < 4; ++k)
    hdr[hdr.size() - 4 + k] = static_cast<char>((crc >> (24 - 8 * k)) & 0xff);
  return hdr;
}

std::string hex(std::string_view s) {
  static constexpr char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 0xf]);
  }
  return out;
}

// ---- rendering results for comparison --------------------------------------

std::string show(const endpoint& ep, family fam) {
  std::string out;
  if (fam == family::inet) {
    for (int i = 0; i < 4; ++i) out += (i ? "." : "") + std::to_string(ep.address[i]);
  } else {
    out = "[" + hex(std::string_view(reinterpret_cast<const char*>(ep.address.data()), 16)) + "]";
  }
  return out + ":" + std::to_string(ep.port);
}

std::string show(const header& h) {
  static const char* fams[] = {"unspec", "inet", "inet6", "unix"};
  static const char* protos[] = {"unspec", "stream", "dgram"};
  std::string out = "v" + std::to_string(h.version) +
                    (h.cmd == command::local ? " local " : " proxy ") +
                    fams[static_cast<int>(h.fam)] + " " + protos[static_cast<int>(h.proto)];
  if (h.fam == family::inet || h.fam == family::inet6)
    out += " " + show(h.source, h.fam) + ">" + show(h.destination, h.fam);
  else if (h.fam == family::unix_socket)
    out += " " + h.source_path + ">" + h.destination_path;
  else
    CPPUNIT_ASSERT(h.source == endpoint{} && h.destination == endpoint{});
  if (h.authority) out += " authority=" + *h.authority;
  if (h.unique_id) out += " uid=" + hex(*h.unique_id);
  if (h.ssl) {
    out += " ssl=" + std::to_string(h.ssl->client) + "/" + std::to_string(h.ssl->verify) + "/" +
           h.ssl->version + "/" + h.ssl->cn + "/" + h.ssl->cipher + "/" + h.ssl->sig_alg + "/" +
           h.ssl->key_alg;
  }
  for (const auto& t : h.other_tlvs) out += " tlv" + std::to_string(t.type) + "=" + hex(t.value);
  if (h.crc32c) out += " crc32c";
  return out;
}

std::string render(const parse_step& s) {
  if (s.status == parse_status::need_more) return "need_more";
  if (s.status == parse_status::error) {
    CPPUNIT_ASSERT(s.error && !s.hdr);
    return "err:" + std::string(to_string(*s.error));
  }
  CPPUNIT_ASSERT(s.hdr && !s.error);
  return show(*s.hdr);
}

struct outcome {
  std::string what;
  std::size_t consumed = 0;  // octets consumed over all feeds
};

// Feeds pieces until the parser finishes, checking the feed contract.
outcome feed_pieces(header_parser& parser, const std::vector<std::string_view>& pieces,
                    std::size_t bound) {
  outcome out{"need_more", 0};
  for (auto piece : pieces) {
    const auto s = parser.feed(piece);
    CPPUNIT_ASSERT(s.consumed <= piece.size());
    CPPUNIT_ASSERT(parser.buffered() <= bound);
    out.consumed += s.consumed;
    if (s.status == parse_status::need_more) {
      CPPUNIT_ASSERT_EQUAL(piece.size(), s.consumed);
      continue;
    }
    out.what = render(s);
    // Once finished, nothing more is taken and the answer is repeated.
    const auto again = parser.feed(piece.substr(s.consumed));
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), again.consumed);
    CPPUNIT_ASSERT_EQUAL(out.what, render(again));
    return out;
  }
  return out;
}

// The input, whole, cut once at every position, and byte by byte, gives
// `expected` after exactly `consumed` octets.
void check_every_split(std::string_view input, const std::string& expected, std::size_t consumed,
                       limits lim = {}) {
  const std::size_t bound = std::max(max_v1_line, lim.max_v2_length);
  const std::string where = " of " + hex(input.substr(0, 40));
  for (std::size_t c = 0; c <= input.size(); ++c) {
    header_parser parser(lim);
    const auto got = feed_pieces(parser, cut(input, {c}), bound);
    CPPUNIT_ASSERT_EQUAL_MESSAGE("split at " + std::to_string(c) + where, expected, got.what);
    CPPUNIT_ASSERT_EQUAL_MESSAGE("consumed, split at " + std::to_string(c) + where, consumed,
                                 got.consumed);
  }
  std::vector<std::size_t> every;
  for (std::size_t c = 1; c < input.size(); ++c) every.push_back(c);
  header_parser parser(lim);
  const auto got = feed_pieces(parser, cut(input, every), bound);
  CPPUNIT_ASSERT_EQUAL_MESSAGE("byte by byte" + where, expected, got.what);
  CPPUNIT_ASSERT_EQUAL_MESSAGE("consumed, byte by byte" + where, consumed, got.consumed);
}

// A complete header followed by a pipelined command: only the header is taken.
void check_header(const std::string& hdr, const std::string& expected, limits lim = {}) {
  check_every_split(hdr + "CAPA\r\n", expected, hdr.size(), lim);
  check_every_split(hdr, expected, hdr.size(), lim);
}

void check_error(const std::string& input, const std::string& code, std::size_t consumed,
                 limits lim = {}) {
  check_every_split(input, "err:" + code, consumed, lim);
  check_every_split(input + "CAPA\r\n", "err:" + code, consumed, lim);
}

header parsed(std::string_view input) {
  header_parser parser;
  auto s = parser.feed(input);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(
      hex(input), std::string("complete"),
      std::string(s.status == parse_status::complete ? "complete" : render(s)));
  return *s.hdr;
}

const std::string inet_text = "v2 proxy inet stream 192.0.2.1:56324>198.51.100.11:443";
const std::string inet6_text =
    "v2 proxy inet6 stream [20010db8000000000000000000000001]:12345>"
    "[20010db8000000000000000000000002]:993";

class proxy_header_parser_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(proxy_header_parser_test);
  CPPUNIT_TEST(v1_tcp4_spec_example_at_every_split);
  CPPUNIT_TEST(v1_tcp6_forms_at_every_split);
  CPPUNIT_TEST(v1_unknown_ignores_the_rest_of_the_line);
  CPPUNIT_TEST(v1_line_limit_is_107_including_crlf);
  CPPUNIT_TEST(v1_bad_line_ends);
  CPPUNIT_TEST(v1_bad_protocol_fields_and_syntax);
  CPPUNIT_TEST(v1_bad_addresses);
  CPPUNIT_TEST(v1_bad_ports);
  CPPUNIT_TEST(v2_proxy_inet_and_inet6_at_every_split);
  CPPUNIT_TEST(v2_proxy_unix_and_dgram);
  CPPUNIT_TEST(v2_proxy_unspec_ignores_the_block);
  CPPUNIT_TEST(v2_local_ignores_family_addresses_and_tlvs);
  CPPUNIT_TEST(v2_tlvs_authority_unique_id_ssl_and_others);
  CPPUNIT_TEST(v2_other_tlvs_are_kept_up_to_the_limit);
  CPPUNIT_TEST(v2_crc32c_is_checked);
  CPPUNIT_TEST(v2_haproxy_send_proxy_v2_layouts);
  CPPUNIT_TEST(v2_bad_signature_version_command_family);
  CPPUNIT_TEST(v2_length_limit_refuses_before_buffering);
  CPPUNIT_TEST(v2_truncated_address_block);
  CPPUNIT_TEST(v2_bad_tlvs);
  CPPUNIT_TEST(not_a_proxy_header);
  CPPUNIT_TEST(versions_can_be_turned_off);
  CPPUNIT_TEST(hand_built_bytes_match_the_encoder);
  CPPUNIT_TEST(encoders_round_trip);
  CPPUNIT_TEST(encode_v1_forms);
  CPPUNIT_TEST(looks_like_proxy_header_prefixes);
  CPPUNIT_TEST(crc32c_known_vector);
  CPPUNIT_TEST(error_names_texts_and_kinds);
  CPPUNIT_TEST_SUITE_END();

 public:
  void v1_tcp4_spec_example_at_every_split() {
    // The example of spec section 2.1, before an HTTP request.
    const std::string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    check_every_split(line + "GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n",
                      "v1 proxy inet stream 192.168.0.1:56324>192.168.0.11:443", line.size());
    check_header("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n",
                 "v1 proxy inet stream 255.255.255.255:65535>0.0.0.0:0");
  }
  void v1_tcp6_forms_at_every_split() {
    check_header("PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:2 12345 993\r\n",
                 "v1 proxy inet6 stream [20010db8000000000000000000000001]:12345>"
                 "[20010db8000000000000000000000002]:993");
    // The longest TCP6 line of the spec: 104 octets.
    const std::string ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string longest = "PROXY TCP6 " + ff + " " + ff + " 65535 65535\r\n";
    CPPUNIT_ASSERT_EQUAL(std::size_t(104), longest.size());
    check_header(longest, "v1 proxy inet6 stream [" + std::string(32, 'f') + "]:65535>[" +
                              std::string(32, 'f') + "]:65535");
    // inet_ntop's forms: "::", leading "::", IPv4-mapped dotted tail.
    check_header("PROXY TCP6 ::ffff:192.0.2.1 :: 1 2\r\n",
                 "v1 proxy inet6 stream [00000000000000000000ffffc0000201]:1>"
                 "[00000000000000000000000000000000]:2");
    check_header("PROXY TCP6 1:: 1:2:3:4:5:6:7:: 1 2\r\n",
                 "v1 proxy inet6 stream [00010000000000000000000000000000]:1>"
                 "[00010002000300040005000600070000]:2");
  }
  void v1_unknown_ignores_the_rest_of_the_line() {
    check_header("PROXY UNKNOWN\r\n", "v1 proxy unspec unspec");
    check_header("PROXY UNKNOWN whatever \x01 is here\r\n", "v1 proxy unspec unspec");
  }
  void v1_line_limit_is_107_including_crlf() {
    const std::string ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string worst = "PROXY UNKNOWN " + ff + " " + ff + " 65535 65535\r\n";
    CPPUNIT_ASSERT_EQUAL(max_v1_line, worst.size());
    check_header(worst, "v1 proxy unspec unspec");
    // One octet more: refused at the 107th octet, which is not the LF.
    const std::string over = "PROXY UNKNOWN " + ff + " " + ff + " 65535 655350\r\n";
    check_error(over, "v1_line_too_long", 107);
    // No line end at all: refused after 107 octets whatever follows.
    check_error("PROXY TCP4 " + std::string(500, '1'), "v1_line_too_long", 107);
  }
  void v1_bad_line_ends() {
    check_error("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", "v1_bad_line_end", 35);
    check_error("PROXY TCP4 192.0.2.1\r192.0.2.2 1 2\r\n", "v1_bad_line_end", 22);
    check_error("PROXY UNKNOWN\r\r\n", "v1_bad_line_end", 15);
    check_error("PROXY \n", "v1_bad_line_end", 7);
  }
  void v1_bad_protocol_fields_and_syntax() {
    check_error("PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n", "v1_bad_protocol", 36);
    check_error("PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n", "v1_bad_protocol", 36);
    check_error("PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", "v1_bad_protocol", 36);
    check_error("PROXY UNKNOWNX\r\n", "v1_bad_protocol", 16);
    check_error("PROXY \r\n", "v1_bad_protocol", 8);
    check_error("PROXY TCP4\r\n", "v1_syntax", 12);
    check_error("PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", "v1_syntax", 34);
    check_error("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n", "v1_syntax", 38);
    check_error("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n", "v1_syntax", 37);
    check_error("PROXY TCP4  192.0.2.1 192.0.2.2 1\r\n", "v1_syntax", 35);
    check_error("PROXY TCP4 192.0.2.1 192.0.2.2  2\r\n", "v1_syntax", 35);
  }
  void v1_bad_addresses() {
    for (const char* a : {"192.0.2.01", "192.0.2", "192.0.2.1.5", "256.0.0.1", "1..2.3",
                          "192.0.2.1a", "::1", "", "-1.0.0.0", "1.2.3.4 "}) {
      const std::string line = "PROXY TCP4 " + std::string(a) + " 192.0.2.2 1 2\r\n";
      const bool syntax = std::string_view(a).empty() || std::string_view(a).ends_with(' ');
      check_error(line, syntax ? "v1_syntax" : "v1_bad_address", line.size());
    }
    for (const char* a :
         {"192.0.2.1", "2001:db8:::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::1", "::g",
          ":1::", "1::2::3", "1:2:3:4:5:6:7:8::", "::ffff:1.2.3", "::1.2.3.4:5", "1.2.3.4::"}) {
      const std::string line = "PROXY TCP6 " + std::string(a) + " ::2 1 2\r\n";
      check_error(line, "v1_bad_address", line.size());
    }
    // The destination is checked too.
    check_error("PROXY TCP4 192.0.2.1 2001:db8::1 1 2\r\n", "v1_bad_address", 38);
  }
  void v1_bad_ports() {
    for (const char* p : {"65536", "01", "00", "1a", "-1", "+1", "999999", "0x10"}) {
      std::string line = "PROXY TCP4 192.0.2.1 192.0.2.2 " + std::string(p) + " 25\r\n";
      check_error(line, "v1_bad_port", line.size());
      line = "PROXY TCP4 192.0.2.1 192.0.2.2 25 " + std::string(p) + "\r\n";
      check_error(line, "v1_bad_port", line.size());
    }
  }
  void v2_proxy_inet_and_inet6_at_every_split() {
    check_header(v2(0x21, 0x11, inet_block), inet_text);
    check_header(v2(0x21, 0x21, inet6_block), inet6_text);
    // A client speaking first right after the header (an SMTP pipeliner, or
    // the start of a TLS ClientHello on an implicit-TLS port).
    check_every_split(v2(0x21, 0x11, inet_block) + octets({0x16, 0x03, 0x01, 0x02, 0x00}),
                      inet_text, 28);
  }
  void v2_proxy_unix_and_dgram() {
    check_header(v2(0x21, 0x31, unix_block("/run/haproxy/front.sock", "/run/hamail/imap.sock")),
                 "v2 proxy unix stream /run/haproxy/front.sock>/run/hamail/imap.sock");
    // A path filling all 108 octets has no NUL.
    const std::string full(108, 'p');
    check_header(v2(0x21, 0x32, unix_block(full, "")), "v2 proxy unix dgram " + full + ">");
    check_header(v2(0x21, 0x12, inet_block),
                 "v2 proxy inet dgram 192.0.2.1:56324>198.51.100.11:443");
    check_header(v2(0x21, 0x22, inet6_block), "v2 proxy inet6 dgram" + inet6_text.substr(21));
  }
  void v2_proxy_unspec_ignores_the_block() {
    check_header(v2(0x21, 0x00, ""), "v2 proxy unspec unspec");
    check_header(v2(0x21, 0x00, "junk that is not a TLV"), "v2 proxy unspec unspec");
  }
  void v2_local_ignores_family_addresses_and_tlvs() {
    check_header(v2(0x20, 0x00, ""), "v2 local unspec unspec");
    check_header(v2(0x20, 0x11, inet_block + tlv_bytes(0x02, "x")), "v2 local unspec unspec");
    // Even a family the spec does not define, and a body that is not TLVs.
    check_header(v2(0x20, 0xff, "\x01"), "v2 local unspec unspec");
  }
  void v2_tlvs_authority_unique_id_ssl_and_others() {
    const std::string ssl = octets({0x07, 0, 0, 0, 0}) + tlv_bytes(0x21, "TLSv1.3") +
                            tlv_bytes(0x22, "alice") + tlv_bytes(0x23, "TLS_AES_128_GCM_SHA256") +
                            tlv_bytes(0x24, "RSA-SHA256") + tlv_bytes(0x25, "RSA2048") +
                            tlv_bytes(0x26, "sub-TLV of no interest");
    const std::string body = inet_block + tlv_bytes(0x02, "imap.example.org") +
                             tlv_bytes(0x05, octets({1, 2, 3, 4})) + tlv_bytes(0x20, ssl) +
                             tlv_bytes(0x04, std::string(3, '\0')) + tlv_bytes(0x01, "imap") +
                             tlv_bytes(0xe0, "") + tlv_bytes(0x30, "blue");
    check_header(v2(0x21, 0x11, body),
                 inet_text +
                     " authority=imap.example.org uid=01020304"
                     " ssl=7/0/TLSv1.3/alice/TLS_AES_128_GCM_SHA256/RSA-SHA256/RSA2048"
                     " tlv1=696d6170 tlv224= tlv48=626c7565");
    // SSL without sub-TLVs, non-zero verify (certificate not verified).
    check_header(v2(0x21, 0x21, inet6_block + tlv_bytes(0x20, octets({0x01, 0, 0, 0, 0x12}))),
                 inet6_text + " ssl=1/18/////");
    // A unique id of exactly 128 octets; an empty authority.
    const std::string uid(128, '\xab');
    check_header(v2(0x21, 0x11, inet_block + tlv_bytes(0x05, uid) + tlv_bytes(0x02, "")),
                 inet_text + " authority= uid=" + hex(uid));
  }
  void v2_other_tlvs_are_kept_up_to_the_limit() {
    std::string body = inet_block;
    for (int i = 0; i < 5; ++i) body += tlv_bytes(0xe0 + i, std::string(1, 'a' + i));
    check_header(v2(0x21, 0x11, body), inet_text + " tlv224=61 tlv225=62", {.max_other_tlvs = 2});
    check_header(v2(0x21, 0x11, body), inet_text, {.max_other_tlvs = 0});
  }
  void v2_crc32c_is_checked() {
    const std::string hdr = with_crc(
        v2(0x21, 0x11, inet_block + tlv_bytes(0x02, "a") + tlv_bytes(0x03, octets({0, 0, 0, 0}))));
    check_header(hdr, inet_text + " authority=a crc32c");
    // Any octet but the CRC's own TLV header: an address, a port, the
    // authority's value, the CRC itself.
    for (std::size_t i : {std::size_t(17), std::size_t(26), hdr.size() - 8, hdr.size() - 1}) {
      std::string bad = hdr;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      check_error(bad, "bad_checksum", hdr.size());
    }
  }
  void v2_haproxy_send_proxy_v2_layouts() {
    // The layout HAProxy's make_proxy_line_v2 (src/connection.c) writes for
    // "send-proxy-v2 proxy-v2-options crc32c,authority,unique-id,ssl,ssl-cn,
    // cert-key,cert-sig,ssl-cipher", octet by octet: the CRC32C TLV first,
    // then ALPN, AUTHORITY, UNIQUE_ID and SSL with its sub-TLVs in the order
    // VERSION, CN, KEY_ALG, SIG_ALG, CIPHER. Built by hand (no haproxy here).
    const std::string ssl = octets({0x07, 0, 0, 0, 0}) + tlv_bytes(0x21, "TLSv1.3") +
                            tlv_bytes(0x22, "alice") + tlv_bytes(0x25, "RSA2048") +
                            tlv_bytes(0x24, "RSA-SHA256") +
                            tlv_bytes(0x23, "TLS_AES_256_GCM_SHA384");
    std::string hdr = v2(0x21, 0x11,
                         inet_block + tlv_bytes(0x03, octets({0, 0, 0, 0})) +
                             tlv_bytes(0x01, "imap") + tlv_bytes(0x02, "imap.example.org") +
                             tlv_bytes(0x05, "7F000001:C3A2") + tlv_bytes(0x20, ssl));
    // The CRC (big-endian, over the header with its field zeroed) sits
    // right after the address block here.
    const std::size_t at = 16 + 12 + 3;
    const std::uint32_t crc = crc32c(hdr);
    for (int k = 0; k < 4; ++k) hdr[at + k] = static_cast<char>((crc >> (24 - 8 * k)) & 0xff);
    check_header(hdr, inet_text + " authority=imap.example.org uid=" + hex("7F000001:C3A2") +
                          " ssl=7/0/TLSv1.3/alice/TLS_AES_256_GCM_SHA384/RSA-SHA256/RSA2048"
                          " tlv1=696d6170 crc32c");
    // Its health checks: LOCAL with UNSPEC, yet followed by the TLVs it was
    // told to send; all of it is skipped.
    check_header(v2(0x20, 0x00, tlv_bytes(0x03, octets({1, 2, 3, 4})) + tlv_bytes(0x02, "x")),
                 "v2 local unspec unspec");
    // An IPv4 client reaching an IPv6 address: both sent as IPv6, the
    // client v4-mapped.
    const std::string mixed =
        octets({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1}) + inet6_block.substr(16);
    check_header(v2(0x21, 0x21, mixed),
                 "v2 proxy inet6 stream [00000000000000000000ffffc0000201]:12345>"
                 "[20010db8000000000000000000000002]:993");
  }
  void v2_bad_signature_version_command_family() {
    std::string sig(v2_signature);
    for (std::size_t i = 0; i < sig.size(); ++i) {
      std::string bad = v2(0x21, 0x11, inet_block);
      bad[i] = static_cast<char>(bad[i] ^ 0x40);
      check_error(bad, "bad_signature", i + 1);
    }
    for (int vc : {0x01, 0x11, 0x31, 0xf1})
      check_error(v2(vc, 0x11, inet_block), "unsupported_version", 13);
    for (int vc : {0x22, 0x2f}) check_error(v2(vc, 0x11, inet_block), "unknown_command", 13);
    for (int fp : {0x01, 0x10, 0x13, 0x20, 0x30, 0x41, 0xff})
      check_error(v2(0x21, fp, inet6_block + inet6_block), "unknown_family", 14);
  }
  void v2_length_limit_refuses_before_buffering() {
    const std::string hdr = v2(0x21, 0x11, inet_block + tlv_bytes(0x02, std::string(100, 'a')));
    check_header(hdr, inet_text + " authority=" + std::string(100, 'a'),
                 {.max_v2_length = hdr.size()});
    check_error(hdr, "length_too_large", 16, {.max_v2_length = hdr.size() - 1});
    // The largest length the field can hold, against the default limit: the
    // parser stops after the 16 fixed octets and holds nothing more.
    const std::string huge = v2(0x21, 0x11, inet_block + tlv_bytes(0xe0, std::string(65520, 'x')));
    CPPUNIT_ASSERT_EQUAL(std::size_t(16 + 65535), huge.size());
    header_parser parser;
    const auto s = parser.feed(huge);
    CPPUNIT_ASSERT_EQUAL(std::string("err:length_too_large"), render(s));
    CPPUNIT_ASSERT_EQUAL(std::size_t(16), s.consumed);
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), parser.buffered());
    // LOCAL is bounded the same way.
    check_error(v2(0x20, 0x00, std::string(2000, 'x')), "length_too_large", 16);
    // A limit below the fixed part refuses every v2 header.
    check_error(v2(0x20, 0x00, ""), "length_too_large", 16, {.max_v2_length = 15});
  }
  void v2_truncated_address_block() {
    check_error(v2(0x21, 0x11, inet_block.substr(0, 11)), "truncated_address", 16);
    check_error(v2(0x21, 0x21, inet6_block.substr(0, 35)), "truncated_address", 16);
    check_error(v2(0x21, 0x21, inet_block), "truncated_address", 16);
    check_error(v2(0x21, 0x31, std::string(215, '\0')), "truncated_address", 16);
  }
  void v2_bad_tlvs() {
    const auto bad = [](const std::string& tlvs) {
      const std::string hdr = v2(0x21, 0x11, inet_block + tlvs);
      check_error(hdr, "bad_tlv", hdr.size());
    };
    bad(octets({0x02}));                   // type only
    bad(octets({0x02, 0x00}));             // half a length
    bad(octets({0x02, 0x00, 0x02, 'a'}));  // value overruns the header
    bad(tlv_bytes(0x02, "a") + octets({0xe0, 0xff, 0xff}));
    bad(tlv_bytes(0x02, "a") + tlv_bytes(0x02, "b"));                // repeated authority
    bad(tlv_bytes(0x05, "a") + tlv_bytes(0x05, "a"));                // repeated unique id
    bad(tlv_bytes(0x05, std::string(129, 'u')));                     // unique id over 128
    bad(tlv_bytes(0x20, octets({1, 0, 0, 0})));                      // SSL shorter than 5
    bad(tlv_bytes(0x20, octets({1, 0, 0, 0, 0, 0x21, 0, 9, 'T'})));  // sub-TLV overruns
    bad(tlv_bytes(0x20, octets({1, 0, 0, 0, 0, 0x21})));             // sub-TLV cut
    bad(tlv_bytes(0x20, octets({1, 0, 0, 0, 0}) + tlv_bytes(0x21, "a") + tlv_bytes(0x21, "b")));
    bad(tlv_bytes(0x20, octets({1, 0, 0, 0, 0})) + tlv_bytes(0x20, octets({1, 0, 0, 0, 0})));
    bad(tlv_bytes(0x03, octets({0, 0, 0})));        // CRC32C of 3 octets
    bad(tlv_bytes(0x03, octets({0, 0, 0, 0, 0})));  // CRC32C of 5 octets
  }
  void not_a_proxy_header() {
    check_error("GET / HTTP/1.0\r\n", "bad_signature", 1);
    check_error("EHLO x\r\n", "bad_signature", 1);
    check_error("PROXZ TCP4\r\n", "bad_signature", 5);
    check_error("PROXY\tTCP4\r\n", "bad_signature", 6);
    check_error("proxy TCP4\r\n", "bad_signature", 1);
    check_error(octets({0x16, 0x03, 0x01}), "bad_signature", 1);  // a TLS ClientHello
    check_error("\r\n\r\nQUIT\n", "bad_signature", 5);            // the signature without its NUL
    check_every_split("", "need_more", 0);
    check_every_split("PROXY TCP4 1.2.3.4", "need_more", 18);
    check_every_split(std::string(v2_signature) + "\x21", "need_more", 13);
  }
  void versions_can_be_turned_off() {
    check_error("PROXY UNKNOWN\r\n", "version_not_allowed", 6, {.accept_v1 = false});
    check_error(v2(0x20, 0, ""), "version_not_allowed", 12, {.accept_v2 = false});
    check_header("PROXY UNKNOWN\r\n", "v1 proxy unspec unspec", {.accept_v2 = false});
    check_header(v2(0x20, 0, ""), "v2 local unspec unspec", {.accept_v1 = false});
  }
  void hand_built_bytes_match_the_encoder() {
    header h;
    h.cmd = command::proxy;
    h.fam = family::inet;
    h.proto = transport::stream;
    h.source.address = {192, 0, 2, 1};
    h.source.port = 56324;
    h.destination.address = {198, 51, 100, 11};
    h.destination.port = 443;
    CPPUNIT_ASSERT_EQUAL(hex(v2(0x21, 0x11, inet_block)), hex(encode_v2(h)));
    h.authority = "imap.example.org";
    h.unique_id = "id-1";
    h.ssl = ssl_info{.client = 1, .verify = 0, .version = "TLSv1.2", .cn = "bob"};
    h.other_tlvs = {tlv{0x01, "pop3"}};
    const std::string ssl =
        octets({1, 0, 0, 0, 0}) + tlv_bytes(0x21, "TLSv1.2") + tlv_bytes(0x22, "bob");
    const std::string expected =
        v2(0x21, 0x11,
           inet_block + tlv_bytes(0x02, "imap.example.org") + tlv_bytes(0x05, "id-1") +
               tlv_bytes(0x20, ssl) + tlv_bytes(0x01, "pop3"));
    CPPUNIT_ASSERT_EQUAL(hex(expected), hex(encode_v2(h)));
    CPPUNIT_ASSERT(parsed(expected) == h);
    header local;
    CPPUNIT_ASSERT_EQUAL(hex(v2(0x20, 0x00, "")), hex(encode_v2(local)));
    header six;
    six.cmd = command::proxy;
    six.fam = family::inet6;
    six.proto = transport::stream;
    six.source = parsed(v2(0x21, 0x21, inet6_block)).source;
    six.destination = parsed(v2(0x21, 0x21, inet6_block)).destination;
    CPPUNIT_ASSERT_EQUAL(hex(v2(0x21, 0x21, inet6_block)), hex(encode_v2(six)));
    header unix_hdr;
    unix_hdr.cmd = command::proxy;
    unix_hdr.fam = family::unix_socket;
    unix_hdr.proto = transport::stream;
    unix_hdr.source_path = "/a";
    unix_hdr.destination_path = "/b";
    CPPUNIT_ASSERT_EQUAL(hex(v2(0x21, 0x31, unix_block("/a", "/b"))), hex(encode_v2(unix_hdr)));
  }
  void encoders_round_trip() {
    const std::string ssl =
        octets({5, 0, 0, 0, 1}) + tlv_bytes(0x21, "TLSv1.3") + tlv_bytes(0x25, "EC256");
    for (const std::string& input :
         {v2(0x21, 0x11, inet_block), v2(0x21, 0x22, inet6_block), v2(0x20, 0x11, inet_block),
          v2(0x21, 0x00, "xx"),
          v2(0x21, 0x31, unix_block("/x", std::string(108, 'y')) + tlv_bytes(0x02, "h")),
          v2(0x21, 0x11,
             inet_block + tlv_bytes(0x20, ssl) + tlv_bytes(0x05, "u") + tlv_bytes(0xf0, "e") +
                 tlv_bytes(0x03, octets({0, 0, 0, 0})))}) {
      const std::string hdr =
          input.ends_with(octets({0x03, 0, 4, 0, 0, 0, 0})) ? with_crc(input) : input;
      const header h = parsed(hdr);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(hex(hdr), show(h), show(parsed(encode_v2(h))));
      CPPUNIT_ASSERT(parsed(encode_v2(h)) == h);
    }
    for (const char* line :
         {"PROXY TCP4 192.0.2.1 198.51.100.11 56324 443\r\n",
          "PROXY TCP6 2001:DB8:0:0:1:0:0:1 ::ffff:192.0.2.1 1 65535\r\n",
          "PROXY TCP6 1:0:0:2:0:0:0:3 0:0:1:0:0:0:0:0 1 2\r\n", "PROXY UNKNOWN 1 2\r\n"}) {
      const header h = parsed(line);
      CPPUNIT_ASSERT_MESSAGE(line, parsed(encode_v1(h)) == h);
    }
  }
  void encode_v1_forms() {
    CPPUNIT_ASSERT_EQUAL(std::string("PROXY TCP4 192.0.2.1 198.51.100.11 56324 443\r\n"),
                         encode_v1(parsed(v2(0x21, 0x11, inet_block))));
    CPPUNIT_ASSERT_EQUAL(std::string("PROXY TCP6 2001:db8::1 2001:db8::2 12345 993\r\n"),
                         encode_v1(parsed(v2(0x21, 0x21, inet6_block))));
    // RFC 5952: the longest zero run (the first of equals) becomes "::", a
    // single zero group stays.
    CPPUNIT_ASSERT_EQUAL(
        std::string("PROXY TCP6 2001:db8:0:1:1:1:1:1 1:0:0:2::3 1 2\r\n"),
        encode_v1(parsed("PROXY TCP6 2001:db8:0:1:1:1:1:1 1:0:0:2:0:0:0:3 1 2\r\n")));
    CPPUNIT_ASSERT_EQUAL(std::string("PROXY TCP6 1::2:0:0:3:0 :: 1 2\r\n"),
                         encode_v1(parsed("PROXY TCP6 1:0:0:2:0:0:3:0 0::0 1 2\r\n")));
    CPPUNIT_ASSERT_EQUAL(std::string("PROXY TCP6 ::ffff:c000:201 ::1 1 2\r\n"),
                         encode_v1(parsed("PROXY TCP6 ::ffff:192.0.2.1 0:0:0:0:0:0:0:1 1 2\r\n")));
    for (const std::string& v2hdr :
         {v2(0x20, 0, ""), v2(0x21, 0x00, ""), v2(0x21, 0x12, inet_block),
          v2(0x21, 0x31, unix_block("/a", "/b"))}) {
      CPPUNIT_ASSERT_EQUAL(std::string("PROXY UNKNOWN\r\n"), encode_v1(parsed(v2hdr)));
    }
  }
  void looks_like_proxy_header_prefixes() {
    CPPUNIT_ASSERT(looks_like_proxy_header("PROXY TCP4 1.2.3.4"));
    CPPUNIT_ASSERT(looks_like_proxy_header("PRO"));
    CPPUNIT_ASSERT(looks_like_proxy_header(v2(0x21, 0x11, inet_block)));
    CPPUNIT_ASSERT(looks_like_proxy_header("\r\n\r\n"));
    CPPUNIT_ASSERT(!looks_like_proxy_header(""));
    CPPUNIT_ASSERT(!looks_like_proxy_header("PROXZ"));
    CPPUNIT_ASSERT(!looks_like_proxy_header("EHLO x\r\n"));
    CPPUNIT_ASSERT(!looks_like_proxy_header("\r\n\r\nQUIT"));
  }
  void crc32c_known_vector() {
    // RFC 3720 B.4 / the usual check value of CRC-32C.
    CPPUNIT_ASSERT_EQUAL(std::uint32_t(0xe3069283), crc32c("123456789"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t(0), crc32c(""));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t(0x8a9136aa), crc32c(std::string(32, '\0')));
  }
  void error_names_texts_and_kinds() {
    for (int i = 0; i <= static_cast<int>(parse_error::v1_syntax); ++i) {
      const auto code = static_cast<parse_error>(i);
      CPPUNIT_ASSERT(to_string(code) != "unknown");
      CPPUNIT_ASSERT(describe(code).starts_with("PROXY"));
      const auto e = to_error(code);
      CPPUNIT_ASSERT(e.is_permanent());
      const bool limit =
          code == parse_error::length_too_large || code == parse_error::v1_line_too_long;
      CPPUNIT_ASSERT(e.code == (limit ? errc::limit_exceeded : errc::invalid_input));
      CPPUNIT_ASSERT_EQUAL(std::string(describe(code)), e.detail);
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(proxy_header_parser_test);

}  // namespace
}  // namespace hamail::proxy_protocol

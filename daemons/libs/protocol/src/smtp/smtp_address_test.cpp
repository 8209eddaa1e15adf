#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hamail/protocol/smtp/address.hpp"

namespace hamail::smtp {
namespace {

constexpr path_options mail_opts{.allow_null = true, .allow_postmaster = false, .utf8 = false};
constexpr path_options rcpt_opts{.allow_null = false, .allow_postmaster = true, .utf8 = false};
constexpr path_options utf8_opts{.allow_null = false, .allow_postmaster = false, .utf8 = true};

bool ok(std::string_view text, path_options o = {}) {
  return parse_path(text, o).value.has_value();
}
address_error why(std::string_view text, path_options o = {}) {
  auto r = parse_path(text, o);
  CPPUNIT_ASSERT_MESSAGE("expected failure: " + std::string(text), !r.value);
  return r.error;
}

class address_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(address_test);
  CPPUNIT_TEST(plain_mailbox_keeps_parts_and_original);
  CPPUNIT_TEST(null_path_only_where_allowed);
  CPPUNIT_TEST(bare_postmaster_only_where_allowed);
  CPPUNIT_TEST(quoted_local_part_with_space_and_escaped_quote_is_decoded);
  CPPUNIT_TEST(quoted_local_part_needing_no_quotes_is_canonicalised);
  CPPUNIT_TEST(bad_quoted_local_parts_are_rejected);
  CPPUNIT_TEST(bad_dot_strings_are_rejected);
  CPPUNIT_TEST(ipv4_address_literal_is_checked);
  CPPUNIT_TEST(ipv6_address_literal_forms_are_checked);
  CPPUNIT_TEST(general_address_literal_is_accepted);
  CPPUNIT_TEST(source_route_is_accepted_and_dropped);
  CPPUNIT_TEST(malformed_source_route_is_rejected);
  CPPUNIT_TEST(bad_domains_are_rejected);
  CPPUNIT_TEST(local_part_over_64_octets_is_too_long);
  CPPUNIT_TEST(domain_over_255_octets_is_too_long);
  CPPUNIT_TEST(path_over_256_octets_is_too_long);
  CPPUNIT_TEST(utf8_without_smtputf8_is_rejected);
  CPPUNIT_TEST(utf8_with_smtputf8_is_accepted);
  CPPUNIT_TEST(malformed_utf8_is_rejected_even_with_smtputf8);
  CPPUNIT_TEST(missing_brackets_or_domain_is_syntax);
  CPPUNIT_TEST_SUITE_END();

 public:
  void plain_mailbox_keeps_parts_and_original() {
    auto r = parse_path("<John.Doe@Example.COM>", {});
    CPPUNIT_ASSERT(r.value);
    CPPUNIT_ASSERT(r.value->kind == path_kind::mailbox);
    CPPUNIT_ASSERT_EQUAL(std::string("John.Doe"), r.value->box.local_part);
    CPPUNIT_ASSERT_EQUAL(std::string("Example.COM"), r.value->box.domain);
    CPPUNIT_ASSERT_EQUAL(std::string("John.Doe@Example.COM"), r.value->original);
    CPPUNIT_ASSERT_EQUAL(std::string("<John.Doe@Example.COM>"), r.value->wire());
    CPPUNIT_ASSERT(!r.value->box.quoted_local_part && !r.value->box.address_literal);
  }
  void null_path_only_where_allowed() {
    auto r = parse_path("<>", mail_opts);
    CPPUNIT_ASSERT(r.value && r.value->kind == path_kind::null);
    CPPUNIT_ASSERT_EQUAL(std::string("<>"), r.value->wire());
    CPPUNIT_ASSERT(why("<>", rcpt_opts) == address_error::null_not_permitted);
  }
  void bare_postmaster_only_where_allowed() {
    auto r = parse_path("<postMaster>", rcpt_opts);
    CPPUNIT_ASSERT(r.value && r.value->kind == path_kind::postmaster);
    CPPUNIT_ASSERT_EQUAL(std::string("<postMaster>"), r.value->wire());
    CPPUNIT_ASSERT(why("<Postmaster>", mail_opts) == address_error::syntax);
    auto d = parse_path("<Postmaster@example.org>", rcpt_opts);
    CPPUNIT_ASSERT(d.value && d.value->kind == path_kind::mailbox);
  }
  void quoted_local_part_with_space_and_escaped_quote_is_decoded() {
    auto r = parse_path(R"(<"John \"Q\" Doe"@example.com>)", {});
    CPPUNIT_ASSERT(r.value);
    CPPUNIT_ASSERT_EQUAL(std::string(R"(John "Q" Doe)"), r.value->box.local_part);
    CPPUNIT_ASSERT(r.value->box.quoted_local_part);
    CPPUNIT_ASSERT_EQUAL(std::string(R"("John \"Q\" Doe"@example.com)"), r.value->box.address());
    CPPUNIT_ASSERT_EQUAL(std::string(R"("John \"Q\" Doe"@example.com)"), r.value->original);
    // '@' and '>' inside quotes belong to the local part
    auto at = parse_path(R"(<"a@b>c"@example.com>)", {});
    CPPUNIT_ASSERT(at.value);
    CPPUNIT_ASSERT_EQUAL(std::string("a@b>c"), at.value->box.local_part);
    auto empty = parse_path(R"(<""@example.com>)", {});
    CPPUNIT_ASSERT(empty.value);
    CPPUNIT_ASSERT_EQUAL(std::string(R"(""@example.com)"), empty.value->box.address());
  }
  void quoted_local_part_needing_no_quotes_is_canonicalised() {
    auto r = parse_path(R"(<"abc"@example.com>)", {});
    CPPUNIT_ASSERT(r.value);
    CPPUNIT_ASSERT_EQUAL(std::string("abc@example.com"), r.value->box.address());
    CPPUNIT_ASSERT_EQUAL(std::string("abc@x.org"),
                         parse_path(R"(<"\a\b\c"@x.org>)", {}).value->box.address());
  }
  void bad_quoted_local_parts_are_rejected() {
    CPPUNIT_ASSERT(why(R"(<"abc@example.com>)") == address_error::syntax);      // unterminated
    CPPUNIT_ASSERT(why(R"(<"ab"c@example.com>)") == address_error::syntax);     // text after quote
    CPPUNIT_ASSERT(why("<\"a\tb\"@example.com>") == address_error::syntax);     // HTAB not qtext
    CPPUNIT_ASSERT(why("<\"a\\\x01\"@example.com>") == address_error::syntax);  // quoted control
  }
  void bad_dot_strings_are_rejected() {
    CPPUNIT_ASSERT(ok("<a.b.c@example.com>"));
    CPPUNIT_ASSERT(ok("<!#$%&'*+-/=?^_`{|}~@example.com>"));
    CPPUNIT_ASSERT(why("<.a@example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a.@example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a..b@example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a b@example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a(b)@example.com>") == address_error::syntax);
  }
  void ipv4_address_literal_is_checked() {
    auto r = parse_path("<user@[192.0.2.1]>", {});
    CPPUNIT_ASSERT(r.value && r.value->box.address_literal);
    CPPUNIT_ASSERT_EQUAL(std::string("[192.0.2.1]"), r.value->box.domain);
    CPPUNIT_ASSERT(ok("<user@[001.0.0.255]>"));
    CPPUNIT_ASSERT(why("<user@[192.0.2.256]>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user@[192.0.2]>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user@[192.0.2.1.5]>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user@[1922.0.2.1]>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user@[]>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user@[192.0.2.1>") == address_error::syntax);
  }
  void ipv6_address_literal_forms_are_checked() {
    CPPUNIT_ASSERT(is_valid_address_literal("[IPv6:2001:db8:0:0:0:0:0:1]"));
    CPPUNIT_ASSERT(is_valid_address_literal("[IPv6:2001:db8::1]"));
    CPPUNIT_ASSERT(is_valid_address_literal("[ipv6:::1]"));
    CPPUNIT_ASSERT(is_valid_address_literal("[IPv6:::]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6::]"));  // the address ":"
    CPPUNIT_ASSERT(is_valid_address_literal("[IPv6:1::]"));
    CPPUNIT_ASSERT(is_valid_address_literal("[IPv6:::ffff:192.0.2.1]"));
    CPPUNIT_ASSERT(is_valid_address_literal("[IPv6:1:2:3:4:5:6:192.0.2.1]"));
    CPPUNIT_ASSERT(is_valid_address_literal("[IPv6:1::2:192.0.2.1]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:1:2:3:4:5:6:7]"));      // 7 groups
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:1:2:3:4:5:6:7:8:9]"));  // 9 groups
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:1:2:3:4:5:6:7::]"));    // :: for one group
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:1::2::3]"));            // two ::
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:1:::2]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:12345::1]"));  // 5 hex digits
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:g::1]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:1:2:3:4:5:6:7:192.0.2.1]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:::192.0.2.256]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[IPv6:]"));
    CPPUNIT_ASSERT(ok("<postmaster@[IPv6:2001:db8::1]>"));
  }
  void general_address_literal_is_accepted() {
    CPPUNIT_ASSERT(is_valid_address_literal("[x-tag:some-content]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[x-tag:]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[-:abc]"));
    CPPUNIT_ASSERT(!is_valid_address_literal("[tag:a\\b]"));
  }
  void source_route_is_accepted_and_dropped() {
    auto r = parse_path("<@relay1.example,@relay2.example:user@example.com>", {});
    CPPUNIT_ASSERT(r.value);
    CPPUNIT_ASSERT_EQUAL(std::string("user@example.com"), r.value->box.address());
    CPPUNIT_ASSERT_EQUAL(std::string("<user@example.com>"), r.value->wire());
    CPPUNIT_ASSERT_EQUAL(std::string("@relay1.example,@relay2.example:user@example.com"),
                         r.value->original);
  }
  void malformed_source_route_is_rejected() {
    CPPUNIT_ASSERT(why("<@relay1.example user@example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<@:user@example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<@a,b:user@example.com>") == address_error::syntax);
  }
  void bad_domains_are_rejected() {
    CPPUNIT_ASSERT(ok("<a@x>"));
    CPPUNIT_ASSERT(ok("<a@xn--bcher-kva.example>"));
    CPPUNIT_ASSERT(ok("<a@1-2.3com>"));
    CPPUNIT_ASSERT(why("<a@-x.example>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a@x-.example>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a@x_y.example>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a@example.com.>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a@.example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a@ex..ample>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a@b@c>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<a@" + std::string(64, 'x') + ".example>") ==
                   address_error::syntax);  // label > 63
    CPPUNIT_ASSERT(ok("<a@" + std::string(63, 'x') + ".example>"));
  }
  void local_part_over_64_octets_is_too_long() {
    CPPUNIT_ASSERT(ok("<" + std::string(64, 'a') + "@example.com>"));
    CPPUNIT_ASSERT(why("<" + std::string(65, 'a') + "@example.com>") == address_error::too_long);
    // The limit applies to the local part as sent, quotes included.
    CPPUNIT_ASSERT(why("<\"" + std::string(63, 'a') + "\"@example.com>") ==
                   address_error::too_long);
  }
  void domain_over_255_octets_is_too_long() {
    std::string domain;
    while (domain.size() < 250) domain += "abcdefghi.";
    domain += "example";  // 257 octets
    CPPUNIT_ASSERT(!is_valid_domain(domain));
    CPPUNIT_ASSERT(why("<a@" + domain + ">") == address_error::too_long);
    domain.resize(255);
    domain.back() = 'x';
    CPPUNIT_ASSERT(is_valid_domain(domain));
  }
  void path_over_256_octets_is_too_long() {
    std::string domain;
    while (domain.size() < 190) domain += "abcdefghi.";
    domain += "example";  // 197 octets
    const std::string local(57, 'a');
    const std::string path = "<" + local + "@" + domain + ">";  // 1 + 57 + 1 + 197 + 1 = 257
    CPPUNIT_ASSERT_EQUAL(std::size_t(257), path.size());
    CPPUNIT_ASSERT(why(path) == address_error::too_long);
    CPPUNIT_ASSERT(ok("<" + local.substr(1) + "@" + domain + ">"));
  }
  void utf8_without_smtputf8_is_rejected() {
    CPPUNIT_ASSERT(why("<jos\xc3\xa9@example.com>") == address_error::utf8_not_permitted);
    CPPUNIT_ASSERT(why("<user@b\xc3\xbc"
                       "cher.example>") == address_error::utf8_not_permitted);
    CPPUNIT_ASSERT(why("<\"jos\xc3\xa9\"@example.com>") == address_error::utf8_not_permitted);
  }
  void utf8_with_smtputf8_is_accepted() {
    auto r = parse_path(
        "<jos\xc3\xa9@b\xc3\xbc"
        "cher.example>",
        utf8_opts);
    CPPUNIT_ASSERT(r.value);
    CPPUNIT_ASSERT_EQUAL(std::string("jos\xc3\xa9"), r.value->box.local_part);
    CPPUNIT_ASSERT(r.value->box.is_utf8());
    CPPUNIT_ASSERT(ok("<\"jos\xc3\xa9 x\"@example.com>", utf8_opts));
    CPPUNIT_ASSERT(ok(
        "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>", utf8_opts));
  }
  void malformed_utf8_is_rejected_even_with_smtputf8() {
    CPPUNIT_ASSERT(why("<jos\xc3@example.com>", utf8_opts) == address_error::syntax);  // truncated
    CPPUNIT_ASSERT(why("<jos\xc0\xa9@example.com>", utf8_opts) ==
                   address_error::syntax);  // overlong
    CPPUNIT_ASSERT(why("<a\xed\xa0\x80@example.com>", utf8_opts) ==
                   address_error::syntax);  // surrogate
    CPPUNIT_ASSERT(why("<a\xf4\x90\x80\x80@example.com>", utf8_opts) ==
                   address_error::syntax);  // > U+10FFFF
  }
  void missing_brackets_or_domain_is_syntax() {
    CPPUNIT_ASSERT(why("user@example.com") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user@example.com") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<user@>") == address_error::syntax);
    CPPUNIT_ASSERT(why("<@example.com>") == address_error::syntax);
    CPPUNIT_ASSERT(why("") == address_error::syntax);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(address_test);

}  // namespace
}  // namespace hamail::smtp

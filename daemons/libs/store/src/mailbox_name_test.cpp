#include "hamail/store/mailbox_name.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "folder_name.hpp"

namespace hamail::store {

namespace {

std::string encode(std::string_view s) {
  auto r = mutf7_encode(s);
  if (!r) CPPUNIT_FAIL("encode failed: " + r.err().describe());
  return *r;
}

std::string decode(std::string_view s) {
  auto r = mutf7_decode(s);
  if (!r) CPPUNIT_FAIL("decode of '" + std::string(s) + "' failed: " + r.err().describe());
  return *r;
}

bool decode_rejects(std::string_view s) { return !mutf7_decode(s); }

bool name_rejected(std::string_view s) {
  auto r = validate_mailbox_name(s);
  return !r && r.err().is_permanent() && r.err().code == errc::invalid_input;
}

}  // namespace

class mailbox_name_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(mailbox_name_test);
  CPPUNIT_TEST(mutf7_matches_rfc3501_examples);
  CPPUNIT_TEST(mutf7_round_trips_ampersand_dot_and_non_bmp);
  CPPUNIT_TEST(mutf7_decode_rejects_malformed_and_non_shortest_forms);
  CPPUNIT_TEST(mutf7_encode_rejects_malformed_utf8);
  CPPUNIT_TEST(inbox_any_case_becomes_canonical);
  CPPUNIT_TEST(hostile_mailbox_names_rejected);
  CPPUNIT_TEST(length_and_depth_limits_enforced);
  CPPUNIT_TEST(account_ids_validated);
  CPPUNIT_TEST(folder_dirs_never_contain_a_literal_dot_or_slash);
  CPPUNIT_TEST(folder_dir_decoding_accepts_only_canonical_names);
  CPPUNIT_TEST_SUITE_END();

 public:
  void mutf7_matches_rfc3501_examples() {
    // RFC 3501 §5.1.3: "~peter/mail/台北/日本語".
    CPPUNIT_ASSERT_EQUAL(
        std::string("~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        encode("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
        decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-"));
    CPPUNIT_ASSERT_EQUAL(std::string("Entw&APw-rfe"), encode("Entw\xc3\xbc"
                                                             "rfe"));
  }

  void mutf7_round_trips_ampersand_dot_and_non_bmp() {
    CPPUNIT_ASSERT_EQUAL(std::string("Tom &- Jerry"), encode("Tom & Jerry"));
    CPPUNIT_ASSERT_EQUAL(std::string("Tom & Jerry"), decode("Tom &- Jerry"));
    CPPUNIT_ASSERT_EQUAL(std::string("a.b"), encode("a.b"));  // '.' is plain on the wire
    const std::string samples[] = {
        "&",
        "&&",
        "a&b",
        ".",
        "..x",
        "\xf0\x9f\x93\xa7 mail",  // U+1F4E7, a surrogate pair
        "\xf0\x9f\x98\x80\xf0\x9f\x98\x81",
        "\xc3\xa9&\xc3\xa9",
        "caf\xc3\xa9.",
        "plain ASCII ~!@#$^()",
    };
    for (const auto& s : samples) {
      CPPUNIT_ASSERT_EQUAL(s, decode(encode(s)));
      // The on-disk variant round-trips too, and never shows a literal '.'.
      auto disk = detail::mutf7_encode(s, true);
      CPPUNIT_ASSERT(disk);
      CPPUNIT_ASSERT(disk->find('.') == std::string::npos);
      auto back = detail::mutf7_decode(*disk, true);
      CPPUNIT_ASSERT(back);
      CPPUNIT_ASSERT_EQUAL(s, *back);
    }
    CPPUNIT_ASSERT_EQUAL(std::string("&2D3c5w- mail"), encode("\xf0\x9f\x93\xa7 mail"));
  }

  void mutf7_decode_rejects_malformed_and_non_shortest_forms() {
    CPPUNIT_ASSERT(decode_rejects("&U,BTFw"));      // unterminated
    CPPUNIT_ASSERT(decode_rejects("&U,B=Fw-"));     // not base64
    CPPUNIT_ASSERT(decode_rejects("&U/BTFw-"));     // '/' is not modified base64
    CPPUNIT_ASSERT(decode_rejects("&AGE-"));        // 'a' encoded: must be direct
    CPPUNIT_ASSERT(decode_rejects("&ACY-"));        // '&' encoded: must be "&-"
    CPPUNIT_ASSERT(decode_rejects("&AOk-&AOk-"));   // two adjacent runs: must be one
    CPPUNIT_ASSERT(decode_rejects("&AOl-"));        // non-zero padding bits
    CPPUNIT_ASSERT(decode_rejects("&AOkA-"));       // a whole character of padding
    CPPUNIT_ASSERT(decode_rejects("&2D0-"));        // lone high surrogate
    CPPUNIT_ASSERT(decode_rejects("&3gA-"));        // lone low surrogate
    CPPUNIT_ASSERT(decode_rejects("&2D3YPQ-"));     // high surrogate followed by high
    CPPUNIT_ASSERT(decode_rejects("caf\xc3\xa9"));  // raw 8-bit
    CPPUNIT_ASSERT(decode_rejects(std::string_view("a\0b", 3)));
    CPPUNIT_ASSERT(decode_rejects("a\tb"));
    CPPUNIT_ASSERT(decode_rejects("&"));
    // Legal neighbours of the above still decode.
    CPPUNIT_ASSERT_EQUAL(std::string("\xc3\xa9&"), decode("&AOk-&-"));
    CPPUNIT_ASSERT_EQUAL(std::string("\xc3\xa9\xc3\xa9"), decode("&AOkA6Q-"));
  }

  void mutf7_encode_rejects_malformed_utf8() {
    CPPUNIT_ASSERT(!mutf7_encode("\xc0\xaf"));          // overlong '/'
    CPPUNIT_ASSERT(!mutf7_encode("\xed\xa0\x80"));      // UTF-8 encoded surrogate
    CPPUNIT_ASSERT(!mutf7_encode("\xe6\x97"));          // truncated
    CPPUNIT_ASSERT(!mutf7_encode("\xf4\x90\x80\x80"));  // above U+10FFFF
    CPPUNIT_ASSERT(!mutf7_encode("\xff"));
  }

  void inbox_any_case_becomes_canonical() {
    for (const char* n : {"INBOX", "inbox", "InBoX"})
      CPPUNIT_ASSERT_EQUAL(std::string("INBOX"), *validate_mailbox_name(n));
    CPPUNIT_ASSERT_EQUAL(std::string("INBOX/Sub"), *validate_mailbox_name("inbox/Sub"));
    CPPUNIT_ASSERT_EQUAL(std::string("Inboxes"), *validate_mailbox_name("Inboxes"));
    CPPUNIT_ASSERT_EQUAL(std::string("a/inbox"), *validate_mailbox_name("a/inbox"));
  }

  void hostile_mailbox_names_rejected() {
    const std::string hostile[] = {
        "",
        "../x",
        "a/../../b",
        "/etc",
        "INBOX/../../other",
        "a//b",
        "a/",
        "/",
        ".",
        "..",
        "a/./b",
        std::string("a\0b", 3),
        "a\nb",
        "a\rb",
        "a\x7f",
        "a\xc2\x85",         // NEL, a C1 control
        "\xc0\xae\xc0\xae",  // overlong ".."
        "*",
        "a%b",
        "a\tb",
    };
    for (const auto& n : hostile) CPPUNIT_ASSERT_MESSAGE("accepted: " + n, name_rejected(n));
    // Names that look odd but are fine.
    for (const char* n : {"a.b", ".hidden", "a..b", "~user", "Tom & Jerry", "Sent Items", "x/.y"})
      CPPUNIT_ASSERT_MESSAGE(n, validate_mailbox_name(n).has_value());
  }

  void length_and_depth_limits_enforced() {
    CPPUNIT_ASSERT(validate_mailbox_name(std::string(255, 'a')));
    CPPUNIT_ASSERT(name_rejected(std::string(256, 'a')));
    std::string deep = "a";
    for (int i = 1; i < 16; ++i) deep += "/a";
    CPPUNIT_ASSERT(validate_mailbox_name(deep));
    CPPUNIT_ASSERT(name_rejected(deep + "/a"));
    CPPUNIT_ASSERT(name_rejected(std::string(100000, 'x')));
    // Valid as a name but too long once '.'s are encoded for the disk.
    const std::string dots = "x" + std::string(200, '.');
    CPPUNIT_ASSERT(validate_mailbox_name(dots));
    auto d = detail::mailbox_dir_name(dots);
    CPPUNIT_ASSERT(!d);
    CPPUNIT_ASSERT(d.err().code == errc::invalid_input);
  }

  void account_ids_validated() {
    for (const char* ok : {"alice", "a.b@example.org", "x+tag_1-2", "0"})
      CPPUNIT_ASSERT_MESSAGE(ok, validate_account_id(ok));
    for (const char* bad :
         {"", ".alice", "a..b", "../x", "a/b", "Alice", "a b", "a\nb", "..", ".", "-rf", "@x"})
      CPPUNIT_ASSERT_MESSAGE(bad, !validate_account_id(bad));
    // The tree's one rule (core/account_id.hpp): at most 64 characters.
    CPPUNIT_ASSERT(validate_account_id(std::string(64, 'a')));
    CPPUNIT_ASSERT(!validate_account_id(std::string(65, 'a')));
    CPPUNIT_ASSERT(!validate_account_id(std::string_view("a\0b", 3)));
  }

  void folder_dirs_never_contain_a_literal_dot_or_slash() {
    CPPUNIT_ASSERT_EQUAL(std::string(""), *detail::mailbox_dir_name("INBOX"));
    CPPUNIT_ASSERT_EQUAL(std::string(".Sent"), *detail::mailbox_dir_name("Sent"));
    CPPUNIT_ASSERT_EQUAL(std::string(".A.B"), *detail::mailbox_dir_name("A/B"));
    CPPUNIT_ASSERT_EQUAL(std::string(".INBOX.Sub"), *detail::mailbox_dir_name("INBOX/Sub"));
    CPPUNIT_ASSERT_EQUAL(std::string(".a&AC4-b"), *detail::mailbox_dir_name("a.b"));
    // "a.b" and "a/b" must not share a directory.
    CPPUNIT_ASSERT(*detail::mailbox_dir_name("a.b") != *detail::mailbox_dir_name("a/b"));
    CPPUNIT_ASSERT_EQUAL(std::string(".&AC4-hidden"), *detail::mailbox_dir_name(".hidden"));
    for (const char* n : {"a.b", "x/.y", "Tom & Jerry", "\xe6\x97\xa5\xe6\x9c\xac", "a..b/c"}) {
      auto d = detail::mailbox_dir_name(n);
      CPPUNIT_ASSERT(d);
      CPPUNIT_ASSERT(d->find('/') == std::string::npos);
      auto back = detail::mailbox_name_from_dir(*d);
      CPPUNIT_ASSERT_MESSAGE(*d, back);
      CPPUNIT_ASSERT_EQUAL(std::string(n), *back);
    }
  }

  void folder_dir_decoding_accepts_only_canonical_names() {
    CPPUNIT_ASSERT_EQUAL(std::string("Sent"), *detail::mailbox_name_from_dir(".Sent"));
    CPPUNIT_ASSERT_EQUAL(std::string("INBOX/x"), *detail::mailbox_name_from_dir(".INBOX.x"));
    for (const char* bad :
         {".", "..", ".a..b", ".a.", ".inbox.x", ".INBOX", ".Entw\xc3\xbcrfe", ".&AGE-", "Sent"})
      CPPUNIT_ASSERT_MESSAGE(bad, !detail::mailbox_name_from_dir(bad));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(mailbox_name_test);

}  // namespace hamail::store

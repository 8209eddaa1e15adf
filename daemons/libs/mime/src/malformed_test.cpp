// Malformed and hostile mail: every shape still yields a structure, never a crash,
// and the limits hold.

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "hamail/core/utf8.hpp"
#include "hamail/mime/imap_form.hpp"
#include "hamail/mime/message.hpp"
#include "hamail/mime/search_text.hpp"
#include "hamail/mime/section.hpp"
#include "mime_test_support.hpp"

namespace hamail::mime {

namespace {

using test::crlf;
using test::section;

unsigned depth_of(const part& p) {
  unsigned d = 0;
  for (const auto& c : p.children) d = std::max(d, depth_of(c) + 1);
  return d;
}

const part* deepest(const part& p) { return p.children.empty() ? &p : deepest(p.children.back()); }

}  // namespace

class malformed_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(malformed_test);
  CPPUNIT_TEST(multipart_signed_keeps_protocol_params);
  CPPUNIT_TEST(encoded_words_stay_encoded_and_8bit_goes_as_literal);
  CPPUNIT_TEST(multipart_without_boundary_gets_one_empty_part);
  CPPUNIT_TEST(unterminated_nested_multipart_runs_to_the_end);
  CPPUNIT_TEST(bad_base64_still_decodes_what_it_can);
  CPPUNIT_TEST(header_without_blank_line_is_all_header);
  CPPUNIT_TEST(eight_bit_header_is_searchable_as_utf8);
  CPPUNIT_TEST(absurd_multipart_nesting_is_capped);
  CPPUNIT_TEST(absurd_message_nesting_is_capped);
  CPPUNIT_TEST(part_count_is_capped);
  CPPUNIT_TEST(unknown_transfer_encoding_is_unknown_cte);
  CPPUNIT_TEST(bad_section_specs_are_errors);
  CPPUNIT_TEST(lf_only_message_has_the_same_shape);
  CPPUNIT_TEST(empty_message_and_parse_file);
  CPPUNIT_TEST(boundary_prefix_of_another_does_not_split);
  CPPUNIT_TEST_SUITE_END();

 public:
  void multipart_signed_keeps_protocol_params() {
    const std::string raw = crlf(
        "From: s@example.org\n"
        "Subject: signed\n"
        "Content-Type: multipart/signed; micalg=pgp-sha256;\n"
        " protocol=\"application/pgp-signature\"; boundary=\"sig\"\n"
        "\n"
        "--sig\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "signed text\n"
        "--sig\n"
        "Content-Type: application/pgp-signature; name=\"signature.asc\"\n"
        "\n"
        "-----BEGIN PGP SIGNATURE-----\n"
        "-----END PGP SIGNATURE-----\n"
        "--sig--\n");
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL)"
            "(\"application\" \"pgp-signature\" (\"name\" \"signature.asc\") NIL NIL \"7bit\" 58 "
            "NIL "
            "NIL NIL NIL) \"signed\" (\"micalg\" \"pgp-sha256\" \"protocol\" "
            "\"application/pgp-signature\" \"boundary\" \"sig\") NIL NIL NIL)"),
        body_structure_form(msg));
    // The signed part's MIME header and body are the exact bytes a verifier needs.
    CPPUNIT_ASSERT_EQUAL(std::string("Content-Type: text/plain; charset=us-ascii\r\n\r\n"),
                         section(raw, "1.MIME"));
    CPPUNIT_ASSERT_EQUAL(std::string("signed text"), section(raw, "1"));
  }

  void encoded_words_stay_encoded_and_8bit_goes_as_literal() {
    const std::string raw = crlf(
        "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
        "To: J\xc3\xbcrgen <j@example.de>, undisclosed-recipients:;\n"
        "Cc: friends: a@x.test, b@y.test;\n"
        "Subject: =?UTF-8?B?R3LDvMOfZQ==?= und \xc3\xa4\n"
        "\n"
        "body\n");
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "(NIL {31}\r\n=?UTF-8?B?R3LDvMOfZQ==?= und \xc3\xa4 ((\"=?UTF-8?b?QW5kcsOp?= Pirard\" "
            "NIL "
            "\"PIRARD\" \"vm1.ulg.ac.be\")) ((\"=?UTF-8?b?QW5kcsOp?= Pirard\" NIL \"PIRARD\" "
            "\"vm1.ulg.ac.be\")) ((\"=?UTF-8?b?QW5kcsOp?= Pirard\" NIL \"PIRARD\" "
            "\"vm1.ulg.ac.be\")) "
            "(({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"example.de\")(NIL NIL \"undisclosed-recipients\" "
            "NIL)"
            "(NIL NIL NIL NIL)) ((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"x.test\")(NIL NIL \"b\" "
            "\"y.test\")(NIL NIL NIL NIL)) NIL NIL NIL)"),
        envelope_form(msg.env));
    // With UTF8=ACCEPT the UTF-8 name goes quoted instead.
    imap::write_options utf8;
    utf8.utf8 = true;
    CPPUNIT_ASSERT(envelope_form(msg.env, utf8).find("((\"J\xc3\xbcrgen\" NIL \"j\"") !=
                   std::string::npos);
    const auto t = extract_search_text(raw, msg);
    CPPUNIT_ASSERT_EQUAL(std::string("From: Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>\n"
                                     "To: J\xc3\xbcrgen <j@example.de>, undisclosed-recipients:;\n"
                                     "Cc: friends: a@x.test, b@y.test;\n"
                                     "Subject: Gr\xc3\xbc\xc3\x9f"
                                     "e und \xc3\xa4\n"),
                         t.headers);
    CPPUNIT_ASSERT_EQUAL(std::string("Gr\xc3\xbc\xc3\x9f"
                                     "e"),
                         decode_header_value(" =?UTF-8?B?R3LDvMOfZQ==?="));
  }

  void multipart_without_boundary_gets_one_empty_part() {
    const std::string raw = crlf("Content-Type: multipart/mixed\n\nstuff\n");
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(
        std::string("((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
                    "NIL NIL) \"mixed\" NIL NIL NIL NIL)"),
        body_structure_form(msg));
    CPPUNIT_ASSERT_EQUAL(std::string(""), section(raw, "1"));
    CPPUNIT_ASSERT_EQUAL(std::string("stuff\r\n"), section(raw, "TEXT"));
    // A boundary that never appears gives the same.
    const auto other = parse(crlf("Content-Type: multipart/mixed; boundary=zz\n\nstuff\n--z\n"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, other.root.children.size());
  }

  void unterminated_nested_multipart_runs_to_the_end() {
    const std::string raw = crlf(
        "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\none\n--x\n"
        "Content-Type: multipart/alternative; boundary=y\n\n--y\n\ntwo\n");
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(
        std::string("((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0 NIL NIL "
                    "NIL NIL)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1 "
                    "NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"y\") NIL NIL NIL) \"mixed\" "
                    "(\"boundary\" \"x\") NIL NIL NIL)"),
        body_structure_form(msg));
    CPPUNIT_ASSERT_EQUAL(std::string("two\r\n"), section(raw, "2.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("one\ntwo\r\n"), extract_search_text(raw, msg).body);
  }

  void bad_base64_still_decodes_what_it_can() {
    const std::string raw =
        crlf("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!aGVs\xff\nbG8=\n");
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(
        std::string("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 16 2 NIL "
                    "NIL NIL NIL)"),
        body_structure_form(msg));
    CPPUNIT_ASSERT_EQUAL(std::string("hello"), *fetch_binary(raw, msg, {1}));
    CPPUNIT_ASSERT_EQUAL(std::string("hello"), extract_search_text(raw, msg).body);
  }

  void header_without_blank_line_is_all_header() {
    const std::string raw = "From: a@b.c\r\nSubject: never ends";
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(raw.size(), msg.root.header.end);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, msg.root.body.size());
    CPPUNIT_ASSERT_EQUAL(
        std::string("(NIL \"never ends\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) "
                    "((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)"),
        envelope_form(msg.env));
    // The unterminated last field still gets its line end before the blank line.
    CPPUNIT_ASSERT_EQUAL(std::string("Subject: never ends\r\n\r\n"),
                         section(raw, "HEADER.FIELDS (Subject)"));
  }

  void eight_bit_header_is_searchable_as_utf8() {
    const std::string raw = "Subject: \xe9t\xe9\r\nFrom: \xe9 <a@b.c>\r\n\r\nx";
    const auto msg = parse(raw);
    // Raw 8-bit subject goes out as a literal of the original bytes.
    CPPUNIT_ASSERT_EQUAL(std::string("{3}\r\n\xe9t\xe9"), envelope_form(msg.env).substr(5, 8));
    const auto t = extract_search_text(raw, msg);
    CPPUNIT_ASSERT_EQUAL(std::string("Subject: \xc3\xa9t\xc3\xa9\nFrom: \xc3\xa9 <a@b.c>\n"),
                         t.headers);
    // An 8-bit byte in a field name (found by the fuzzer) is converted as well.
    const std::string bad_name = "Su\xbbject: x\r\n\r\n";
    const auto u = extract_search_text(bad_name, parse(bad_name));
    CPPUNIT_ASSERT_EQUAL(std::string("Su\xc2\xbbject: x\n"), u.headers);
    // Byte sequences GMime lets through as UTF-8 but are not (above U+10FFFF;
    // found by libFuzzer) come out valid.
    CPPUNIT_ASSERT(is_valid_utf8(decode_header_value("a \xf6\xbc\x90\x96 b")));
    const std::string bad_body =
        "Content-Type: text/plain; charset=utf-8\r\n\r\n\xf6\xbc\x90\x96\xc3";
    CPPUNIT_ASSERT(is_valid_utf8(extract_search_text(bad_body, parse(bad_body)).body));
  }

  void absurd_multipart_nesting_is_capped() {
    std::string raw;
    const unsigned levels = 1000;
    for (unsigned i = 0; i < levels; ++i) {
      raw += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
             std::to_string(i) + "\r\n";
    }
    raw += "\r\ninnermost\r\n";
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(100u, depth_of(msg.root));
    const part* leaf = deepest(msg.root);
    CPPUNIT_ASSERT(leaf->opaque);
    CPPUNIT_ASSERT_EQUAL(std::string("application"), leaf->type);
    const auto bs = body_structure_form(msg);
    CPPUNIT_ASSERT_EQUAL(std::count(bs.begin(), bs.end(), '('),
                         std::count(bs.begin(), bs.end(), ')'));
  }

  void absurd_message_nesting_is_capped() {
    std::string raw;
    for (unsigned i = 0; i < 500; ++i)
      raw += "Subject: level\r\nContent-Type: message/rfc822\r\n\r\n";
    raw += "Subject: bottom\r\n\r\nbody\r\n";
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(100u, depth_of(msg.root));
    CPPUNIT_ASSERT(deepest(msg.root)->opaque);
    CPPUNIT_ASSERT(!body_structure_form(msg).empty());
    CPPUNIT_ASSERT_EQUAL(std::string("Subject: level\r\n\r\n"),
                         section(raw, "1.1.1.HEADER.FIELDS (subject)"));
  }

  void part_count_is_capped() {
    std::string raw = "Content-Type: multipart/mixed; boundary=p\r\n\r\n";
    for (unsigned i = 0; i < 30000; ++i) raw += "--p\r\n\r\nx\r\n";
    raw += "--p--\r\n";
    const auto msg = parse(raw);
    CPPUNIT_ASSERT(msg.root.children.size() < 10000);
    CPPUNIT_ASSERT(msg.root.children.size() > 9000);
  }

  void unknown_transfer_encoding_is_unknown_cte() {
    const std::string raw =
        crlf("Content-Type: text/plain\nContent-Transfer-Encoding: x-gzip64\n\nabc\n");
    const auto msg = parse(raw);
    auto r = fetch_binary(raw, msg, {1});
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("UNKNOWN-CTE"), r.err().user_text);
    CPPUNIT_ASSERT(!binary_size(raw, msg, {1}).has_value());
    // BINARY[] is the whole message, undecoded.
    CPPUNIT_ASSERT_EQUAL(raw, *fetch_binary(raw, msg, {}));
    CPPUNIT_ASSERT_EQUAL(errc::not_found, fetch_binary(raw, msg, {2}).err().code);
    auto qp = decode_transfer_encoding("a=3Db=\r\nc", "Quoted-Printable");
    CPPUNIT_ASSERT_EQUAL(std::string("a=bc"), *qp);
  }

  void bad_section_specs_are_errors() {
    for (const char* bad :
         {"0", "1.", "1..2", "HEADER.FIELDS", "HEADER.FIELDS ()", "HEADER.FIELDS (a", "MIME",
          "1.BOGUS", "x", "1.HEADER.FIELDS (a:b)", "99999999999"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !parse_section(bad).has_value());
    }
    const auto s = parse_section("1.2.header.fields.not (From \"X-Y\")");
    CPPUNIT_ASSERT(s.has_value());
    CPPUNIT_ASSERT(s->text == section_text::header_fields_not);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, s->part.size());
    CPPUNIT_ASSERT_EQUAL(std::string("X-Y"), s->fields[1]);
  }

  void lf_only_message_has_the_same_shape() {
    const std::string raw =
        "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: "
        "text/plain\n\nhi\nthere\n--q--\n";
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(
        std::string("((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1) "
                    "\"mixed\")"),
        body_structure_form(msg, false));
    CPPUNIT_ASSERT_EQUAL(std::string("hi\nthere"), section(raw, "1"));
  }

  void empty_message_and_parse_file() {
    const auto empty = parse("");
    CPPUNIT_ASSERT_EQUAL(
        std::string("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"),
        body_structure_form(empty, false));
    CPPUNIT_ASSERT_EQUAL(std::string("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
                         envelope_form(empty.env));

    char path[] = "/tmp/hamail-mime-XXXXXX";
    const int fd = ::mkstemp(path);
    CPPUNIT_ASSERT(fd >= 0);
    const std::string raw = "Subject: file\r\n\r\nbody\r\n";
    CPPUNIT_ASSERT_EQUAL(static_cast<ssize_t>(raw.size()), ::write(fd, raw.data(), raw.size()));
    ::close(fd);
    const auto from_file = parse_file(path);
    ::unlink(path);
    CPPUNIT_ASSERT(from_file.has_value());
    CPPUNIT_ASSERT_EQUAL(body_structure_form(parse(raw)), body_structure_form(*from_file));
    CPPUNIT_ASSERT_EQUAL(errc::io_error, parse_file("/nonexistent/hamail-mime").err().code);
  }

  void boundary_prefix_of_another_does_not_split() {
    // The inner boundary starts with the outer one; only exact delimiter lines count.
    const std::string raw = crlf(
        "Content-Type: multipart/mixed; boundary=ab\n\n--ab\n"
        "Content-Type: multipart/alternative; "
        "boundary=ab-1\n\n--ab-1\n\none\n--ab-1\n\ntwo\n--ab-1--\n"
        "--ab--\n");
    const auto msg = parse(raw);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, msg.root.children.size());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, msg.root.children[0].children.size());
    CPPUNIT_ASSERT_EQUAL(std::string("two"), section(raw, "1.2"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(malformed_test);

}  // namespace hamail::mime

// MIME structure, IMAP forms, sections, BINARY and SEARCH text over real-world shapes.

#include "hamail/mime/message.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hamail/mime/imap_form.hpp"
#include "hamail/mime/search_text.hpp"
#include "hamail/mime/section.hpp"
#include "mime_test_support.hpp"

namespace hamail::mime {

namespace {

using test::crlf;
using test::section;

const std::string simple = crlf(
    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
    "From: Terry Gray <gray@cac.washington.edu>\n"
    "Subject: IMAP4rev1 WG mtg summary and minutes\n"
    "To: imap@cac.washington.edu\n"
    "cc: minutes@CNRI.Reston.VA.US,\n"
    "   John Klensin <KLENSIN@MIT.EDU>\n"
    "Message-Id: <B27397-0100000@cac.washington.edu>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
    "\n"
    "Hello\n"
    "World\n");

const std::string alternative = crlf(
    "From: a@example.org\n"
    "Subject: alt\n"
    "Content-Type: multipart/alternative; boundary=\"b1\"\n"
    "\n"
    "preamble\n"
    "--b1\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "caf=C3=A9\n"
    "--b1\n"
    "Content-Type: text/html; charset=iso-8859-1\n"
    "\n"
    "<p>caf\xe9</p>\n"
    "--b1--\n"
    "epilogue\n");

const std::string mixed = crlf(
    "From: \"Joe Q. Public\" <john.q.public@example.com>\n"
    "To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\n"
    "Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>\n"
    "Subject: report\n"
    "Content-Type: multipart/mixed; boundary=outer\n"
    "\n"
    "--outer\n"
    "Content-Type: text/plain\n"
    "\n"
    "see attached\n"
    "--outer\n"
    "Content-Type: application/pdf; name=\"r.pdf\"\n"
    "Content-Transfer-Encoding: base64\n"
    "Content-Disposition: attachment; filename=\"r.pdf\"\n"
    "Content-ID: <att1@x>\n"
    "Content-Description: the report\n"
    "Content-Language: en, de\n"
    "Content-Location: http://x.test/r.pdf\n"
    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
    "\n"
    "aGVsbG8gd29ybGQ=\n"
    "--outer--\n");

const std::string nested = crlf(
    "From: a@example.org\n"
    "Subject: fwd\n"
    "Content-Type: multipart/mixed; boundary=\"o\"\n"
    "\n"
    "--o\n"
    "Content-Type: text/plain\n"
    "\n"
    "see below\n"
    "--o\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: b@example.org\n"
    "Reply-To: r@example.org\n"
    "Subject: inner\n"
    "Message-ID: <inner@x>\n"
    "Content-Type: multipart/alternative; boundary=\"i\"\n"
    "\n"
    "--i\n"
    "Content-Type: text/plain\n"
    "\n"
    "inner text\n"
    "--i\n"
    "Content-Type: text/html\n"
    "\n"
    "<b>inner</b>\n"
    "--i--\n"
    "\n"
    "--o--\n");

const std::string signed_msg = crlf(
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

// Encoded words stay encoded in ENVELOPE (RFC 3501), raw UTF-8 (RFC 6532) goes out
// as a literal; groups use the start/end markers.
const std::string non_ascii = crlf(
    "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
    "To: J\xc3\xbcrgen <j@example.de>, undisclosed-recipients:;\n"
    "Cc: friends: a@x.test, b@y.test;\n"
    "Subject: =?UTF-8?B?R3LDvMOfZQ==?= und \xc3\xa4\n"
    "\n"
    "body\n");

// Dovecot's own src/lib-imap/test-imap-bodystructure.c message, with CRLF line
// ends (Dovecot counts sizes as if lines ended in CRLF).
const std::string dovecot = crlf(
    "From: user@domain.org\n"
    "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
    "Mime-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"foo\n"
    " bar\"\n"
    "\n"
    "Root MIME prologue\n"
    "\n"
    "--foo bar\n"
    "Content-Type: text/x-myown; charset=us-ascii; foo=\"quoted\\\"string\"\n"
    "Content-ID: <foo@example.com>\n"
    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
    "Content-Disposition: inline; foo=bar\n"
    "Content-Description: hellodescription\n"
    "Content-Language: en, fi, se\n"
    "Content-Location: http://example.com/test.txt\n"
    "\n"
    "hello\n"
    "\n"
    "--foo bar\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: sub@domain.org\n"
    "To: sub-to1@domain.org, sub-to2@domain.org\n"
    "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
    "Subject: submsg\n"
    "Content-Type: multipart/alternative; boundary=\"sub1\"\n"
    "\n"
    "Sub MIME prologue\n"
    "--sub1\n"
    "Content-Type: text/html\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "<p>Hello world</p>\n"
    "\n"
    "--sub1\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: ?invalid\n"
    "\n"
    "Hello another world\n"
    "\n"
    "--sub1--\n"
    "Sub MIME epilogue\n"
    "\n"
    "--foo bar--\n"
    "Root MIME epilogue\n");

const char dovecot_bodystructure[] =
    "(\"text\" \"x-myown\" (\"charset\" \"us-ascii\" \"foo\" \"quoted\\\"string\") "
    "\"<foo@example.com>\" \"hellodescription\" \"7bit\" 7 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" "
    "(\"inline\" (\"foo\" \"bar\")) (\"en\" \"fi\" \"se\") \"http://example.com/test.txt\")"
    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 412 (\"Sun, 12 Aug 2012 12:34:56 +0300\" "
    "\"submsg\" ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) "
    "((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub-to1\" \"domain.org\")(NIL NIL "
    "\"sub-to2\" \"domain.org\")) NIL NIL NIL NIL) ((\"text\" \"html\" (\"charset\" "
    "\"us-ascii\") NIL NIL \"8bit\" 20 1 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" "
    "\"us-ascii\") NIL NIL \"7bit\" 21 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" "
    "\"sub1\") NIL NIL NIL) 21 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"foo bar\") NIL NIL NIL";

const char dovecot_body[] =
    "(\"text\" \"x-myown\" (\"charset\" \"us-ascii\" \"foo\" \"quoted\\\"string\") "
    "\"<foo@example.com>\" \"hellodescription\" \"7bit\" 7 1)(\"message\" \"rfc822\" NIL NIL "
    "NIL \"7bit\" 412 (\"Sun, 12 Aug 2012 12:34:56 +0300\" \"submsg\" ((NIL NIL \"sub\" "
    "\"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) "
    "((NIL NIL \"sub-to1\" \"domain.org\")(NIL NIL \"sub-to2\" \"domain.org\")) NIL NIL NIL "
    "NIL) ((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"8bit\" 20 1)(\"text\" "
    "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 21 1) \"alternative\") 21) "
    "\"mixed\"";

}  // namespace

class message_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(message_test);
  CPPUNIT_TEST(same_bodystructure_as_dovecot);
  CPPUNIT_TEST(simple_text_matches_rfc3501_example_shape);
  CPPUNIT_TEST(alternative_and_charset_conversion);
  CPPUNIT_TEST(mixed_with_attachment_has_extension_data);
  CPPUNIT_TEST(nested_message_sections);
  CPPUNIT_TEST_SUITE_END();

 public:
  void same_bodystructure_as_dovecot() {
    const auto msg = parse(dovecot);
    // Dovecot's expected strings leave out the outermost parentheses.
    CPPUNIT_ASSERT_EQUAL("(" + std::string(dovecot_bodystructure) + ")", body_structure_form(msg));
    CPPUNIT_ASSERT_EQUAL("(" + std::string(dovecot_body) + ")", body_structure_form(msg, false));
  }
  void simple_text_matches_rfc3501_example_shape() {
    const auto msg = parse(simple);
    CPPUNIT_ASSERT_EQUAL(std::string("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
                                     "\"7bit\" 14 2 NIL NIL NIL NIL)"),
                         body_structure_form(msg));
    // RFC 3501 §7.4.2's example ENVELOPE, byte for byte.
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
            "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" "
            "\"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL "
            "NIL "
            "\"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John "
            "Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
            "\"<B27397-0100000@cac.washington.edu>\")"),
        envelope_form(msg.env));
    CPPUNIT_ASSERT_EQUAL(std::string("Hello\r\nWorld\r\n"), section(simple, "1"));
    CPPUNIT_ASSERT_EQUAL(std::string("Hello\r\nWorld\r\n"), section(simple, "TEXT"));
    CPPUNIT_ASSERT_EQUAL(simple, section(simple, ""));
    CPPUNIT_ASSERT_EQUAL(std::string("<not_found>"), section(simple, "2"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nTo: imap@cac.washington.edu\r\n"
                    "cc: minutes@CNRI.Reston.VA.US,\r\n   John Klensin <KLENSIN@MIT.EDU>\r\n\r\n"),
        section(simple, "HEADER.FIELDS (date TO Cc)"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"),
        section(simple, "HEADER.FIELDS.NOT (Date From Subject To cc Message-Id)"));
  }
  void alternative_and_charset_conversion() {
    const auto msg = parse(alternative);
    CPPUNIT_ASSERT_EQUAL(std::string("((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
                                     "\"quoted-printable\" 9 0 NIL NIL NIL "
                                     "NIL)(\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL "
                                     "\"7bit\" 11 0 NIL NIL NIL NIL) "
                                     "\"alternative\" (\"boundary\" \"b1\") NIL NIL NIL)"),
                         body_structure_form(msg));
    // quoted-printable undone, ISO-8859-1 converted: both say "café" in UTF-8.
    const auto t = extract_search_text(alternative, msg);
    CPPUNIT_ASSERT_EQUAL(std::string("caf\xc3\xa9\n<p>caf\xc3\xa9</p>"), t.body);
    CPPUNIT_ASSERT(!t.truncated);
    CPPUNIT_ASSERT_EQUAL(
        std::string("From: a@example.org\nSubject: alt\nContent-Type: multipart/alternative; "
                    "boundary=\"b1\"\n"),
        t.headers);
    CPPUNIT_ASSERT_EQUAL(std::string("caf=C3=A9"), section(alternative, "1"));
    auto bin = fetch_binary(alternative, msg, {1});
    CPPUNIT_ASSERT(bin.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("caf\xc3\xa9"), *bin);
    CPPUNIT_ASSERT_EQUAL(std::size_t{5}, *binary_size(alternative, msg, {1}));
    // headers only: the same header text, no body decoded
    const auto h = extract_search_text(alternative, msg, 1 << 20, search_parts::headers);
    CPPUNIT_ASSERT_EQUAL(t.headers, h.headers);
    CPPUNIT_ASSERT(h.body.empty());
    const auto capped = extract_search_text(alternative, msg, 4);
    CPPUNIT_ASSERT(capped.truncated);
    CPPUNIT_ASSERT_EQUAL(std::string("caf"), capped.body);  // not cut inside "é"
  }
  void mixed_with_attachment_has_extension_data() {
    const auto msg = parse(mixed);
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0 NIL NIL NIL NIL)"
            "(\"application\" \"pdf\" (\"name\" \"r.pdf\") \"<att1@x>\" \"the report\" \"base64\" "
            "16 "
            "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" \"r.pdf\")) (\"en\" "
            "\"de\") "
            "\"http://x.test/r.pdf\") \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)"),
        body_structure_form(msg));
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 "
            "0)(\"application\" "
            "\"pdf\" (\"name\" \"r.pdf\") \"<att1@x>\" \"the report\" \"base64\" 16) \"mixed\")"),
        body_structure_form(msg, false));
    CPPUNIT_ASSERT_EQUAL(
        std::string("(NIL \"report\" ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) "
                    "((\"Joe Q. "
                    "Public\" NIL \"john.q.public\" \"example.com\")) ((\"Joe Q. Public\" NIL "
                    "\"john.q.public\" "
                    "\"example.com\")) ((\"Mary Smith\" NIL \"mary\" \"x.test\")(NIL NIL \"jdoe\" "
                    "\"example.org\")(\"Who?\" NIL \"one\" \"y.test\")) ((NIL NIL \"boss\" "
                    "\"nil.test\")(\"Giant; "
                    "\\\"Big\\\" Box\" NIL \"sysservices\" \"example.net\")) NIL NIL NIL)"),
        envelope_form(msg.env));
    CPPUNIT_ASSERT_EQUAL(std::string("aGVsbG8gd29ybGQ="), section(mixed, "2"));
    CPPUNIT_ASSERT_EQUAL(std::string("hello world"), *fetch_binary(mixed, msg, {2}));
    CPPUNIT_ASSERT_EQUAL(std::string("Content-Type: text/plain\r\n\r\n"), section(mixed, "1.MIME"));
    CPPUNIT_ASSERT_EQUAL(std::string("<not_found>"), section(mixed, "3"));
    CPPUNIT_ASSERT_EQUAL(std::string("<not_found>"), section(mixed, "1.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("see attached"), extract_search_text(mixed, msg).body);
  }
  void nested_message_sections() {
    const auto msg = parse(nested);
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0 NIL NIL NIL NIL)"
            "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 236 (NIL \"inner\" ((NIL NIL \"b\" "
            "\"example.org\")) ((NIL NIL \"b\" \"example.org\")) ((NIL NIL \"r\" \"example.org\")) "
            "NIL NIL "
            "NIL NIL \"<inner@x>\") ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
            "\"7bit\" 10 0 "
            "NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0 "
            "NIL NIL "
            "NIL NIL) \"alternative\" (\"boundary\" \"i\") NIL NIL NIL) 15 NIL NIL NIL NIL) "
            "\"mixed\" "
            "(\"boundary\" \"o\") NIL NIL NIL)"),
        body_structure_form(msg));
    CPPUNIT_ASSERT_EQUAL(
        std::string("From: b@example.org\r\nReply-To: r@example.org\r\nSubject: inner\r\n"
                    "Message-ID: <inner@x>\r\nContent-Type: multipart/alternative; "
                    "boundary=\"i\"\r\n\r\n"),
        section(nested, "2.HEADER"));
    CPPUNIT_ASSERT_EQUAL(std::string("inner text"), section(nested, "2.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("<b>inner</b>"), section(nested, "2.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Content-Type: text/html\r\n\r\n"),
                         section(nested, "2.2.MIME"));
    CPPUNIT_ASSERT_EQUAL(std::string("--i\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--i\r\n"
                                     "Content-Type: text/html\r\n\r\n<b>inner</b>\r\n--i--\r\n"),
                         section(nested, "2.TEXT"));
    CPPUNIT_ASSERT_EQUAL(std::string("Subject: inner\r\n\r\n"),
                         section(nested, "2.HEADER.FIELDS (Subject)"));
    CPPUNIT_ASSERT_EQUAL(std::string("From: a@example.org\r\nSubject: fwd\r\n\r\n"),
                         section(nested, "HEADER.FIELDS (subject FROM)"));
    // HEADER of a part that is not message/rfc822 is empty; a section 2 body is the
    // whole encapsulated message, a slice of the raw bytes.
    CPPUNIT_ASSERT_EQUAL(std::string(""), section(nested, "1.HEADER"));
    const auto whole = fetch_section(nested, msg, *parse_section("2"));
    CPPUNIT_ASSERT(!whole->produced_bytes);
    CPPUNIT_ASSERT(msg.root.children[1].body == whole->slice);
    CPPUNIT_ASSERT_EQUAL(std::string("see below\ninner text\n<b>inner</b>"),
                         extract_search_text(nested, msg).body);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(message_test);

}  // namespace hamail::mime

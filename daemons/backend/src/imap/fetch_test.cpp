// The FETCH engine: item and modifier parsing over real parser output, and the
// exact response lines for every item on a few message shapes.

#include "imap/fetch.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <string>
#include <variant>

#include "hamail/mime/message.hpp"
#include "hamail/protocol/imap/command_parser.hpp"

namespace hamail::backend::imap_fetch {

namespace {

using namespace std::string_literals;

std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

const std::string simple = crlf(
    "From: Alice <alice@example.org>\n"
    "To: bob@example.com\n"
    "Subject: Hello\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\n"
    "Message-ID: <1@example.org>\n"
    "\n"
    "Hi Bob.\n"
    "Line two.\n");

// multipart/mixed: 1 = multipart/alternative (1.1 text, 1.2 html), 2 = a
// base64 attachment whose bytes are 00 01 02 'A', 3 = base64 text without NUL.
const std::string mixed = crlf(
    "From: a@example.org\n"
    "Subject: mixed\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\n"
    "\n"
    "--outer\n"
    "Content-Type: multipart/alternative; boundary=\"inner\"\n"
    "\n"
    "--inner\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "plain\n"
    "--inner\n"
    "Content-Type: text/html\n"
    "\n"
    "<b>html</b>\n"
    "--inner--\n"
    "--outer\n"
    "Content-Type: application/octet-stream; name=\"a.bin\"\n"
    "Content-Disposition: attachment; filename=\"a.bin\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAECQQ==\n"
    "--outer\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "aGVsbG8=\n"
    "--outer--\n");

// message/rfc822 as part 2.
const std::string forwarded = crlf(
    "From: c@example.org\n"
    "Subject: fwd\n"
    "Content-Type: multipart/mixed; boundary=\"m\"\n"
    "\n"
    "--m\n"
    "Content-Type: text/plain\n"
    "\n"
    "see below\n"
    "--m\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: d@example.org\n"
    "Subject: inner\n"
    "X-Extra: yes\n"
    "\n"
    "inner body\n"
    "--m--\n");

// A header that never ends, a part with an unknown encoding, a NUL in the body.
const std::string malformed = crlf(
    "Subject: broken\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: x-rot13\n"
    "\n"
    "a\0b\n"s);

/// The arguments after the sequence set of "a FETCH 1 <items>".
std::vector<imap::value> args_of(const std::string& items) {
  imap::command_parser parser;
  const std::string line = "a FETCH 1 " + items + "\r\n";
  std::string_view rest = line;
  auto step = parser.feed(rest);
  while (step.status == imap::parse_status::need_continuation) {  // a synchronizing literal
    rest.remove_prefix(step.consumed);
    step = parser.feed(rest);
  }
  CPPUNIT_ASSERT_MESSAGE(items, step.status == imap::parse_status::complete && step.cmd);
  auto args = step.cmd->args;
  args.erase(args.begin());
  return args;
}

parse_options all_on() { return {.uid = true, .condstore = true, .qresync = true}; }

fetch_request parse_ok(const std::string& items, const parse_options& o = all_on()) {
  const auto args = args_of(items);
  auto r = parse_fetch(args, o);
  if (auto* e = std::get_if<fetch_error>(&r)) CPPUNIT_FAIL(items + ": " + e->text);
  return std::get<fetch_request>(std::move(r));
}

std::string parse_bad(const std::string& items, const parse_options& o = all_on()) {
  const auto args = args_of(items);
  auto r = parse_fetch(args, o);
  CPPUNIT_ASSERT_MESSAGE(items + " should be refused", std::holds_alternative<fetch_error>(r));
  return std::get<fetch_error>(r).text;
}

store::message_info info_for(const std::string& raw) {
  store::message_info info;
  info.uid = 42;
  info.modseq = 7;
  info.flags.set(store::system_flag::seen).set(store::system_flag::flagged);
  info.flags.keywords = {"$Forwarded"};
  info.date = store::internal_date{std::chrono::seconds{760657945}};  // 07-Feb-1994 21:52:25 UTC
  info.size = raw.size();
  return info;
}

/// Renders `items` against `raw` as message 3 (what a session would send).
std::string render(const std::string& raw, const std::string& items, render_options o = {},
                   store::message_info* info_override = nullptr) {
  const auto r = parse_ok(items);
  const auto msg = mime::parse(raw);
  const auto info = info_override ? *info_override : info_for(raw);
  auto out =
      render_fetch(r, message_view{.seq = 3, .info = info, .raw = raw, .structure = &msg}, o);
  if (!out) return "<" + out.err().user_text + ">";
  return *out;
}

std::string lit(std::string_view s) {
  return "{" + std::to_string(s.size()) + "}\r\n" + std::string(s);
}

}  // namespace

class fetch_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(fetch_test);
  CPPUNIT_TEST(single_items_and_lists_parse_in_order);
  CPPUNIT_TEST(macros_expand);
  CPPUNIT_TEST(needs_and_seen_follow_the_items);
  CPPUNIT_TEST(sections_read_back_from_the_value_tree);
  CPPUNIT_TEST(modifiers);
  CPPUNIT_TEST(bad_syntax_is_refused);
  CPPUNIT_TEST(simple_message_every_item);
  CPPUNIT_TEST(structure_items);
  CPPUNIT_TEST(body_sections_of_a_multipart);
  CPPUNIT_TEST(nested_message_sections);
  CPPUNIT_TEST(header_fields_echo_and_filter);
  CPPUNIT_TEST(partials);
  CPPUNIT_TEST(binary_literal8_and_size);
  CPPUNIT_TEST(missing_parts_give_nil);
  CPPUNIT_TEST(malformed_message);
  CPPUNIT_TEST(nul_in_a_header_value);
  CPPUNIT_TEST(utf8_strings_go_quoted_only_when_allowed);
  CPPUNIT_TEST(added_uid_flags_and_modseq);
  CPPUNIT_TEST(rev2_drops_recent);
  CPPUNIT_TEST(missing_structure_is_an_internal_error);
  CPPUNIT_TEST(flags_responses);
  CPPUNIT_TEST(internal_dates);
  CPPUNIT_TEST(changedsince_selects);
  CPPUNIT_TEST_SUITE_END();

 public:
  void single_items_and_lists_parse_in_order() {
    auto r = parse_ok("flags");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, r.items.size());
    CPPUNIT_ASSERT(r.items[0].kind == item_kind::flags);
    r = parse_ok("(UID rfc822.size BODY.PEEK[1.2] binary.peek[3]<0.10> BINARY.SIZE[2] MODSEQ)");
    CPPUNIT_ASSERT_EQUAL(std::size_t{6}, r.items.size());
    CPPUNIT_ASSERT(r.items[0].kind == item_kind::uid);
    CPPUNIT_ASSERT(r.items[1].kind == item_kind::rfc822_size);
    CPPUNIT_ASSERT(r.items[2].kind == item_kind::body_section && r.items[2].peek);
    CPPUNIT_ASSERT((r.items[2].section.part == std::vector<unsigned>{1, 2}));
    CPPUNIT_ASSERT(r.items[3].kind == item_kind::binary && r.items[3].peek);
    CPPUNIT_ASSERT((r.items[3].partial == imap::partial_range{0, 10}));
    CPPUNIT_ASSERT(r.items[4].kind == item_kind::binary_size);
    CPPUNIT_ASSERT(r.items[5].kind == item_kind::modseq);
    CPPUNIT_ASSERT(r.wants_modseq);
  }

  void macros_expand() {
    auto kinds = [](const fetch_request& r) {
      std::vector<item_kind> k;
      for (const auto& i : r.items) k.push_back(i.kind);
      return k;
    };
    using k = item_kind;
    CPPUNIT_ASSERT((kinds(parse_ok("ALL")) ==
                    std::vector{k::flags, k::internal_date, k::rfc822_size, k::envelope}));
    CPPUNIT_ASSERT(
        (kinds(parse_ok("fast")) == std::vector{k::flags, k::internal_date, k::rfc822_size}));
    CPPUNIT_ASSERT((kinds(parse_ok("FULL")) ==
                    std::vector{k::flags, k::internal_date, k::rfc822_size, k::envelope, k::body}));
    CPPUNIT_ASSERT(!parse_ok("FAST").needs_structure);
    CPPUNIT_ASSERT(parse_ok("ALL").needs_structure);
    CPPUNIT_ASSERT(!parse_ok("ALL").needs_raw);
    // A macro is not an item: it cannot appear in a list.
    parse_bad("(ALL)");
    parse_bad("(FLAGS FAST)");
  }

  void needs_and_seen_follow_the_items() {
    auto r = parse_ok("(FLAGS UID INTERNALDATE RFC822.SIZE)");
    CPPUNIT_ASSERT(!r.needs_raw && !r.needs_structure && !r.sets_seen && !r.wants_modseq);
    r = parse_ok("BODY[]");
    CPPUNIT_ASSERT(r.needs_raw && !r.needs_structure && r.sets_seen);
    r = parse_ok("BODY.PEEK[]");
    CPPUNIT_ASSERT(r.needs_raw && !r.needs_structure && !r.sets_seen);
    r = parse_ok("BODY.PEEK[HEADER]");
    CPPUNIT_ASSERT(r.needs_raw && r.needs_structure && !r.sets_seen);
    r = parse_ok("RFC822");
    CPPUNIT_ASSERT(r.needs_raw && r.sets_seen);
    r = parse_ok("RFC822.HEADER");
    CPPUNIT_ASSERT(r.needs_raw && r.needs_structure && !r.sets_seen);
    r = parse_ok("RFC822.TEXT");
    CPPUNIT_ASSERT(r.sets_seen);
    r = parse_ok("BINARY[1]");
    CPPUNIT_ASSERT(r.needs_raw && r.needs_structure && r.sets_seen);
    r = parse_ok("BINARY.PEEK[]");
    CPPUNIT_ASSERT(r.needs_raw && !r.needs_structure && !r.sets_seen);
    r = parse_ok("BINARY.SIZE[1]");
    CPPUNIT_ASSERT(r.needs_raw && r.needs_structure && !r.sets_seen);
    r = parse_ok("BINARY.SIZE[]");
    CPPUNIT_ASSERT(!r.needs_raw && !r.needs_structure && !r.sets_seen);
    r = parse_ok("BODYSTRUCTURE");
    CPPUNIT_ASSERT(!r.needs_raw && r.needs_structure);
    r = parse_ok("(ENVELOPE BODY)");
    CPPUNIT_ASSERT(!r.needs_raw && r.needs_structure);
  }

  void sections_read_back_from_the_value_tree() {
    auto r = parse_ok("BODY[1.2.HEADER.FIELDS.NOT (From \"X-A\" {3}\r\nX-B)]");
    const auto& s = r.items[0].section;
    CPPUNIT_ASSERT((s.part == std::vector<unsigned>{1, 2}));
    CPPUNIT_ASSERT(s.text == mime::section_text::header_fields_not);
    CPPUNIT_ASSERT((s.fields == std::vector<std::string>{"From", "X-A", "X-B"}));
    r = parse_ok("BODY[3]");
    CPPUNIT_ASSERT((r.items[0].section.part == std::vector<unsigned>{3}));
    CPPUNIT_ASSERT(r.items[0].section.text == mime::section_text::all);
    r = parse_ok("body[2.mime]");
    CPPUNIT_ASSERT(r.items[0].section.text == mime::section_text::mime);
    r = parse_ok("BODY[text]");
    CPPUNIT_ASSERT(r.items[0].section.part.empty());
    CPPUNIT_ASSERT(r.items[0].section.text == mime::section_text::text);
  }

  void modifiers() {
    auto r = parse_ok("FLAGS (CHANGEDSINCE 12345)");
    CPPUNIT_ASSERT(r.changedsince && *r.changedsince == 12345u && r.wants_modseq && !r.vanished);
    r = parse_ok("(FLAGS) (VANISHED CHANGEDSINCE 5)");
    CPPUNIT_ASSERT(r.vanished && *r.changedsince == 5u);
    // CHANGEDSINCE needs CONDSTORE; VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE.
    parse_bad("FLAGS (CHANGEDSINCE 1)", {.uid = true});
    parse_bad("FLAGS (CHANGEDSINCE 1 VANISHED)", {.uid = true, .condstore = true});
    parse_bad("FLAGS (CHANGEDSINCE 1 VANISHED)", {.condstore = true, .qresync = true});
    parse_bad("FLAGS (VANISHED)");
    parse_bad("FLAGS (CHANGEDSINCE)");
    parse_bad("FLAGS (CHANGEDSINCE x)");
    parse_bad("FLAGS (CHANGEDSINCE 9223372036854775808)");
    parse_bad("FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)");
    parse_bad("FLAGS (FOO)");
    parse_bad("FLAGS ()");
    parse_bad("FLAGS CHANGEDSINCE");
    parse_bad("FLAGS (CHANGEDSINCE 1) (VANISHED)");
    // MODSEQ is an item only where CONDSTORE is advertised.
    parse_bad("MODSEQ", {});
    CPPUNIT_ASSERT(parse_ok("MODSEQ", {.condstore = true}).wants_modseq);
  }

  void bad_syntax_is_refused() {
    parse_bad("FOO");
    parse_bad("(FLAGS FOO)");
    parse_bad("()");
    parse_bad("\"FLAGS\"");
    parse_bad("(FLAGS (UID))");
    parse_bad("BODY[0]");
    parse_bad("BODY[1.FOO]");
    parse_bad("BODY[MIME]");
    parse_bad("BODY[HEADER.FIELDS]");
    parse_bad("BODY[HEADER.FIELDS ()]");
    parse_bad("BODY[HEADER (From)]");
    parse_bad("BODY[TEXT TEXT]");
    parse_bad("BODY[HEADER.FIELDS (NIL)]");
    parse_bad("BINARY[HEADER]");
    parse_bad("BINARY[1.MIME]");
    parse_bad("BINARY[1.TEXT]");
    parse_bad("BINARY.SIZE[1]<0.5>");
    parse_bad("BINARY[HEADER.FIELDS (From)]");
    parse_bad("BODYSTRUCTURE.PEEK[]");
    // a partial count of 0 never reaches parse_fetch: the command parser refuses <0.0>
    imap::command_parser parser;
    CPPUNIT_ASSERT(parser.feed("a FETCH 1 BODY[]<0.0>\r\n").status == imap::parse_status::error);
  }

  void simple_message_every_item() {
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (FLAGS (\\Flagged \\Seen $Forwarded))\r\n"s,
                         render(simple, "FLAGS"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (UID 42 RFC822.SIZE " + std::to_string(simple.size()) +
                             " INTERNALDATE \"07-Feb-1994 21:52:25 +0000\")\r\n",
                         render(simple, "(UID RFC822.SIZE INTERNALDATE)"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (RFC822 " + lit(simple) + ")\r\n", render(simple, "RFC822"));
    const std::string header = simple.substr(0, simple.find("\r\n\r\n") + 4);
    const std::string text = simple.substr(header.size());
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (RFC822.HEADER " + lit(header) + ")\r\n",
                         render(simple, "RFC822.HEADER"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (RFC822.TEXT " + lit(text) + ")\r\n",
                         render(simple, "RFC822.TEXT"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[] " + lit(simple) + " BODY[HEADER] " + lit(header) +
                             " BODY[TEXT] " + lit(text) + " BODY[1] " + lit(text) + ")\r\n",
                         render(simple, "(BODY.PEEK[] BODY[HEADER] BODY[TEXT] BODY[1])"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (MODSEQ (7))\r\n"s, render(simple, "MODSEQ"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BINARY[] " + lit(simple) + " BINARY.SIZE[] " +
                             std::to_string(simple.size()) + " BINARY[1] " + lit(text) +
                             " BINARY.SIZE[1] " + std::to_string(text.size()) + ")\r\n",
                         render(simple, "(BINARY[] BINARY.SIZE[] BINARY.PEEK[1] BINARY.SIZE[1])"));
  }

  void structure_items() {
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"Hello\" "
        "((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) "
        "((\"Alice\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.com\")) NIL NIL "
        "NIL "
        "\"<1@example.org>\") "
        "BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 2) "
        "BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 2 "
        "NIL NIL NIL NIL))\r\n"s,
        render(simple, "(ENVELOPE BODY BODYSTRUCTURE)"));
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODYSTRUCTURE ("
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
        "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) "
        "\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)"
        "(\"application\" \"octet-stream\" (\"name\" \"a.bin\") NIL NIL \"base64\" 8 NIL "
        "(\"attachment\" (\"filename\" \"a.bin\")) NIL NIL)"
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 8 0 NIL NIL NIL NIL) "
        "\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL))\r\n"s,
        render(mixed, "BODYSTRUCTURE"));
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODY ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0)"
        "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 63 "
        "(NIL \"inner\" ((NIL NIL \"d\" \"example.org\")) ((NIL NIL \"d\" \"example.org\")) "
        "((NIL NIL \"d\" \"example.org\")) NIL NIL NIL NIL NIL) "
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0) 4) \"mixed\") "
        "ENVELOPE (NIL \"fwd\" ((NIL NIL \"c\" \"example.org\")) ((NIL NIL \"c\" \"example.org\")) "
        "((NIL NIL \"c\" \"example.org\")) NIL NIL NIL NIL NIL))\r\n"s,
        render(forwarded, "(BODY ENVELOPE)"));
  }

  void body_sections_of_a_multipart() {
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[1.1] " + lit("plain") + " BODY[1.2] " +
                             lit("<b>html</b>") + " BODY[2] " + lit("AAECQQ==") + ")\r\n",
                         render(mixed, "(BODY[1.1] BODY[1.2] BODY[2])"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[2.MIME] " +
                             lit("Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
                                 "Content-Disposition: attachment; filename=\"a.bin\"\r\n"
                                 "Content-Transfer-Encoding: base64\r\n\r\n") +
                             ")\r\n",
                         render(mixed, "BODY[2.MIME]"));
    // HEADER/TEXT of a part that is not message/rfc822 are empty
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[1.1.HEADER] \"\")\r\n"s,
                         render(mixed, "BODY[1.1.HEADER]"));
  }

  void nested_message_sections() {
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[2.HEADER] " +
                             lit("From: d@example.org\r\nSubject: inner\r\nX-Extra: yes\r\n\r\n") +
                             " BODY[2.TEXT] " + lit("inner body") + " BODY[2.1] " +
                             lit("inner body") + ")\r\n",
                         render(forwarded, "(BODY[2.HEADER] BODY[2.TEXT] BODY[2.1])"));
  }

  void header_fields_echo_and_filter() {
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[HEADER.FIELDS (subject FROM)] " +
                             lit("From: Alice <alice@example.org>\r\nSubject: Hello\r\n\r\n") +
                             ")\r\n",
                         render(simple, "BODY.PEEK[HEADER.FIELDS (subject FROM)]"));
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODY[HEADER.FIELDS.NOT (To Date Message-ID \"x y\")] " +
            lit("From: Alice <alice@example.org>\r\nSubject: Hello\r\n\r\n") + ")\r\n",
        render(simple, "BODY[HEADER.FIELDS.NOT (To \"Date\" {10}\r\nMessage-ID \"x y\")]"));
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODY[2.HEADER.FIELDS (X-Extra)] " + lit("X-Extra: yes\r\n\r\n") + ")\r\n",
        render(forwarded, "BODY[2.HEADER.FIELDS (X-Extra)]"));
    // no field matches: the blank line alone
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[HEADER.FIELDS (X-None)] " + lit("\r\n") + ")\r\n",
                         render(simple, "BODY[HEADER.FIELDS (X-None)]"));
    // a partial of produced bytes
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[HEADER.FIELDS (Subject)]<9> " + lit("Hello") + ")\r\n",
                         render(simple, "BODY[HEADER.FIELDS (Subject)]<9.5>"));
  }

  void partials() {
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[]<0> " + lit("From:") + ")\r\n",
                         render(simple, "BODY[]<0.5>"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[TEXT]<3> " + lit("Bob.\r\nLine two.\r\n") + ")\r\n",
                         render(simple, "BODY[TEXT]<3.1000>"));
    // origin at or beyond the end: an empty string
    const std::string end = std::to_string(simple.size());
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[]<" + end + "> \"\")\r\n",
                         render(simple, "BODY[]<" + end + ".10>"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[1]<99999> \"\")\r\n"s,
                         render(simple, "BODY[1]<99999.1>"));
    // the last octet exactly
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODY[]<" + std::to_string(simple.size() - 1) + "> " + lit("\n") + ")\r\n",
        render(simple, "BODY[]<" + std::to_string(simple.size() - 1) + ".10>"));
    // BINARY partials apply to the decoded bytes and echo no origin (RFC 9051 ABNF)
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BINARY[3] " + lit("ell") + ")\r\n",
                         render(mixed, "BINARY[3]<1.3>"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BINARY[3] \"\")\r\n"s, render(mixed, "BINARY[3]<5.3>"));
  }

  void binary_literal8_and_size() {
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BINARY[2] ~{4}\r\n\0\1\2A BINARY.SIZE[2] 4)\r\n"s,
                         render(mixed, "(BINARY[2] BINARY.SIZE[2])"));
    // without a NUL an ordinary literal
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BINARY[3] " + lit("hello") + " BINARY.SIZE[3] 5)\r\n",
                         render(mixed, "(BINARY.PEEK[3] BINARY.SIZE[3])"));
    // the partial that skips the NUL goes out as {n}
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BINARY[2] {2}\r\n\2A)\r\n"s, render(mixed, "BINARY[2]<2.2>"));
    // BODY[2] keeps the transfer encoding
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[2] " + lit("AAECQQ==") + ")\r\n",
                         render(mixed, "BODY[2]"));
  }

  void missing_parts_give_nil() {
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODY[4] NIL BODY[1.3.MIME] NIL BINARY[9] NIL BINARY.SIZE[9] 0)\r\n"s,
        render(mixed, "(BODY[4] BODY[1.3.MIME] BINARY[9] BINARY.SIZE[9])"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (BODY[2] NIL)\r\n"s, render(simple, "BODY[2]"));
  }

  void malformed_message() {
    // the unknown encoding: BINARY fails as UNKNOWN-CTE, BODY still works
    CPPUNIT_ASSERT_EQUAL("<UNKNOWN-CTE>"s, render(malformed, "BINARY[1]"));
    CPPUNIT_ASSERT_EQUAL("<UNKNOWN-CTE>"s, render(malformed, "BINARY.SIZE[1]"));
    // a NUL inside a BODY literal goes out as 0x80
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODY[TEXT] {5}\r\na\x80"
        "b\r\n)\r\n"s,
        render(malformed, "BODY[TEXT]"));
    const std::string no_end = "Subject: x\r\nFrom: y";
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (BODY[HEADER.FIELDS (From)] " + lit("From: y\r\n\r\n") + " BODY[TEXT] \"\")\r\n",
        render(no_end, "(BODY[HEADER.FIELDS (From)] BODY[TEXT])"));
  }

  void nul_in_a_header_value() {
    // the ENVELOPE writes the subject as a {n} literal, where a NUL may not go
    const std::string raw = "Subject: a\0b\r\n\r\nx"s;
    CPPUNIT_ASSERT_EQUAL(
        "* 3 FETCH (ENVELOPE (NIL {3}\r\na\x80"
        "b NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"s,
        render(raw, "ENVELOPE"));
  }

  void utf8_strings_go_quoted_only_when_allowed() {
    const std::string raw = "Subject: caf\xc3\xa9\r\n\r\nx";
    const std::string tail = " NIL NIL NIL NIL NIL NIL NIL NIL))\r\n";
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (ENVELOPE (NIL {5}\r\ncaf\xc3\xa9" + tail,
                         render(raw, "ENVELOPE"));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (ENVELOPE (NIL \"caf\xc3\xa9\"" + tail,
                         render(raw, "ENVELOPE", {.utf8 = true}));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (ENVELOPE (NIL \"caf\xc3\xa9\"" + tail,
                         render(raw, "ENVELOPE", {.rev2 = true}));
  }

  void added_uid_flags_and_modseq() {
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (UID 42 RFC822.SIZE " + std::to_string(simple.size()) +
                             " FLAGS (\\Flagged \\Seen $Forwarded) MODSEQ (7))\r\n",
                         render(simple, "RFC822.SIZE",
                                {.add_uid = true, .add_modseq = true, .add_flags_for_seen = true}));
    // asked for already: not repeated, kept where asked
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (MODSEQ (7) FLAGS (\\Flagged \\Seen $Forwarded) UID 42)\r\n"s,
                         render(simple, "(MODSEQ FLAGS UID)",
                                {.add_uid = true, .add_modseq = true, .add_flags_for_seen = true}));
    // CHANGEDSINCE brings MODSEQ even without add_modseq
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (UID 42 MODSEQ (7))\r\n"s,
                         render(simple, "UID (CHANGEDSINCE 1)"));
  }

  void rev2_drops_recent() {
    auto info = info_for(simple);
    info.recent = true;
    info.flags = {};
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (FLAGS (\\Recent))\r\n"s, render(simple, "FLAGS", {}, &info));
    CPPUNIT_ASSERT_EQUAL("* 3 FETCH (FLAGS ())\r\n"s,
                         render(simple, "FLAGS", {.rev2 = true}, &info));
  }

  void missing_structure_is_an_internal_error() {
    const auto r = parse_ok("BODYSTRUCTURE");
    const auto info = info_for(simple);
    auto out = render_fetch(r, message_view{.seq = 1, .info = info, .raw = simple}, {});
    CPPUNIT_ASSERT(!out && out.err().kind == error_kind::internal);
    // a structure of other bytes than the raw given
    const auto other = mime::parse(mixed);
    const auto s = parse_ok("BODY[1]");
    out = render_fetch(s, message_view{.seq = 1, .info = info, .raw = simple, .structure = &other},
                       {});
    CPPUNIT_ASSERT(!out && out.err().kind == error_kind::internal);
    // items that need neither render without them
    const auto f = parse_ok("(FLAGS UID)");
    CPPUNIT_ASSERT(render_fetch(f, message_view{.seq = 1, .info = info}, {}).has_value());
  }

  void flags_responses() {
    store::message_flags f;
    CPPUNIT_ASSERT_EQUAL("()"s, flag_list(f));
    f.set(store::system_flag::draft)
        .set(store::system_flag::answered)
        .set(store::system_flag::deleted);
    f.keywords = {"$Junk", "work"};
    CPPUNIT_ASSERT_EQUAL("(\\Answered \\Deleted \\Draft \\Recent $Junk work)"s, flag_list(f, true));
    CPPUNIT_ASSERT_EQUAL("* 9 FETCH (FLAGS (\\Answered \\Deleted \\Draft $Junk work))\r\n"s,
                         flags_response(9, f));
    CPPUNIT_ASSERT_EQUAL(
        "* 9 FETCH (FLAGS (\\Answered \\Deleted \\Draft $Junk work) UID 17 MODSEQ (300))\r\n"s,
        flags_response(9, f, 17, 300));
    CPPUNIT_ASSERT_EQUAL("* 1 FETCH (FLAGS (\\Recent) MODSEQ (2))\r\n"s,
                         flags_response(1, {}, std::nullopt, 2, true));
  }

  void internal_dates() {
    using namespace std::chrono;
    CPPUNIT_ASSERT_EQUAL("01-Jan-1970 00:00:00 +0000"s, internal_date_text(store::internal_date{}));
    CPPUNIT_ASSERT_EQUAL("29-Feb-2024 23:59:59 +0000"s,
                         internal_date_text(sys_days{2024y / February / 29} + 86399s));
    CPPUNIT_ASSERT_EQUAL("05-Dec-2026 09:08:07 +0000"s,
                         internal_date_text(sys_days{2026y / December / 5} + 9h + 8min + 7s));
  }

  void changedsince_selects() {
    const auto r = parse_ok("FLAGS (CHANGEDSINCE 7)");
    store::message_info info;
    info.modseq = 7;
    CPPUNIT_ASSERT(!selected_by(r, info));
    info.modseq = 8;
    CPPUNIT_ASSERT(selected_by(r, info));
    info.modseq = 1;
    CPPUNIT_ASSERT(selected_by(parse_ok("FLAGS"), info));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(fetch_test);

}  // namespace hamail::backend::imap_fetch

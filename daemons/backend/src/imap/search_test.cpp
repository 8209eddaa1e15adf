// IMAP SEARCH: parsing every key, evaluation over synthetic messages, the
// ESEARCH/SEARCH responses, and that flag-only searches never load content.

#include "imap/search.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <deque>
#include <string>
#include <vector>

namespace hamail::backend::imap_search {
namespace {

using namespace std::chrono_literals;

// The text with every LF turned into CRLF.
std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// The arguments of "a SEARCH <text>" as the command parser gives them.
std::vector<imap::value> args_of(std::string_view text) {
  imap::command_parser p;
  p.set_utf8_accept(true);
  const std::string line = "a SEARCH " + std::string(text) + "\r\n";
  const auto step = p.feed(line);
  CPPUNIT_ASSERT_MESSAGE(std::string(text), step.status == imap::parse_status::complete);
  return step.cmd->args;
}

store::internal_date at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  const auto day =
      std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d));
  return std::chrono::time_point_cast<std::chrono::seconds>(day) + std::chrono::hours(hh) +
         std::chrono::minutes(mm) + std::chrono::seconds(ss);
}

struct stored {
  std::string raw;
  mime::message_structure structure;
  mime::search_text text;
  message_content content;
};

// Five messages covering every key.
class mailbox {
 public:
  mailbox() {
    add(10, 5, store::message_flags{}.set(store::system_flag::seen), at(2024, 1, 10, 12), false,
        "Date: Wed, 10 Jan 2024 23:30:00 -0800\n"
        "From: Alice <alice@example.org>\n"
        "To: bob@example.org\n"
        "Subject: Hello world\n"
        "Message-ID: <m1@example.org>\n"
        "\n"
        "The quick brown fox\n");
    auto f2 =
        store::message_flags{}.set(store::system_flag::answered).set(store::system_flag::seen);
    f2.keywords.push_back("$Junk");
    add(11, 6, f2, at(2024, 1, 11), true,
        "From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.de>\n"
        "Cc: carol@example.org\n"
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "U3RyYcOfZSB1bmQgUGxhdHo=\n");
    add(15, 7,
        store::message_flags{}.set(store::system_flag::flagged).set(store::system_flag::deleted),
        at(2024, 1, 12, 23, 59, 59), true,
        "Date: 12 Jan 2024 10:00 +0000\n"
        "From: bob@example.org\n"
        "Subject: Re: Hello world\n"
        "X-Spam: yes\n"
        "\n"
        "nothing to see\n");
    add(20, 8, store::message_flags{}.set(store::system_flag::draft), at(2023, 12, 31, 8), false,
        "Date: Sun, 31 Dec 2023 08:00:00 +0100\n"
        "From: eve@example.org\n"
        "Bcc: dave@example.org\n"
        "Subject: =?UTF-8?B?0J/QoNCY0JLQldCi?=\n"
        "\n"
        "lazy DOG\n");
    add(21, 9, store::message_flags{}, at(2024, 2, 1), false,
        "Date: garbage\n"
        "From: frank@example.org\n"
        "Subject: parts\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\n"
        "\n"
        "--b\n"
        "Content-Type: text/plain\n"
        "\n"
        "attachment text\n"
        "--b\n"
        "Content-Type: application/octet-stream\n"
        "\n"
        "binaryneedle\n"
        "--b--\n");
    for (auto& s : content_) s.content = {s.raw, &s.structure, &s.text};
  }

  // Indices matching `keys`, counting loads.
  std::vector<std::uint32_t> search(std::string_view keys,
                                    std::vector<store::imap_uid> saved = {}) {
    auto parsed = parse_search(args_of(keys), parse_options{.allow_return = true});
    if (auto* e = std::get_if<search_error>(&parsed))
      CPPUNIT_FAIL(std::string(keys) + ": " + e->text);
    return run(std::get<search_query>(parsed), saved);
  }

  std::vector<std::uint32_t> run(const search_query& q, std::vector<store::imap_uid> saved = {}) {
    search_context c{.messages = infos,
                     .saved = saved,
                     .load =
                         [this](std::size_t i) {
                           ++loads;
                           return &content_[i].content;
                         },
                     .now = now};
    return evaluate(q, c);
  }

  // Leaves only the search text in what load returns.
  void drop_structures() {
    for (auto& s : content_) s.content.structure = nullptr;
  }

  std::vector<store::message_info> infos;
  std::size_t loads = 0;
  store::internal_date now = at(2024, 2, 1, 1);

 private:
  void add(store::imap_uid uid, store::mod_seq modseq, store::message_flags flags,
           store::internal_date date, bool recent, std::string_view raw) {
    stored s;
    s.raw = crlf(raw);
    s.structure = mime::parse(s.raw);
    s.text = mime::extract_search_text(s.raw, s.structure);
    content_.push_back(std::move(s));
    infos.push_back(store::message_info{.uid = uid,
                                        .modseq = modseq,
                                        .flags = std::move(flags),
                                        .date = date,
                                        .size = std::uint64_t{50} * uid,
                                        .recent = recent});
  }
  std::deque<stored> content_;
};

using v = std::vector<std::uint32_t>;

std::string show(const v& x) {
  std::string out;
  for (auto n : x) out += (out.empty() ? "" : " ") + std::to_string(n);
  return "{" + out + "}";
}

search_error refused(std::string_view keys, const parse_options& o = {}) {
  auto parsed = parse_search(args_of(keys), o);
  auto* e = std::get_if<search_error>(&parsed);
  CPPUNIT_ASSERT_MESSAGE(std::string(keys), e != nullptr);
  CPPUNIT_ASSERT_MESSAGE(std::string(keys), !e->text.empty());
  return *e;
}

search_query parsed(std::string_view keys, const parse_options& o = {.allow_return = true}) {
  auto p = parse_search(args_of(keys), o);
  if (auto* e = std::get_if<search_error>(&p)) CPPUNIT_FAIL(std::string(keys) + ": " + e->text);
  return std::get<search_query>(p);
}

#define EXPECT_SEARCH(box, keys, ...) \
  CPPUNIT_ASSERT_EQUAL_MESSAGE(keys, show(v{__VA_ARGS__}), show((box).search(keys)))

class search_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(search_test);
  CPPUNIT_TEST(flag_keys);
  CPPUNIT_TEST(size_and_internal_date_keys);
  CPPUNIT_TEST(sent_date_keys_use_the_header_in_its_own_zone);
  CPPUNIT_TEST(older_and_younger);
  CPPUNIT_TEST(string_keys_on_decoded_text);
  CPPUNIT_TEST(sequence_and_uid_sets);
  CPPUNIT_TEST(saved_result_dollar);
  CPPUNIT_TEST(boolean_combinations);
  CPPUNIT_TEST(modseq_key);
  CPPUNIT_TEST(content_loaded_only_when_needed);
  CPPUNIT_TEST(empty_mailbox);
  CPPUNIT_TEST(return_options_and_charset);
  CPPUNIT_TEST(bad_input);
  CPPUNIT_TEST(limits);
  CPPUNIT_TEST(responses);
  CPPUNIT_TEST(save_keeps_min_max_or_all);
  CPPUNIT_TEST(header_dates);
  CPPUNIT_TEST(case_folding);
  CPPUNIT_TEST(hundred_thousand_messages_flag_only_is_linear_and_loads_nothing);
  CPPUNIT_TEST_SUITE_END();

 public:
  void flag_keys() {
    mailbox b;
    EXPECT_SEARCH(b, "ALL", 0, 1, 2, 3, 4);
    EXPECT_SEARCH(b, "SEEN", 0, 1);
    EXPECT_SEARCH(b, "unseen", 2, 3, 4);
    EXPECT_SEARCH(b, "ANSWERED", 1);
    EXPECT_SEARCH(b, "UNANSWERED", 0, 2, 3, 4);
    EXPECT_SEARCH(b, "DELETED", 2);
    EXPECT_SEARCH(b, "UNDELETED", 0, 1, 3, 4);
    EXPECT_SEARCH(b, "DRAFT", 3);
    EXPECT_SEARCH(b, "UNDRAFT", 0, 1, 2, 4);
    EXPECT_SEARCH(b, "FLAGGED", 2);
    EXPECT_SEARCH(b, "UNFLAGGED", 0, 1, 3, 4);
    EXPECT_SEARCH(b, "RECENT", 1, 2);
    EXPECT_SEARCH(b, "OLD", 0, 3, 4);
    EXPECT_SEARCH(b, "NEW", 2);
    EXPECT_SEARCH(b, "KEYWORD $junk", 1);
    EXPECT_SEARCH(b, "UNKEYWORD $Junk", 0, 2, 3, 4);
    EXPECT_SEARCH(b, "KEYWORD $Other");
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, b.loads);
  }
  void size_and_internal_date_keys() {
    mailbox b;  // sizes 500 550 750 1000 1050
    EXPECT_SEARCH(b, "LARGER 750", 3, 4);
    EXPECT_SEARCH(b, "SMALLER 750", 0, 1);
    EXPECT_SEARCH(b, "LARGER 0", 0, 1, 2, 3, 4);
    EXPECT_SEARCH(b, "BEFORE 11-Jan-2024", 0, 3);
    EXPECT_SEARCH(b, "ON 11-Jan-2024", 1);
    EXPECT_SEARCH(b, "ON 12-jan-2024", 2);
    EXPECT_SEARCH(b, "SINCE 12-Jan-2024", 2, 4);
    EXPECT_SEARCH(b, "SINCE \"1-Feb-2024\"", 4);
    EXPECT_SEARCH(b, "BEFORE 1-Jan-1970");
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, b.loads);
  }
  void sent_date_keys_use_the_header_in_its_own_zone() {
    mailbox b;
    // Message 0 was sent on 10 Jan at -0800, which is 11 Jan in UTC: its own zone counts.
    EXPECT_SEARCH(b, "SENTON 10-Jan-2024", 0);
    EXPECT_SEARCH(b, "SENTON 11-Jan-2024");
    EXPECT_SEARCH(b, "SENTBEFORE 11-Jan-2024", 0, 3);
    EXPECT_SEARCH(b, "SENTSINCE 10-Jan-2024", 0, 2);
    // No Date: (1) and an unparsable one (4) never match.
    EXPECT_SEARCH(b, "NOT SENTSINCE 1-Jan-1900", 1, 4);
    // Without the structure the Date: line of the search text serves.
    b.drop_structures();
    EXPECT_SEARCH(b, "SENTON 10-Jan-2024", 0);
    EXPECT_SEARCH(b, "SENTBEFORE 11-Jan-2024", 0, 3);
  }
  void older_and_younger() {
    mailbox b;  // now: 2024-02-01 01:00
    EXPECT_SEARCH(b, "YOUNGER 3600", 4);
    EXPECT_SEARCH(b, "YOUNGER 3599");
    EXPECT_SEARCH(b, "OLDER 3600", 0, 1, 2, 3);
    EXPECT_SEARCH(b, "OLDER 3599", 0, 1, 2, 3, 4);
  }
  void string_keys_on_decoded_text() {
    mailbox b;
    EXPECT_SEARCH(b, "FROM alice", 0);
    EXPECT_SEARCH(b, "FROM \"ALICE@EXAMPLE\"", 0);
    EXPECT_SEARCH(b, "FROM \"JÜRGEN\"", 1);
    EXPECT_SEARCH(b, "SUBJECT \"köln\"", 1);
    EXPECT_SEARCH(b, "SUBJECT \"GRÜSSE\"");  // simple folding: ß is not ss
    EXPECT_SEARCH(b, "SUBJECT hello", 0, 2);
    EXPECT_SEARCH(b, "SUBJECT \"привет\"", 3);
    EXPECT_SEARCH(b, "TO bob", 0);
    EXPECT_SEARCH(b, "CC CAROL", 1);
    EXPECT_SEARCH(b, "BCC dave", 3);
    EXPECT_SEARCH(b, "HEADER X-Spam yes", 2);
    EXPECT_SEARCH(b, "HEADER x-spam \"\"", 2);
    EXPECT_SEARCH(b, "HEADER Message-ID \"\"", 0);
    EXPECT_SEARCH(b, "HEADER X-Spam no");
    EXPECT_SEARCH(b, "BODY fox", 0);
    EXPECT_SEARCH(b, "BODY \"STRASSE\"");
    EXPECT_SEARCH(b, "BODY \"straße und\"", 1);
    EXPECT_SEARCH(b, "BODY \"attachment text\"", 4);
    EXPECT_SEARCH(b, "BODY binaryneedle");
    EXPECT_SEARCH(b, "BODY alice");
    EXPECT_SEARCH(b, "TEXT alice", 0);
    EXPECT_SEARCH(b, "TEXT dog", 3);
    EXPECT_SEARCH(b, "BODY \"\"", 0, 1, 2, 3, 4);
    EXPECT_SEARCH(b, "SUBJECT {5+}\r\nWORLD", 0, 2);
  }
  void sequence_and_uid_sets() {
    mailbox b;  // UIDs 10 11 15 20 21
    EXPECT_SEARCH(b, "2:4", 1, 2, 3);
    EXPECT_SEARCH(b, "4:2", 1, 2, 3);
    EXPECT_SEARCH(b, "*", 4);
    EXPECT_SEARCH(b, "1,3,9", 0, 2);
    EXPECT_SEARCH(b, "4:*", 3, 4);
    EXPECT_SEARCH(b, "UID 11:15", 1, 2);
    EXPECT_SEARCH(b, "UID 16:*", 3, 4);
    EXPECT_SEARCH(b, "UID *", 4);
    EXPECT_SEARCH(b, "UID 100:*", 4);  // '*' is the highest UID: 21:100
    EXPECT_SEARCH(b, "UID 1:9");
    EXPECT_SEARCH(b, "UID 12,20", 3);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, b.loads);
  }
  void saved_result_dollar() {
    mailbox b;
    CPPUNIT_ASSERT_EQUAL(show({1, 4}), show(b.search("$", {21, 11})));
    CPPUNIT_ASSERT_EQUAL(show({4}), show(b.search("UID $ UNSEEN", {11, 21})));
    CPPUNIT_ASSERT_EQUAL(show({}), show(b.search("$", {})));
    CPPUNIT_ASSERT(parsed("UID $").uses_saved);
    CPPUNIT_ASSERT(parsed("OR SEEN $").uses_saved);
    CPPUNIT_ASSERT(!parsed("SEEN").uses_saved);
  }
  void boolean_combinations() {
    mailbox b;
    EXPECT_SEARCH(b, "OR SEEN FLAGGED", 0, 1, 2);
    EXPECT_SEARCH(b, "NOT SEEN", 2, 3, 4);
    EXPECT_SEARCH(b, "SEEN UNANSWERED", 0);
    EXPECT_SEARCH(b, "(SEEN LARGER 500)", 1);
    EXPECT_SEARCH(b, "OR (SEEN SMALLER 510) DRAFT", 0, 3);
    EXPECT_SEARCH(b, "NOT (OR SEEN DELETED)", 3, 4);
    EXPECT_SEARCH(b, "NOT NOT SEEN", 0, 1);
    EXPECT_SEARCH(b, "OR OR DRAFT DELETED ANSWERED", 1, 2, 3);
    EXPECT_SEARCH(b, "((UNSEEN) (OR FROM bob TEXT dog))", 2, 3);
    EXPECT_SEARCH(b, "UID 10:20 NOT 2 SUBJECT world", 0, 2);
  }
  void modseq_key() {
    mailbox b;  // modseqs 5..9
    EXPECT_SEARCH(b, "MODSEQ 8", 3, 4);
    EXPECT_SEARCH(b, "MODSEQ \"/flags/\\\\Seen\" all 7", 2, 3, 4);
    EXPECT_SEARCH(b, "MODSEQ 0", 0, 1, 2, 3, 4);
    CPPUNIT_ASSERT(parsed("NOT MODSEQ 3").uses_modseq);
    CPPUNIT_ASSERT(!parsed("SEEN").uses_modseq);
    CPPUNIT_ASSERT(refused("MODSEQ \"/flags/x\" bogus 7").bad);
    CPPUNIT_ASSERT(refused("MODSEQ 9223372036854775808").bad);
  }
  void content_loaded_only_when_needed() {
    mailbox b;
    b.search("SEEN FROM alice");  // only the two seen messages are loaded
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, b.loads);
    b.loads = 0;
    b.search("FROM alice SEEN");  // cheap keys go first whatever the order
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, b.loads);
    b.loads = 0;
    b.search("OR SEEN BODY fox");  // OR stops at SEEN
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, b.loads);
    b.loads = 0;
    b.search("TEXT x SUBJECT y FROM z SENTON 1-Jan-2024");  // at most one load per message
    CPPUNIT_ASSERT_EQUAL(std::size_t{5}, b.loads);
    const auto q = parsed("BODY x");
    CPPUNIT_ASSERT(q.needs_body && !q.needs_header && q.needs_content());
    const auto h = parsed("SENTON 1-Jan-2024");
    CPPUNIT_ASSERT(h.needs_header && !h.needs_body);
    CPPUNIT_ASSERT(!parsed("OR SEEN 1:3 UID 5 LARGER 9 ON 1-Jan-2020").needs_content());
    // An unreadable message matches no content key.
    search_context c{.messages = b.infos,
                     .load = [](std::size_t) -> const message_content* { return nullptr; }};
    CPPUNIT_ASSERT_EQUAL(show({}), show(evaluate(parsed("BODY \"\""), c)));
    CPPUNIT_ASSERT_EQUAL(show({0, 1, 2, 3, 4}), show(evaluate(parsed("NOT FROM a"), c)));
  }
  void empty_mailbox() {
    search_context c;
    CPPUNIT_ASSERT(evaluate(parsed("UID 1:*"), c).empty());
    CPPUNIT_ASSERT(evaluate(parsed("*"), c).empty());
    CPPUNIT_ASSERT(evaluate(parsed("ALL"), c).empty());
  }
  void return_options_and_charset() {
    auto q = parsed("RETURN (MIN MAX) CHARSET UTF-8 SEEN");
    CPPUNIT_ASSERT(q.ret.extended && q.ret.min && q.ret.max && !q.ret.all && !q.ret.count);
    q = parsed("RETURN () ALL");
    CPPUNIT_ASSERT(q.ret.extended && q.ret.all && !q.ret.min);
    q = parsed("return (count save all) charset us-ascii ALL");
    CPPUNIT_ASSERT(q.ret.count && q.ret.save && q.ret.all);
    q = parsed("SEEN");
    CPPUNIT_ASSERT(!q.ret.extended);
    const auto e = refused("CHARSET ISO-8859-1 SEEN");
    CPPUNIT_ASSERT(!e.bad);
    CPPUNIT_ASSERT_EQUAL(std::string("BADCHARSET (US-ASCII UTF-8)"), e.code);
    CPPUNIT_ASSERT(refused("CHARSET UTF-8 SEEN", parse_options{.utf8_accept = true}).bad);
    CPPUNIT_ASSERT(refused("RETURN (MIN) SEEN", parse_options{.allow_return = false}).bad);
    CPPUNIT_ASSERT(refused("RETURN (FOO) SEEN", parse_options{.allow_return = true}).bad);
    CPPUNIT_ASSERT(refused("RETURN MIN SEEN", parse_options{.allow_return = true}).bad);
    CPPUNIT_ASSERT(refused("CHARSET", parse_options{}).bad);
  }
  void bad_input() {
    for (const char* keys : {"FOO",
                             "SEEN FOO",
                             "()",
                             "NOT",
                             "OR SEEN",
                             "LARGER",
                             "LARGER abc",
                             "BEFORE 32-Jan-2024",
                             "BEFORE",
                             "ON 2024-01-01",
                             "FROM",
                             "HEADER X-Spam",
                             "KEYWORD",
                             "KEYWORD \"\"",
                             "UID",
                             "UID abc",
                             "UID (1)",
                             "1:0",
                             "0",
                             "$:3",
                             "OLDER 0",
                             "YOUNGER",
                             "MODSEQ",
                             "MODSEQ abc",
                             "BODY (x)",
                             "\"SEEN\"",
                             "CHARSET UTF-8",
                             "BODY[] x"}) {
      const auto e = refused(keys);
      CPPUNIT_ASSERT_MESSAGE(keys, e.bad);
      CPPUNIT_ASSERT_MESSAGE(keys, e.code.empty());
    }
    CPPUNIT_ASSERT(std::holds_alternative<search_error>(parse_search({}, parse_options{})));
  }
  void limits() {
    std::string deep;
    for (int i = 0; i < 10; ++i) deep += "NOT ";
    deep += "SEEN";
    CPPUNIT_ASSERT(refused(deep, parse_options{.max_depth = 5}).bad);
    parse_search(args_of(deep), parse_options{.max_depth = 11});
    CPPUNIT_ASSERT(std::holds_alternative<search_query>(
        parse_search(args_of(deep), parse_options{.max_depth = 11})));
    CPPUNIT_ASSERT(refused("((((SEEN))))", parse_options{.max_depth = 4}).bad);
    CPPUNIT_ASSERT(refused("SEEN SEEN SEEN SEEN", parse_options{.max_keys = 3}).bad);
    CPPUNIT_ASSERT(refused("1,2,3,4", parse_options{.max_ranges = 3}).bad);
    CPPUNIT_ASSERT(refused("UID 1,2,3,4", parse_options{.max_ranges = 3}).bad);
    CPPUNIT_ASSERT(std::holds_alternative<search_query>(
        parse_search(args_of("1,2,3"), parse_options{.max_ranges = 3})));
  }
  void responses() {
    const return_options all{
        .extended = true, .min = true, .max = true, .all = true, .count = true};
    const std::vector<std::uint32_t> n = {3, 4, 5, 9};
    CPPUNIT_ASSERT_EQUAL(std::string("* ESEARCH (TAG \"a1\") UID MIN 3 MAX 9 COUNT 4 ALL 3:5,9"),
                         esearch_response("a1", true, all, n));
    CPPUNIT_ASSERT_EQUAL(std::string("* ESEARCH (TAG \"a1\") COUNT 0"),
                         esearch_response("a1", false, all, {}, 7));
    CPPUNIT_ASSERT_EQUAL(std::string("* ESEARCH (TAG \"t\") MIN 3 MODSEQ 12"),
                         esearch_response("t", false, return_options{.min = true}, n, 12));
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH 2 5 (MODSEQ 7)"),
                         search_response(std::vector<std::uint32_t>{2, 5}, 7));
    CPPUNIT_ASSERT_EQUAL(std::string("* SEARCH"), search_response({}, 7));
    CPPUNIT_ASSERT_EQUAL(std::string("* SORT 5 2"),
                         search_response(std::vector<std::uint32_t>{5, 2}, 0, "SORT"));
    CPPUNIT_ASSERT_EQUAL(std::string("* ESEARCH UID MIN 9 MAX 4 ALL 9,3:4"),
                         esearch_response("", true, {.min = true, .max = true, .all = true},
                                          std::vector<std::uint32_t>{9, 3, 4}));
    CPPUNIT_ASSERT_EQUAL(std::string("1:3,5,7:8,10"),
                         sequence_set_string(std::vector<std::uint32_t>{1, 2, 3, 5, 7, 8, 10}));
    CPPUNIT_ASSERT_EQUAL(std::string(""), sequence_set_string({}));
    mailbox b;
    const auto idx = b.search("UNSEEN");
    CPPUNIT_ASSERT_EQUAL(show({3, 4, 5}), show(to_numbers(idx, b.infos, false)));
    CPPUNIT_ASSERT_EQUAL(show({15, 20, 21}), show(to_numbers(idx, b.infos, true)));
    CPPUNIT_ASSERT_EQUAL(store::mod_seq{9}, highest_modseq(idx, b.infos));
    CPPUNIT_ASSERT_EQUAL(store::mod_seq{0}, highest_modseq({}, b.infos));
  }
  void save_keeps_min_max_or_all() {
    mailbox b;
    const auto idx = b.search("UNSEEN");  // UIDs 15 20 21
    CPPUNIT_ASSERT_EQUAL(show({15, 21}),
                         show(saved_uids({.min = true, .max = true, .save = true}, idx, b.infos)));
    CPPUNIT_ASSERT_EQUAL(show({21}), show(saved_uids({.max = true, .save = true}, idx, b.infos)));
    CPPUNIT_ASSERT_EQUAL(
        show({15, 20, 21}),
        show(saved_uids({.min = true, .count = true, .save = true}, idx, b.infos)));
    CPPUNIT_ASSERT_EQUAL(show({15, 20, 21}), show(saved_uids({.save = true}, idx, b.infos)));
    const std::vector<std::uint32_t> one = {2};
    CPPUNIT_ASSERT_EQUAL(show({15}), show(saved_uids({.min = true, .max = true}, one, b.infos)));
  }
  void header_dates() {
    auto d = parse_header_date("Wed, 10 Jan 2024 23:30:00 -0800");
    CPPUNIT_ASSERT(d && d->year == 2024 && d->month == 1 && d->day == 10);
    CPPUNIT_ASSERT_EQUAL(std::int64_t{1704958200}, d->unix_seconds);  // 2024-01-11T07:30Z
    d = parse_header_date("1 feb 99 00:00 GMT");
    CPPUNIT_ASSERT(d && d->year == 1999 && d->month == 2 && d->day == 1);
    d = parse_header_date("Mon, 3 Mar 08 01:02:03 EST (comment)");
    CPPUNIT_ASSERT(d && d->year == 2008 && d->unix_seconds == 1204524123);
    CPPUNIT_ASSERT(parse_header_date("12 Jan 2024"));
    for (const char* bad : {"", "garbage", "30 Feb 2024 10:00", "12 Foo 2024 10:00",
                            "12 Jan 2024 25:00", "Jan 12 2024", "12 Jan 2024 1000"})
      CPPUNIT_ASSERT_MESSAGE(bad, !parse_header_date(bad));
  }
  void case_folding() {
    CPPUNIT_ASSERT_EQUAL(std::string("hello wörld ärger ßx çé"),
                         fold_case("HeLLo WÖRLD ÄRGER ßX ÇÉ"));
    CPPUNIT_ASSERT_EQUAL(std::string("привет ёж σσ łódź"), fold_case("ПРИВЕТ ЁЖ ΣΣ ŁÓDŹ"));
    CPPUNIT_ASSERT_EQUAL(std::string("\xff\xc3x"), fold_case("\xff\xc3X"));  // invalid kept
  }
  void hundred_thousand_messages_flag_only_is_linear_and_loads_nothing() {
    auto build = [](std::size_t n) {
      std::vector<store::message_info> m(n);
      for (std::size_t i = 0; i < n; ++i) {
        m[i].uid = static_cast<store::imap_uid>(i + 1);
        m[i].size = i % 1000;
        if (i % 2) m[i].flags.set(store::system_flag::seen);
        if (i % 7 == 0) m[i].flags.set(store::system_flag::flagged);
      }
      return m;
    };
    const auto q = parsed("UNSEEN NOT DELETED OR FLAGGED LARGER 100 UID 1:*");
    std::size_t loads = 0;
    auto time = [&](const std::vector<store::message_info>& m, std::size_t& matched) {
      search_context c{.messages = m, .load = [&](std::size_t) -> const message_content* {
                         ++loads;
                         return nullptr;
                       }};
      const auto start = std::chrono::steady_clock::now();
      matched = evaluate(q, c).size();
      return std::chrono::steady_clock::now() - start;
    };
    const auto small = build(100000), large = build(400000);
    std::size_t m1 = 0, m2 = 0;
    time(small, m1);  // warm up
    const auto t1 = time(small, m1);
    const auto t2 = time(large, m2);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, loads);
    CPPUNIT_ASSERT(m1 > 40000 && m1 < 50000);
    CPPUNIT_ASSERT(m2 > 4 * m1 - 1000 && m2 < 4 * m1 + 1000);
    // Four times the messages: well under sixteen times the time (quadratic would be).
    CPPUNIT_ASSERT_MESSAGE(std::to_string(t1.count()) + " vs " + std::to_string(t2.count()),
                           t2 < 10 * t1 + 20ms);
    CPPUNIT_ASSERT(t1 < 2s);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(search_test);

}  // namespace
}  // namespace hamail::backend::imap_search

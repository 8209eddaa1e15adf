// IMAP SORT and THREAD: argument parsing, RFC 5256 base subjects, sort orders
// and hand-built thread trees (missing parents, loops, subject merging).

#include "imap/sort_thread.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <string>
#include <vector>

namespace hamail::backend::imap_search {
namespace {

std::vector<imap::value> args_of(std::string_view text) {
  imap::command_parser p;
  p.set_utf8_accept(true);
  const std::string line = "a SORT " + std::string(text) + "\r\n";
  const auto step = p.feed(line);
  CPPUNIT_ASSERT_MESSAGE(std::string(text), step.status == imap::parse_status::complete);
  return step.cmd->args;
}

std::string show(const std::vector<std::uint32_t>& x) {
  std::string out;
  for (auto n : x) out += (out.empty() ? "" : " ") + std::to_string(n);
  return out;
}

std::string base(std::string_view s, bool expect_reply) {
  bool reply = !expect_reply;
  std::string out = base_subject(s, &reply);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(s), expect_reply, reply);
  return out;
}

// Messages whose internal dates follow their sequence numbers (an hour apart)
// unless a test changes them; UIDs are 100 + sequence number.
std::vector<store::message_info> infos(std::size_t n) {
  std::vector<store::message_info> m(n);
  for (std::size_t i = 0; i < n; ++i) {
    m[i].uid = static_cast<store::imap_uid>(101 + i);
    m[i].date = store::internal_date(std::chrono::seconds(1700000000 + 3600 * i));
    m[i].size = 1000 - i;
  }
  return m;
}

std::vector<std::uint32_t> all(std::size_t n) {
  std::vector<std::uint32_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint32_t>(i);
  return v;
}

mime::address addr(std::string mailbox, std::string host, std::optional<std::string> name = {}) {
  return mime::address{
      .name = std::move(name), .mailbox = std::move(mailbox), .host = std::move(host)};
}

std::string thread(thread_algorithm a, const std::vector<thread_fields>& f, bool uid = false) {
  const auto m = infos(f.size());
  return thread_messages(
      a, all(f.size()), m, [&](std::size_t i) { return f[i]; }, uid);
}

class sort_thread_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(sort_thread_test);
  CPPUNIT_TEST(base_subject_rfc5256);
  CPPUNIT_TEST(parses_sort);
  CPPUNIT_TEST(parses_thread);
  CPPUNIT_TEST(sorts_by_each_key);
  CPPUNIT_TEST(sort_without_envelopes);
  CPPUNIT_TEST(thread_fields_from_a_message);
  CPPUNIT_TEST(orderedsubject);
  CPPUNIT_TEST(references_basic_tree);
  CPPUNIT_TEST(references_missing_parents);
  CPPUNIT_TEST(references_loop_is_broken);
  CPPUNIT_TEST(references_subject_merging);
  CPPUNIT_TEST(references_duplicate_and_missing_ids);
  CPPUNIT_TEST(references_sorted_by_sent_date_and_uids);
  CPPUNIT_TEST(long_reply_chain_does_not_recurse);
  CPPUNIT_TEST_SUITE_END();

 public:
  void base_subject_rfc5256() {
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("test", false));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("Re: test", true));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("RE: Re: re:test", true));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("Fwd: [list] Re: test (fwd)", true));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("[fwd: Re: test]", true));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("[list] test", false));
    CPPUNIT_ASSERT_EQUAL(std::string("[list]"), base("[list]", false));
    CPPUNIT_ASSERT_EQUAL(std::string(""), base("Re:", true));
    CPPUNIT_ASSERT_EQUAL(std::string("hello world"), base("  Re :  hello \t  world  ", true));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("Re[2]: test", true));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("Fw: FWD: test", true));
    CPPUNIT_ASSERT_EQUAL(std::string("Subject"), base("Subject (fwd) (FWD)", true));
    CPPUNIT_ASSERT_EQUAL(std::string("café"), base("=?UTF-8?Q?Re:_caf=C3=A9?=", true));
    CPPUNIT_ASSERT_EQUAL(std::string("Response"), base("Response", false));
    CPPUNIT_ASSERT_EQUAL(std::string("[b]"), base("[a] [b]", false));  // only a last blob stays
    CPPUNIT_ASSERT_EQUAL(std::string("x"), base("[a] [b] Re: x", true));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), base("[fwd: [fwd: test]]", true));
  }
  void parses_sort() {
    auto p = parse_sort(args_of("(REVERSE DATE subject DISPLAYFROM) UTF-8 SEEN"), parse_options{});
    auto* q = std::get_if<sort_query>(&p);
    CPPUNIT_ASSERT(q);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, q->criteria.size());
    CPPUNIT_ASSERT(q->criteria[0].key == sort_key::date && q->criteria[0].reverse);
    CPPUNIT_ASSERT(q->criteria[1].key == sort_key::subject && !q->criteria[1].reverse);
    CPPUNIT_ASSERT(q->criteria[2].key == sort_key::display_from);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, q->search.root.children.size());
    CPPUNIT_ASSERT(!q->search.ret.extended);
    p = parse_sort(args_of("RETURN (MIN COUNT) (SIZE) us-ascii FROM x"),
                   parse_options{.allow_return = true});
    q = std::get_if<sort_query>(&p);
    CPPUNIT_ASSERT(q && q->search.ret.extended && q->search.ret.min && q->search.ret.count);
    CPPUNIT_ASSERT(q->search.needs_header);
    const auto cs = std::get<search_error>(parse_sort(args_of("(DATE) KOI8-R ALL"), {}));
    CPPUNIT_ASSERT(!cs.bad);
    CPPUNIT_ASSERT_EQUAL(std::string("BADCHARSET (US-ASCII UTF-8)"), cs.code);
    for (const char* bad :
         {"(FOO) UTF-8 ALL", "() UTF-8 ALL", "DATE UTF-8 ALL", "(DATE)", "(DATE) UTF-8",
          "(REVERSE) UTF-8 ALL", "(REVERSE REVERSE DATE) UTF-8 ALL",
          "(DATE) UTF-8 CHARSET UTF-8 ALL", "(DATE) UTF-8 FOO", "RETURN (MIN) (DATE) UTF-8 ALL"}) {
      auto e = parse_sort(args_of(bad), parse_options{});
      CPPUNIT_ASSERT_MESSAGE(bad, std::holds_alternative<search_error>(e));
      CPPUNIT_ASSERT_MESSAGE(bad, std::get<search_error>(e).bad);
    }
  }
  void parses_thread() {
    auto p = parse_thread(args_of("REFERENCES UTF-8 ALL"), {});
    CPPUNIT_ASSERT(std::get<thread_query>(p).algorithm == thread_algorithm::references);
    p = parse_thread(args_of("orderedsubject us-ascii SEEN FROM x"), {});
    CPPUNIT_ASSERT(std::get<thread_query>(p).algorithm == thread_algorithm::orderedsubject);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, std::get<thread_query>(p).search.root.children.size());
    CPPUNIT_ASSERT(!std::get<search_error>(parse_thread(args_of("REFERENCES BIG5 ALL"), {})).bad);
    CPPUNIT_ASSERT(std::holds_alternative<thread_query>(
        parse_thread(args_of("REFERENCES utf-8 ALL"), parse_options{.utf8_accept = true})));
    CPPUNIT_ASSERT(std::get<search_error>(parse_thread(args_of("REFERENCES US-ASCII ALL"),
                                                       parse_options{.utf8_accept = true}))
                       .bad);
    CPPUNIT_ASSERT(std::get<search_error>(
                       parse_sort(args_of("(DATE) KOI8-R ALL"), parse_options{.utf8_accept = true}))
                       .bad);
    for (const char* bad :
         {"FOO UTF-8 ALL", "REFERENCES", "REFERENCES UTF-8", "(REFERENCES) UTF-8 ALL"})
      CPPUNIT_ASSERT_MESSAGE(bad, std::get<search_error>(parse_thread(args_of(bad), {})).bad);
  }
  void sorts_by_each_key() {
    auto m = infos(5);
    // Internal dates: 2 is the oldest, then 0, 4, 1, 3.
    m[2].date = store::internal_date(std::chrono::seconds(1600000000));
    m[4].date = m[0].date + std::chrono::seconds(1);
    m[1].date = m[4].date + std::chrono::seconds(1);
    std::vector<mime::envelope> env(5);
    env[0].subject = "Re: banana";
    env[1].subject = "apple";
    env[2].subject = "=?UTF-8?Q?Cherry?=";
    env[3].subject = "[list] APPLE";
    env[4].subject = "Fwd: banana";
    env[0].from = {addr("Zed", "example.org", "Aaron")};
    env[1].from = {addr("bob", "example.org", "=?UTF-8?Q?Zo=C3=AB?=")};
    env[2].from = {addr("alice", "example.org")};
    env[3].from = {};
    env[4].from = {addr("Carl", "example.org", "")};
    env[0].to = env[1].to = {addr("x", "h")};
    env[2].to = {addr("a", "h"), addr("z", "h")};
    env[1].cc = {addr("M", "h")};
    env[3].cc = {addr("b", "h")};
    env[0].date = "Mon, 1 Jan 2024 10:00:00 +0000";
    env[1].date = "Mon, 1 Jan 2024 10:00:00 +0100";  // earlier than 0 in UTC
    env[2].date = "nonsense";                        // internal date: oldest of all
    env[3].date = "Tue, 2 Jan 2024 00:00:00 +0000";
    int calls = 0;
    auto sorted = [&](std::vector<sort_criterion> c) {
      calls = 0;
      return show(sort_messages(all(5), c, m, [&](std::size_t i) {
        ++calls;
        return &env[i];
      }));
    };
    CPPUNIT_ASSERT_EQUAL(std::string("2 0 4 1 3"), sorted({{sort_key::arrival}}));
    CPPUNIT_ASSERT_EQUAL(0, calls);  // ARRIVAL needs no envelope
    CPPUNIT_ASSERT_EQUAL(std::string("3 1 4 0 2"), sorted({{sort_key::arrival, true}}));
    CPPUNIT_ASSERT_EQUAL(std::string("4 3 2 1 0"), sorted({{sort_key::size}}));
    // 2 (unparsable) and 4 (no Date:) fall back to their internal dates, 2020 and 2023.
    CPPUNIT_ASSERT_EQUAL(std::string("2 4 1 0 3"), sorted({{sort_key::date}}));
    CPPUNIT_ASSERT_EQUAL(5, calls);
    // apple(1,3) banana(0,4) cherry(2); ties by sequence number.
    CPPUNIT_ASSERT_EQUAL(std::string("1 3 0 4 2"), sorted({{sort_key::subject}}));
    CPPUNIT_ASSERT_EQUAL(std::string("2 4 0 3 1"),
                         sorted({{sort_key::subject, true}, {sort_key::arrival, true}}));
    // FROM: "" (3), alice, bob, carl, zed: local parts, case-insensitive.
    CPPUNIT_ASSERT_EQUAL(std::string("3 2 1 4 0"), sorted({{sort_key::from}}));
    CPPUNIT_ASSERT_EQUAL(std::string("3 4 2 0 1"), sorted({{sort_key::to}}));
    CPPUNIT_ASSERT_EQUAL(std::string("0 2 4 3 1"), sorted({{sort_key::cc}}));
    // DISPLAYFROM: "" (3), aaron, alice@example.org, carl@example.org (empty name), zoë.
    CPPUNIT_ASSERT_EQUAL(std::string("3 0 2 4 1"), sorted({{sort_key::display_from}}));
    CPPUNIT_ASSERT_EQUAL(std::string("3 4 2 0 1"), sorted({{sort_key::display_to}}));
    // A subset in any order comes back sorted.
    const std::vector<std::uint32_t> some = {3, 1, 0};
    CPPUNIT_ASSERT_EQUAL(std::string("0 1 3"),
                         show(sort_messages(some, std::vector<sort_criterion>{{sort_key::arrival}},
                                            m, [&](std::size_t i) { return &env[i]; })));
  }
  void sort_without_envelopes() {
    const auto m = infos(3);
    const std::vector<sort_criterion> c = {{sort_key::subject}, {sort_key::date, true}};
    CPPUNIT_ASSERT_EQUAL(std::string("2 1 0"),
                         show(sort_messages(all(3), c, m, [](std::size_t) -> const mime::envelope* {
                           return nullptr;
                         })));
    CPPUNIT_ASSERT_EQUAL(std::string("2 1 0"), show(sort_messages(all(3), c, m, {})));
  }
  void thread_fields_from_a_message() {
    const std::string raw =
        "Subject: Re: x\r\nMessage-ID: <c@h>\r\nIn-Reply-To: <b@h>\r\nreferences : <a@h>\r\n"
        "\t<b@h>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nX-References: <no@h>\r\n\r\nbody\r\n";
    const auto st = mime::parse(raw);
    const auto f = thread_fields_of(raw, st);
    CPPUNIT_ASSERT_EQUAL(std::string("Re: x"), f.subject);
    CPPUNIT_ASSERT_EQUAL(std::string("<c@h>"), f.message_id);
    CPPUNIT_ASSERT_EQUAL(std::string("<b@h>"), f.in_reply_to);
    CPPUNIT_ASSERT_EQUAL(std::string(" <a@h> \t<b@h>"), f.references);
    CPPUNIT_ASSERT_EQUAL(std::string("Mon, 1 Jan 2024 10:00:00 +0000"), f.date);
  }
  void orderedsubject() {
    std::vector<thread_fields> f(6);
    f[0].subject = "A";
    f[1].subject = "Re: A";
    f[2].subject = "B";
    f[3].subject = "re: a";
    f[4].subject = "C";
    f[5].subject = "[x] b";
    f[0].date = "1 Jan 2024 03:00 +0000";
    f[1].date = "1 Jan 2024 04:00 +0000";
    f[2].date = "1 Jan 2024 01:00 +0000";
    f[3].date = "1 Jan 2024 05:00 +0000";
    f[4].date = "1 Jan 2024 02:00 +0000";
    f[5].date = "1 Jan 2024 00:30 +0000";  // earlier than 3, so it starts B's thread
    CPPUNIT_ASSERT_EQUAL(std::string("(6 3)(5)(1 (2)(4))"),
                         thread(thread_algorithm::orderedsubject, f));
    CPPUNIT_ASSERT_EQUAL(std::string("(106 103)(105)(101 (102)(104))"),
                         thread(thread_algorithm::orderedsubject, f, true));
    CPPUNIT_ASSERT_EQUAL(std::string(""), thread(thread_algorithm::orderedsubject, {}));
  }
  void references_basic_tree() {
    std::vector<thread_fields> f(4);
    f[0] = {.subject = "Topic", .message_id = "<1@x>"};
    f[1] = {.subject = "Re: Topic", .message_id = "<2@x>", .references = "<1@x>"};
    f[2] = {.subject = "Re: Topic", .message_id = "<3@x>", .references = "<1@x> <2@x>"};
    f[3] = {.subject = "Other", .message_id = "<4@x>", .in_reply_to = "<1@x>"};
    CPPUNIT_ASSERT_EQUAL(std::string("(1 (2 3)(4))"), thread(thread_algorithm::references, f));
  }
  void references_missing_parents() {
    std::vector<thread_fields> f(4);
    // Two replies to a message not in the mailbox: a dummy root keeps them together.
    f[0] = {.subject = "Orphan", .message_id = "<5@x>", .in_reply_to = "<gone@x>"};
    f[1] = {.subject = "Something else", .message_id = "<6@x>", .references = "<gone@x>"};
    // One reply to a missing message: the dummy goes, the reply is a root.
    f[2] = {.subject = "Lonely", .message_id = "<7@x>", .references = "<gone2@x>"};
    // A missing message in the middle of a chain: its child moves up.
    f[3] = {.subject = "Deep", .message_id = "<8@x>", .references = "<7@x> <missing@x>"};
    CPPUNIT_ASSERT_EQUAL(std::string("((1)(2))(3 4)"), thread(thread_algorithm::references, f));
  }
  void references_loop_is_broken() {
    std::vector<thread_fields> f(3);
    f[0] = {.subject = "one", .message_id = "<8@x>", .references = "<9@x>"};
    f[1] = {.subject = "two", .message_id = "<9@x>", .references = "<8@x>"};
    f[2] = {.subject = "three", .message_id = "<10@x>", .references = "<10@x>"};  // itself
    CPPUNIT_ASSERT_EQUAL(std::string("(2 1)(3)"), thread(thread_algorithm::references, f));
    // A longer loop through the References chains.
    std::vector<thread_fields> g(3);
    g[0] = {.subject = "a", .message_id = "<a@x>", .references = "<c@x> <b@x>"};
    g[1] = {.subject = "b", .message_id = "<b@x>", .references = "<a@x> <c@x>"};
    g[2] = {.subject = "c", .message_id = "<c@x>", .references = "<b@x> <a@x>"};
    const std::string out = thread(thread_algorithm::references, g);
    CPPUNIT_ASSERT(out.find('1') != std::string::npos && out.find('2') != std::string::npos &&
                   out.find('3') != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("(3 2 1)"), out);
  }
  void references_subject_merging() {
    std::vector<thread_fields> f(5);
    f[0] = {.subject = "Meeting", .message_id = "<m1@x>"};
    f[1] = {.subject = "Re: Meeting", .message_id = "<m2@x>"};  // no references
    f[2] = {.subject = "Lunch", .message_id = "<l1@x>"};
    f[3] = {.subject = "lunch", .message_id = "<l2@x>"};
    f[4] = {.subject = "", .message_id = "<e@x>"};  // empty subjects are not merged
    CPPUNIT_ASSERT_EQUAL(std::string("(1 2)((3)(4))(5)"), thread(thread_algorithm::references, f));
    // A reply that comes first still goes under the original.
    std::vector<thread_fields> g(2);
    g[0] = {.subject = "Re: Plan", .message_id = "<p2@x>"};
    g[1] = {.subject = "Plan", .message_id = "<p1@x>"};
    CPPUNIT_ASSERT_EQUAL(std::string("(2 1)"), thread(thread_algorithm::references, g));
  }
  void references_duplicate_and_missing_ids() {
    std::vector<thread_fields> f(4);
    f[0] = {.subject = "first", .message_id = "<dup@x>"};
    f[1] = {.subject = "second", .message_id = "<dup@x>"};
    f[2] = {.subject = "third"};
    f[3] = {.subject = "Re: first", .message_id = "<r@x>", .references = "<dup@x>"};
    CPPUNIT_ASSERT_EQUAL(std::string("(1 4)(2)(3)"), thread(thread_algorithm::references, f));
  }
  void references_sorted_by_sent_date_and_uids() {
    std::vector<thread_fields> f(4);
    f[0] = {.subject = "root", .date = "1 Jan 2024 12:00 +0000", .message_id = "<r@x>"};
    f[1] = {.subject = "Re: root",
            .date = "1 Jan 2024 15:00 +0000",
            .message_id = "<a@x>",
            .references = "<r@x>"};
    f[2] = {.subject = "Re: root",
            .date = "1 Jan 2024 13:00 +0000",
            .message_id = "<b@x>",
            .references = "<r@x>"};
    f[3] = {.subject = "early", .date = "1 Jan 2024 11:00 +0000", .message_id = "<e@x>"};
    CPPUNIT_ASSERT_EQUAL(std::string("(4)(1 (3)(2))"), thread(thread_algorithm::references, f));
    CPPUNIT_ASSERT_EQUAL(std::string("(104)(101 (103)(102))"),
                         thread(thread_algorithm::references, f, true));
  }
  void long_reply_chain_does_not_recurse() {
    const std::size_t n = 200000;
    std::vector<thread_fields> f(n);
    for (std::size_t i = 0; i < n; ++i) {
      f[i].subject = "chain";
      f[i].message_id = "<" + std::to_string(i) + "@x>";
      if (i > 0) f[i].in_reply_to = "<" + std::to_string(i - 1) + "@x>";
    }
    const std::string out = thread(thread_algorithm::references, f);
    CPPUNIT_ASSERT(out.starts_with("(1 2 3 "));
    CPPUNIT_ASSERT(out.ends_with(" 199999 200000)"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(sort_thread_test);

}  // namespace
}  // namespace hamail::backend::imap_search

// The sync channel's wire format: every command's accepted and refused forms, the path
// rules (traversal, absolute, control characters, lengths), line framing at every split
// point with an over-long line in the middle, and the replies round-tripping through
// their writers and the client's parser.

#include "sync/sync_protocol.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "hamail/test/split.hpp"

namespace hamail::backend::sync {

namespace {

command parsed_ok(std::string_view line) {
  auto p = parse_command(line);
  CPPUNIT_ASSERT_MESSAGE(std::string(line) + ": " + p.error, p.cmd.has_value());
  CPPUNIT_ASSERT(p.error.empty());
  return *p.cmd;
}

void refused(std::string_view line) {
  auto p = parse_command(line);
  CPPUNIT_ASSERT_MESSAGE(std::string(line), !p.cmd.has_value());
  CPPUNIT_ASSERT(!p.error.empty());
}

/// Every line and too_long marker of `pieces` fed in order.
std::vector<std::string> split_lines(const std::vector<std::string_view>& pieces,
                                     std::size_t max_line) {
  line_splitter s(max_line);
  std::vector<std::string> out;
  for (auto piece : pieces) {
    while (!piece.empty()) {
      auto step = s.feed(piece);
      CPPUNIT_ASSERT(step.consumed <= piece.size());
      CPPUNIT_ASSERT(s.buffered() <= max_line + 1);
      piece.remove_prefix(step.consumed);
      if (step.status == line_status::line) out.push_back("line:" + step.line);
      if (step.status == line_status::too_long) out.push_back("too_long");
      if (step.status == line_status::need_more) CPPUNIT_ASSERT(piece.empty());
    }
  }
  return out;
}

}  // namespace

class sync_protocol_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(sync_protocol_test);
  CPPUNIT_TEST(every_command_parses);
  CPPUNIT_TEST(keywords_are_case_insensitive);
  CPPUNIT_TEST(path_traversal_is_refused);
  CPPUNIT_TEST(absolute_and_control_paths_are_refused);
  CPPUNIT_TEST(path_limits_are_enforced);
  CPPUNIT_TEST(paths_may_hold_spaces_and_backslashes);
  CPPUNIT_TEST(invalid_accounts_are_refused);
  CPPUNIT_TEST(fence_forms);
  CPPUNIT_TEST(pull_options);
  CPPUNIT_TEST(malformed_commands_are_refused);
  CPPUNIT_TEST(lines_split_at_every_byte);
  CPPUNIT_TEST(too_long_line_reported_once_and_skipped);
  CPPUNIT_TEST(replies_round_trip);
  CPPUNIT_TEST(bad_replies_are_refused);
  CPPUNIT_TEST_SUITE_END();

 public:
  void every_command_parses() {
    auto a = parsed_ok("AUTH s3cret with spaces");
    CPPUNIT_ASSERT(a.what == verb::auth);
    CPPUNIT_ASSERT_EQUAL(std::string("s3cret with spaces"), a.secret);
    auto l = parsed_ok("LIST alice@example.org");
    CPPUNIT_ASSERT(l.what == verb::list);
    CPPUNIT_ASSERT_EQUAL(std::string("alice@example.org"), l.account);
    auto g = parsed_ok("GET alice cur/1.M2P3Q4.host,S=10,U=1:2,S");
    CPPUNIT_ASSERT(g.what == verb::get);
    CPPUNIT_ASSERT_EQUAL(std::string("cur/1.M2P3Q4.host,S=10,U=1:2,S"), g.path);
    CPPUNIT_ASSERT(parsed_ok("UNFENCE alice").what == verb::unfence);
    CPPUNIT_ASSERT(parsed_ok("PURGE alice").what == verb::purge);
    CPPUNIT_ASSERT(parsed_ok("DISCARD alice").what == verb::discard);
    auto p = parsed_ok("PULL alice 10.0.0.1 4190");
    CPPUNIT_ASSERT(p.what == verb::pull);
    CPPUNIT_ASSERT_EQUAL(std::string("10.0.0.1"), p.host);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t(4190), p.port);
    CPPUNIT_ASSERT(!p.final);
    CPPUNIT_ASSERT(!p.rate);
  }

  void keywords_are_case_insensitive() {
    CPPUNIT_ASSERT(parsed_ok("list alice").what == verb::list);
    auto f = parsed_ok("fence alice locked store-b 60");
    CPPUNIT_ASSERT(f.what == verb::fence && !f.moved);
    auto p = parsed_ok("pull alice host 1 final rate 5");
    CPPUNIT_ASSERT(p.final && p.rate && *p.rate == 5);
  }

  void path_traversal_is_refused() {
    for (const char* bad : {"GET alice ..", "GET alice ../bob/cur/x", "GET alice cur/../../x",
                            "GET alice .", "GET alice ./cur", "GET alice cur/.", "GET alice a/./b",
                            "GET alice ../../../../etc/passwd"}) {
      refused(bad);
    }
    CPPUNIT_ASSERT(path_problem("a/..").has_value());
    CPPUNIT_ASSERT(path_problem("..a").value_or("") == "");  // a name that starts with dots
    CPPUNIT_ASSERT(!path_problem("..a").has_value());
    CPPUNIT_ASSERT(!path_problem(".Sent/cur").has_value());
  }

  void absolute_and_control_paths_are_refused() {
    refused("GET alice /etc/passwd");
    refused("GET alice /");
    refused("GET alice ");
    refused("GET alice cur//x");
    refused("GET alice cur/");
    refused(std::string("GET alice cur/a\0b", 17));
    refused("GET alice cur/a\tb");
    refused(
        "GET alice cur/a\x7f"
        "b");
    refused("GET alice cur/a\rb");
    CPPUNIT_ASSERT(path_problem(std::string("a\nb")).has_value());
  }

  void path_limits_are_enforced() {
    const std::string comp255(255, 'x');
    const std::string comp256(256, 'x');
    CPPUNIT_ASSERT(!path_problem(comp255).has_value());
    CPPUNIT_ASSERT(path_problem(comp256).has_value());
    std::string longest;
    while (longest.size() + 101 <= max_path) longest += std::string(100, 'y') + "/";
    longest += std::string(max_path - longest.size(), 'z');
    CPPUNIT_ASSERT_EQUAL(max_path, longest.size());
    CPPUNIT_ASSERT(!path_problem(longest).has_value());
    CPPUNIT_ASSERT(path_problem(longest + "z").has_value());
    refused("GET alice " + longest + "z");
    parsed_ok("GET alice " + longest);
    refused("AUTH " + std::string(max_secret + 1, 's'));
    parsed_ok("AUTH " + std::string(max_secret, 's'));
    refused("LIST " + std::string(max_command_line, 'a'));
  }

  void paths_may_hold_spaces_and_backslashes() {
    auto g = parsed_ok("GET alice .Tom &- Jerry/cur/1.M1P1Q1.h\\057x,S=1,U=1:2,");
    CPPUNIT_ASSERT_EQUAL(std::string(".Tom &- Jerry/cur/1.M1P1Q1.h\\057x,S=1,U=1:2,"), g.path);
  }

  void invalid_accounts_are_refused() {
    for (const char* bad : {"LIST", "LIST ", "LIST Alice", "LIST .alice", "LIST a..b", "LIST a/b",
                            "LIST a b", "PURGE ../x", "GET", "GET alice", "DISCARD a%b"}) {
      refused(bad);
    }
    CPPUNIT_ASSERT(valid_account_id("a.b+c_d@e-f"));
    CPPUNIT_ASSERT(!valid_account_id(std::string(256, 'a')));
    CPPUNIT_ASSERT(valid_account_id(std::string(255, 'a')));
  }

  void fence_forms() {
    auto l = parsed_ok("FENCE alice LOCKED store-b 60");
    CPPUNIT_ASSERT(!l.moved);
    CPPUNIT_ASSERT_EQUAL(std::string("store-b"), l.store);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t(60), l.lease_seconds);
    auto m = parsed_ok("FENCE alice MOVED store-b");
    CPPUNIT_ASSERT(m.moved);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t(0), m.lease_seconds);
    for (const char* bad : {"FENCE alice", "FENCE alice LOCKED", "FENCE alice LOCKED store-b",
                            "FENCE alice LOCKED store-b 0", "FENCE alice LOCKED store-b 86401",
                            "FENCE alice LOCKED store-b -1", "FENCE alice LOCKED Store-B 60",
                            "FENCE alice MOVED store-b 60", "FENCE alice GONE store-b",
                            "FENCE alice LOCKED store-b 60 ", "FENCE alice MOVED -b"}) {
      refused(bad);
    }
    parsed_ok("FENCE alice LOCKED store-b 86400");
  }

  void pull_options() {
    auto p = parsed_ok("PULL alice src.example.org 4190 RATE 1000 FINAL");
    CPPUNIT_ASSERT(p.final);
    CPPUNIT_ASSERT(p.rate && *p.rate == 1000);
    auto z = parsed_ok("PULL alice ::1 1 RATE 0");
    CPPUNIT_ASSERT(z.rate && *z.rate == 0);
    for (const char* bad :
         {"PULL alice", "PULL alice host", "PULL alice host 0", "PULL alice host 65536",
          "PULL alice host x", "PULL alice host 1 FINAL FINAL", "PULL alice host 1 RATE",
          "PULL alice host 1 RATE x", "PULL alice host 1 RATE 1 RATE 2", "PULL alice host 1 NOW",
          "PULL alice ho/st 1", "PULL alice host 1 ", "PULL alice host +1"}) {
      refused(bad);
    }
  }

  void malformed_commands_are_refused() {
    for (const char* bad : {"", " ", " LIST alice", "LIST  alice", "LIST alice ", "NOOP", "AUTH",
                            "AUTH ", "UNFENCE alice bob", "DISCARD"}) {
      refused(bad);
    }
  }

  void lines_split_at_every_byte() {
    const std::string input = "AUTH x\r\nLIST alice\nGET alice cur/a b\r\n\r\nPU";
    const auto whole = split_lines({input}, 32);
    const std::vector<std::string> expected{"line:AUTH x", "line:LIST alice",
                                            "line:GET alice cur/a b", "line:"};
    CPPUNIT_ASSERT(expected == whole);
    for (std::size_t i = 0; i <= input.size(); ++i) {
      for (std::size_t j = i; j <= input.size(); ++j) {
        CPPUNIT_ASSERT(whole == split_lines(test::cut(input, {i, j}), 32));
      }
    }
  }

  void too_long_line_reported_once_and_skipped() {
    const std::string input =
        "LIST a\r\n" + std::string(40, 'x') + "\r\nLIST b\r\n" + std::string(16, 'y') + "\r\n";
    const auto whole = split_lines({input}, 16);
    const std::vector<std::string> expected{"line:LIST a", "too_long", "line:LIST b",
                                            "line:" + std::string(16, 'y')};
    CPPUNIT_ASSERT(expected == whole);
    for (std::size_t i = 0; i <= input.size(); ++i) {
      for (std::size_t j = i; j <= input.size(); ++j) {
        CPPUNIT_ASSERT(whole == split_lines(test::cut(input, {i, j}), 16));
      }
    }
    // One octet over the limit, with or without CR, is too long.
    CPPUNIT_ASSERT(std::vector<std::string>{"too_long"} ==
                   split_lines({std::string(17, 'z') + "\n"}, 16));
    CPPUNIT_ASSERT(std::vector<std::string>{"too_long"} ==
                   split_lines({std::string(17, 'z') + "\r\n"}, 16));
  }

  void replies_round_trip() {
    auto line = [](const std::string& s) {
      CPPUNIT_ASSERT(s.size() >= 2 && s.substr(s.size() - 2) == "\r\n");
      return s.substr(0, s.size() - 2);
    };
    auto f = parse_reply(line(format_file(123, -5, ".Sent/cur/a b:2,S")));
    CPPUNIT_ASSERT(f.rep && f.rep->kind == reply::kind_t::file);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(123), f.rep->size);
    CPPUNIT_ASSERT_EQUAL(std::int64_t(-5), f.rep->mtime_ns);
    CPPUNIT_ASSERT_EQUAL(std::string(".Sent/cur/a b:2,S"), f.rep->path);
    auto d = parse_reply(line(format_dir(".Sent")));
    CPPUNIT_ASSERT(d.rep && d.rep->kind == reply::kind_t::dir && d.rep->path == ".Sent");
    auto data = parse_reply(line(format_data(52428800)));
    CPPUNIT_ASSERT(data.rep && data.rep->kind == reply::kind_t::data && data.rep->size == 52428800);
    auto pr = parse_reply(line(format_progress(1, 2, 3, 4)));
    CPPUNIT_ASSERT(pr.rep && pr.rep->kind == reply::kind_t::progress);
    CPPUNIT_ASSERT(pr.rep->numbers[0] == 1 && pr.rep->numbers[3] == 4);
    auto ok = parse_reply(line(format_ok("1 2 3 4")));
    CPPUNIT_ASSERT(ok.rep && ok.rep->kind == reply::kind_t::ok && ok.rep->text == "1 2 3 4");
    auto no = parse_reply(line(format_no("NONEXISTENT", "no such\x01 file")));
    CPPUNIT_ASSERT(no.rep && no.rep->kind == reply::kind_t::no);
    CPPUNIT_ASSERT_EQUAL(std::string("NONEXISTENT"), no.rep->code);
    CPPUNIT_ASSERT_EQUAL(std::string("no such  file"), no.rep->text);
    auto bad = parse_reply(line(format_bad("unknown command")));
    CPPUNIT_ASSERT(bad.rep && bad.rep->kind == reply::kind_t::bad);
    CPPUNIT_ASSERT(parse_reply("* HELLO there").rep->kind == reply::kind_t::other);
  }

  void bad_replies_are_refused() {
    for (const char* bad :
         {"", "HELLO", "NO", "* F 1 2", "* F x 2 a", "* F 1 2 /etc/passwd", "* F 1 2 ../x", "* D ",
          "* D a/../b", "* DATA 5", "* DATA {x}", "* DATA {}", "* DATA {-1}", "* PROGRESS 1 2 3",
          "* PROGRESS 1 2 3 4 5", "* F 99999999999999999999999 1 a"}) {
      auto r = parse_reply(bad);
      CPPUNIT_ASSERT_MESSAGE(bad, !r.rep.has_value());
      CPPUNIT_ASSERT(!r.error.empty());
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(sync_protocol_test);

}  // namespace hamail::backend::sync

// Fuzz harness for the IMAP SEARCH, SORT and THREAD engine. The input is a
// byte stream a client might send; every command the IMAP command parser
// accepts has its arguments read by parse_search, parse_sort and
// parse_thread under a few option sets, and each query that parses is run
// over a small fixed mailbox. Checked:
//   - a refusal carries a reason, and a code only as NO [BADCHARSET ...];
//   - the matches are ascending indices into the mailbox, content is loaded
//     at most once per message and never for a query without content keys;
//   - NOT of a query matches exactly the other messages;
//   - the ALL sequence set of an ESEARCH parses back to the same numbers;
//   - SORT returns a permutation of the matches, THREAD names each once in
//     balanced parentheses.
// The previous command's matches are the next one's saved result ("$").

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/mime/message.hpp"
#include "hamail/mime/search_text.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/protocol/imap/sequence_set.hpp"
#include "imap/search.hpp"
#include "imap/sort_thread.hpp"

namespace {

namespace is = hamail::backend::imap_search;
namespace store = hamail::store;
namespace mime = hamail::mime;
using hamail::fuzz::require;

struct message {
  std::string raw;
  mime::message_structure structure;
  mime::search_text text;
  is::message_content content;
};

// A handful of messages with flags, keywords, dates, encoded headers and threads.
struct mailbox {
  std::deque<message> content;
  std::vector<store::message_info> infos;

  mailbox() {
    const char* raws[] = {
        "Date: Wed, 10 Jan 2024 23:30:00 -0800\r\nFrom: Alice <alice@example.org>\r\n"
        "To: bob@example.org\r\nSubject: Hello world\r\nMessage-ID: <1@x>\r\n\r\nquick brown "
        "fox\r\n",
        "From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>\r\nCc: carol@example.org\r\n"
        "Subject: Re: Hello world\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "U3RyYcOfZSB1bmQgUGxhdHo=\r\n",
        "Date: 12 Jan 2024 10:00 +0000\r\nFrom: bob@example.org\r\nSubject: [list] Fwd: x\r\n"
        "In-Reply-To: <gone@x>\r\nX-Spam: yes\r\n\r\nnothing\r\n",
        "Date: garbage\r\nSubject: x\r\nMessage-ID: <4@x>\r\nReferences: <5@x>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
        "part one\r\n--b--\r\n",
        "Subject: loop\r\nMessage-ID: <5@x>\r\nReferences: <4@x>\r\n\r\n",
        "",
    };
    store::imap_uid uid = 3;
    for (const char* r : raws) {
      message m;
      m.raw = r;
      m.structure = mime::parse(m.raw);
      m.text = mime::extract_search_text(m.raw, m.structure);
      content.push_back(std::move(m));
      store::message_info info;
      info.uid = uid;
      info.modseq = uid * 3;
      info.flags.system = static_cast<std::uint8_t>(uid * 7 % 32);
      if (uid % 2) info.flags.keywords.push_back("$Junk");
      info.date = store::internal_date(std::chrono::seconds(1704800000 + 40000 * uid));
      info.size = static_cast<std::uint64_t>(content.back().raw.size());
      info.recent = uid % 3 == 0;
      infos.push_back(std::move(info));
      uid += uid % 4 + 1;
    }
    for (auto& m : content) m.content = {m.raw, &m.structure, &m.text};
  }
};

const mailbox& box() {
  static const mailbox b;
  return b;
}

void check_error(const is::search_error& e) {
  require(!e.text.empty(), "a refusal says why");
  require(e.code.empty() || (!e.bad && e.code == "BADCHARSET (US-ASCII UTF-8)"),
          "only BADCHARSET carries a code, with NO");
}

std::vector<std::uint32_t> run(const is::search_query& q, std::vector<store::imap_uid>& saved,
                               std::size_t& loads) {
  const auto& b = box();
  std::vector<int> seen(b.infos.size(), 0);
  is::search_context c{.messages = b.infos,
                       .saved = saved,
                       .load =
                           [&](std::size_t i) {
                             require(i < b.infos.size(), "load within the mailbox");
                             require(++seen[i] == 1, "load once per message");
                             ++loads;
                             return &b.content[i].content;
                           },
                       .now = store::internal_date(std::chrono::seconds(1705000000))};
  return is::evaluate(q, c);
}

std::vector<std::uint32_t> check_query(const is::search_query& q,
                                       std::vector<store::imap_uid>& saved) {
  const auto& b = box();
  std::size_t loads = 0;
  const auto hits = run(q, saved, loads);
  require(q.needs_content() || loads == 0, "no load without content keys");
  for (std::size_t i = 0; i < hits.size(); ++i) {
    require(hits[i] < b.infos.size(), "matches are indices into the mailbox");
    require(i == 0 || hits[i] > hits[i - 1], "matches ascend");
  }
  is::search_query negated = q;
  negated.root = is::search_key{.kind = is::key_kind::not_, .children = {q.root}};
  const auto others = run(negated, saved, loads);
  require(hits.size() + others.size() == b.infos.size(), "NOT matches the rest");
  for (auto i : others)
    require(!std::binary_search(hits.begin(), hits.end(), i), "NOT matches the rest");

  const auto uids = is::to_numbers(hits, b.infos, true);
  const std::string set = is::sequence_set_string(uids);
  if (!uids.empty()) {
    const auto parsed = hamail::imap::sequence_set::parse(set, 1u << 20);
    require(parsed.has_value(), "the ALL set parses");
    std::vector<std::uint32_t> back;
    parsed->for_each(uids.back(), [&](std::uint32_t n) { back.push_back(n); });
    require(back == uids, "the ALL set names the matches");
  }
  const std::string es =
      is::esearch_response("t", true, q.ret, uids, is::highest_modseq(hits, b.infos));
  require(es.starts_with("* ESEARCH (TAG \"t\") UID"), "ESEARCH form");
  return hits;
}

void check_command(const hamail::imap::command& cmd, std::vector<store::imap_uid>& saved) {
  const auto& b = box();
  const is::parse_options options[] = {
      {},
      {.allow_return = true, .utf8_accept = true},
      {.allow_return = true, .max_keys = 8, .max_depth = 3, .max_ranges = 2},
  };
  for (const auto& o : options) {
    auto s = is::parse_search(cmd.args, o);
    if (auto* e = std::get_if<is::search_error>(&s)) {
      check_error(*e);
    } else {
      const auto& q = std::get<is::search_query>(s);
      const auto hits = check_query(q, saved);
      if (q.ret.save) saved = is::saved_uids(q.ret, hits, b.infos);
    }

    auto so = is::parse_sort(cmd.args, o);
    if (auto* e = std::get_if<is::search_error>(&so)) {
      check_error(*e);
    } else {
      const auto& q = std::get<is::sort_query>(so);
      require(!q.criteria.empty(), "SORT has criteria");
      const auto hits = check_query(q.search, saved);
      auto sorted = is::sort_messages(hits, q.criteria, b.infos,
                                      [&](std::size_t i) { return &b.content[i].structure.env; });
      std::sort(sorted.begin(), sorted.end());
      require(sorted == hits, "SORT permutes the matches");
    }

    auto th = is::parse_thread(cmd.args, o);
    if (auto* e = std::get_if<is::search_error>(&th)) {
      check_error(*e);
    } else {
      const auto& q = std::get<is::thread_query>(th);
      const auto hits = check_query(q.search, saved);
      const std::string out = is::thread_messages(
          q.algorithm, hits, b.infos,
          [&](std::size_t i) {
            return is::thread_fields_of(b.content[i].raw, b.content[i].structure);
          },
          false);
      int depth = 0;
      std::vector<std::uint32_t> named;
      std::uint32_t n = 0;
      bool in_number = false;
      for (char ch : out) {
        if (ch >= '0' && ch <= '9') {
          n = n * 10 + static_cast<std::uint32_t>(ch - '0');
          in_number = true;
          continue;
        }
        if (in_number) named.push_back(n - 1);
        n = 0;
        in_number = false;
        if (ch == '(') ++depth;
        if (ch == ')') --depth;
        require(depth >= 0, "THREAD parentheses balance");
      }
      require(depth == 0 && !in_number, "THREAD parentheses balance");
      std::sort(named.begin(), named.end());
      require(named == hits, "THREAD names each match once");
    }
  }
  saved = {};
  if (auto s = is::parse_search(cmd.args, {}); std::holds_alternative<is::search_query>(s)) {
    std::vector<store::imap_uid> none;
    saved = is::to_numbers(check_query(std::get<is::search_query>(s), none), b.infos, true);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  hamail::imap::command_parser parser(hamail::imap::command_limits{.max_line = 8192,
                                                                   .max_literal = 4096,
                                                                   .max_command = 16384,
                                                                   .max_depth = 12,
                                                                   .max_arguments = 400});
  parser.set_utf8_accept(true);
  std::vector<store::imap_uid> saved;
  while (!input.empty()) {
    const auto step = parser.feed(input);
    input.remove_prefix(step.consumed);
    if (step.status == hamail::imap::parse_status::need_more) break;
    if (step.cmd) check_command(*step.cmd, saved);
    if (step.error && step.error->action == hamail::imap::error_action::close) break;
    if (step.consumed == 0 && step.status != hamail::imap::parse_status::need_continuation) break;
  }
  return 0;
}

// Randomized model-based test of the selected-mailbox state: two or three
// sessions (some with CONDSTORE and/or QRESYNC) on one INBOX, driven by random
// deliveries, APPEND, STORE, EXPUNGE, MOVE, NOOP, FETCH, SEARCH and IDLE.
// Each session keeps a client-side view built only from the untagged
// responses it receives (EXISTS, EXPUNGE, VANISHED, FETCH), as an RFC 3501
// client would; the views are checked against an in-memory model of the
// mailbox (UIDs, flags, modseqs). Seeds are printed; HAMAIL_MODEL_SEED runs one
// seed, HAMAIL_MODEL_STEPS sets the steps per seed, HAMAIL_MODEL_SEEDS the
// number of seeds.

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "imap/conversation_test_support.hpp"

using namespace hamail::backend::imap_test;

namespace {

using flag_set = std::set<std::string>;

// Switches that narrowed the random steps around three server bugs this test
// found; all three are fixed (mailbox_view.cpp, cmd_store.cpp, cmd_expunge.cpp)
// and the switches are off. Turning one on hides its case again.
//
// Bug 1: after a session's own STORE, other sessions' older flag changes of
// the same message still queued for it are reported after the STORE's own
// FETCH response, so the client ends with stale flags. Workaround: NOOP
// before every STORE, so nothing is queued.
constexpr bool noop_before_store = false;
//
// Bug 2: when one report carries both new messages (EXISTS) and the expunge
// of one of them, the EXPUNGE's sequence number counts the new messages but
// is sent before the EXISTS that announces them (VANISHED names a UID never
// announced). Workaround: before an EXPUNGE or MOVE, NOOP in every other
// session, so none holds an unreported new message.
constexpr bool noop_others_before_expunge = false;
//
// Bug 3: a plain EXPUNGE that removes a \Deleted message the expunging session
// has not been told about yet (its EXISTS still queued) forgets the queued
// expunge but not the queued EXISTS: the message is announced later and stays
// in that session's view for good. Workaround: NOOP before a plain EXPUNGE.
constexpr bool noop_before_expunge = false;

/// A check of the model test failed; what() says which.
struct model_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& what) { throw model_failure(what); }

void expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

std::string flags_text(const flag_set& f) {
  std::string out = "(";
  for (const auto& x : f) out += (out.size() > 1 ? " " : "") + x;
  return out + ")";
}

/// The flags the random steps use.
const std::vector<std::string> flag_universe = {"\\Seen", "\\Flagged", "\\Deleted", "\\Answered",
                                                "$Work"};

/// One message as the store holds it.
struct model_message {
  std::uint32_t uid = 0;
  flag_set flags;
  std::uint64_t modseq = 0;
};

/// The mailbox as it truly is: what the maildir store must hold after each step.
/// Every change of one message takes the next modseq (append, flag change, expunge).
struct mailbox_model {
  std::vector<model_message> messages;  // ascending UID
  std::uint32_t uid_next = 1;
  std::uint64_t highest = 0;

  const model_message* find(std::uint32_t uid) const {
    for (const auto& m : messages) {
      if (m.uid == uid) return &m;
    }
    return nullptr;
  }
  std::uint32_t add(const flag_set& flags) {
    messages.push_back({uid_next, flags, ++highest});
    return uid_next++;
  }
  void store(std::vector<std::uint32_t> uids, bool add_flags, const flag_set& f) {
    std::sort(uids.begin(), uids.end());
    uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
    for (auto uid : uids) {
      for (auto& m : messages) {
        if (m.uid != uid) continue;
        flag_set nf = m.flags;
        for (const auto& x : f) {
          if (add_flags) {
            nf.insert(x);
          } else {
            nf.erase(x);
          }
        }
        if (nf != m.flags) {
          m.flags = nf;
          m.modseq = ++highest;
        }
      }
    }
  }
  /// Removes those of `uids` that exist; returns how many.
  std::size_t expunge(std::vector<std::uint32_t> uids) {
    std::sort(uids.begin(), uids.end());
    std::size_t n = 0;
    for (auto uid : uids) {
      auto it = std::find_if(messages.begin(), messages.end(),
                             [uid](const model_message& m) { return m.uid == uid; });
      if (it == messages.end()) continue;
      messages.erase(it);
      ++highest;
      ++n;
    }
    return n;
  }
  std::vector<std::uint32_t> deleted() const {
    std::vector<std::uint32_t> out;
    for (const auto& m : messages) {
      if (m.flags.count("\\Deleted")) out.push_back(m.uid);
    }
    return out;
  }
};

/// One message in a client's view: its UID is 0 until a FETCH names it (an
/// EXISTS only says that there are more messages).
struct view_entry {
  std::uint32_t uid = 0;
  std::optional<flag_set> flags;
  std::uint64_t modseq = 0;
};

/// One session and the mailbox as its client sees it.
struct session_state {
  client* c = nullptr;
  std::string name;
  bool condstore = false;
  bool qresync = false;
  bool idling = false;
  std::string idle_tag;
  int tags = 0;
  std::vector<view_entry> view;
  std::uint64_t max_modseq = 0;  // highest MODSEQ this session was told
  std::map<std::uint32_t, std::pair<std::uint64_t, flag_set>> last_modseq;  // by UID
  std::set<std::uint32_t> recent;                                           // \Recent here

  std::string describe() const {
    std::string out = name + "[";
    for (const auto& e : view) {
      out += " " + (e.uid ? std::to_string(e.uid) : std::string("?"));
      if (e.flags) out += flags_text(*e.flags);
    }
    return out + " ]";
  }
};

/// What a response is parsed for.
struct parse_context {
  bool expunge_forbidden = false;  // FETCH, STORE, SEARCH by sequence number
  bool expect_ok = true;
  std::vector<std::uint32_t>* search = nullptr;   // "* SEARCH" numbers go here
  std::vector<std::uint32_t>* fetched = nullptr;  // sequence numbers of FETCH responses
  std::optional<std::uint64_t> tagged_highestmodseq;
  std::optional<std::uint32_t> appenduid;
};

std::uint64_t number(std::string_view& s) {
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  expect(i > 0, "expected a number at: " + std::string(s));
  const auto v = std::stoull(std::string(s.substr(0, i)));
  s.remove_prefix(i);
  return v;
}

void skip(std::string_view& s, std::string_view word) {
  expect(s.substr(0, word.size()) == word,
         "expected '" + std::string(word) + "' at: " + std::string(s));
  s.remove_prefix(word.size());
}

std::vector<std::uint32_t> parse_set(std::string_view s) {
  std::vector<std::uint32_t> out;
  while (!s.empty()) {
    const auto a = number(s);
    auto b = a;
    if (!s.empty() && s[0] == ':') {
      s.remove_prefix(1);
      b = number(s);
    }
    for (auto x = std::min(a, b); x <= std::max(a, b); ++x)
      out.push_back(static_cast<std::uint32_t>(x));
    if (!s.empty()) skip(s, ",");
  }
  return out;
}

class model_run {
 public:
  model_run(std::uint32_t seed, int steps) : seed_(seed), steps_(steps), rng_(seed) {}

  void run() {
    try {
      setup();
      for (step_ = 1; step_ <= steps_; ++step_) {
        one_step();
        after_step();
        if (pick(40) == 0) full_check();
      }
      full_check();
    } catch (const std::exception& e) {
      std::ostringstream msg;
      msg << "seed " << seed_ << " step " << step_ << ": " << e.what() << "\n--- last steps ---\n";
      const std::size_t from = log_.size() > 80 ? log_.size() - 80 : 0;
      for (std::size_t i = from; i < log_.size(); ++i) msg << log_[i] << "\n";
      msg << "--- views ---\n";
      for (const auto& s : sessions_) msg << s.describe() << "\n";
      msg << "model [";
      for (const auto& m : inbox_.messages)
        msg << " " << m.uid << flags_text(m.flags) << "/" << m.modseq;
      msg << " ] highest " << inbox_.highest << "\n";
      std::cerr << msg.str();
      CPPUNIT_FAIL(msg.str());
    }
  }

 private:
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  bool chance(int percent) { return static_cast<int>(pick(100)) < percent; }

  void note(const std::string& line) {
    log_.push_back("[" + std::to_string(step_) + "] " + line);
    if (log_.size() > 400) log_.pop_front();
  }

  flag_set random_flags() {
    flag_set f;
    const std::size_t n = 1 + pick(2);
    for (std::size_t i = 0; i < n; ++i) {
      // \Deleted often, so that EXPUNGE has work.
      f.insert(chance(30) ? "\\Deleted" : flag_universe[pick(flag_universe.size())]);
    }
    return f;
  }

  std::string message_text() {
    const auto n = ++messages_made_;
    return "From: a@example.org\r\nSubject: m" + std::to_string(n) + "\r\n\r\nbody " +
           std::to_string(n) + "\r\n";
  }

  // --- setup -----------------------------------------------------------------

  void setup() {
    auto made = f_.mail->create_mailbox("alice", "Other");
    expect(made.has_value(), "cannot create Other");
    const std::size_t initial = pick(6);
    for (std::size_t i = 0; i < initial; ++i) deliver(false);
    const std::size_t count = 2 + seed_ % 2;
    sessions_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      session_state s;
      s.c = &f_.login();
      s.name = std::string(1, static_cast<char>('a' + i));
      const auto kind = pick(4);  // plain, CONDSTORE, QRESYNC, both
      s.condstore = kind != 0;
      s.qresync = kind >= 2;
      sessions_.push_back(std::move(s));
      auto& st = sessions_.back();
      if (st.qresync) {
        command(st, kind == 3 ? "ENABLE CONDSTORE QRESYNC" : "ENABLE QRESYNC");
      } else if (st.condstore) {
        command(st, "ENABLE CONDSTORE");
      }
      parse_context ctx;
      command(st, "SELECT INBOX", ctx);
      resolve(st);
    }
    observer_ = &f_.login();
    std::string modes;
    for (const auto& s : sessions_) {
      modes += " " + s.name + (s.qresync ? "=QRESYNC" : s.condstore ? "=CONDSTORE" : "=plain");
    }
    std::cerr << "backend_model_test: seed " << seed_ << ", " << steps_ << " steps," << modes
              << "\n";
  }

  // --- talking to sessions -----------------------------------------------------

  /// Runs `cmd` in `s` (leaving IDLE first) and applies what comes back.
  std::string command(session_state& s, const std::string& cmd) {
    parse_context ctx;
    return command(s, cmd, ctx);
  }
  std::string command(session_state& s, const std::string& cmd, parse_context& ctx) {
    if (s.idling) done(s);
    const std::string tag = s.name + std::to_string(++s.tags);
    note(s.name + " > " + tag + " " + cmd.substr(0, cmd.find('\r')));
    const std::string out = s.c->command(tag + " " + cmd);
    apply(s, out, ctx, tag);
    return out;
  }

  void idle(session_state& s) {
    const std::string tag = s.name + std::to_string(++s.tags);
    note(s.name + " > " + tag + " IDLE");
    s.c->send(tag + " IDLE\r\n");
    std::string got;
    for (;;) {
      auto line = s.c->line();
      expect(line != "<EOF>", s.name + ": connection closed in IDLE");
      if (line.starts_with("+ ")) break;
      expect(!line.starts_with(tag + " "), s.name + ": IDLE refused: " + line);
      got += line + "\r\n";
    }
    parse_context ctx;
    apply(s, got, ctx, tag);
    s.idling = true;
    s.idle_tag = tag;
  }

  void done(session_state& s) {
    note(s.name + " > DONE");
    s.idling = false;
    s.c->send("DONE\r\n");
    const std::string out = s.c->until_tagged(s.idle_tag);
    parse_context ctx;
    apply(s, out, ctx, s.idle_tag);
  }

  /// Applies what an idling session received so far (complete lines only).
  void drain_idle(session_state& s) {
    std::string got;
    while (s.c->pending().find("\r\n") != std::string::npos) got += s.c->line() + "\r\n";
    parse_context ctx;
    if (!got.empty()) apply(s, got, ctx, s.idle_tag);
  }

  // --- the client side: applying responses to a view ---------------------------

  void apply(session_state& s, const std::string& text, parse_context& ctx,
             const std::string& tag) {
    if (!text.empty()) note(s.name + " < " + text.substr(0, text.size() - 2));
    std::size_t pos = 0;
    while (pos < text.size()) {
      auto nl = text.find("\r\n", pos);
      if (nl == std::string::npos) nl = text.size();
      const std::string_view line(text.data() + pos, nl - pos);
      pos = nl + 2;
      if (line.starts_with("* ")) {
        untagged(s, line.substr(2), ctx);
      } else if (line.starts_with("+ ")) {
        continue;
      } else if (line.starts_with(tag + " ")) {
        tagged(s, line.substr(tag.size() + 1), ctx);
      } else {
        fail(s.name + ": unexpected line: " + std::string(line));
      }
    }
  }

  void tagged(session_state& s, std::string_view rest, parse_context& ctx) {
    if (ctx.expect_ok)
      expect(rest.starts_with("OK"), s.name + ": command failed: " + std::string(rest));
    if (auto p = rest.find("[HIGHESTMODSEQ "); p != std::string_view::npos) {
      auto v = rest.substr(p + 15);
      const auto h = number(v);
      expect(h >= s.max_modseq, s.name + ": HIGHESTMODSEQ " + std::to_string(h) +
                                    " below a MODSEQ it reported: " + std::to_string(s.max_modseq));
      ctx.tagged_highestmodseq = h;
    }
    if (auto p = rest.find("[APPENDUID "); p != std::string_view::npos) {
      auto v = rest.substr(p + 11);
      number(v);
      skip(v, " ");
      ctx.appenduid = static_cast<std::uint32_t>(number(v));
    }
  }

  void untagged(session_state& s, std::string_view r, parse_context& ctx) {
    const std::string line(r);
    if (r.starts_with("VANISHED ")) {
      r.remove_prefix(9);
      expect(!r.starts_with("(EARLIER)"), s.name + ": unexpected " + line);
      expect(s.qresync, s.name + ": VANISHED without QRESYNC");
      expect(!ctx.expunge_forbidden, s.name + ": VANISHED during a command by sequence number");
      for (auto uid : parse_set(r)) vanish(s, uid);
      return;
    }
    if (r.starts_with("SEARCH")) {
      r.remove_prefix(6);
      std::vector<std::uint32_t> found;
      while (r.starts_with(" ") && r.size() > 1 && r[1] != '(') {
        r.remove_prefix(1);
        found.push_back(static_cast<std::uint32_t>(number(r)));
      }
      if (ctx.search) *ctx.search = std::move(found);
      return;
    }
    if (r.empty() || r[0] < '0' || r[0] > '9') {
      // OK [...], FLAGS, ENABLED, STATUS...: nothing a view depends on.
      expect(!r.starts_with("BYE") && !r.starts_with("NO") && !r.starts_with("BAD"),
             s.name + ": " + line);
      return;
    }
    const auto n = number(r);
    if (r == " EXISTS") {
      expect(n >= s.view.size(), s.name + ": EXISTS " + std::to_string(n) + " below " +
                                     std::to_string(s.view.size()) + " messages in view");
      s.view.resize(n);
      return;
    }
    if (r == " RECENT") return;
    if (r == " EXPUNGE") {
      expect(!s.qresync, s.name + ": EXPUNGE sent to a QRESYNC session");
      expect(!ctx.expunge_forbidden, s.name + ": EXPUNGE during a command by sequence number");
      expect(n >= 1 && n <= s.view.size(),
             s.name + ": " + line + " with " + std::to_string(s.view.size()) + " in view");
      forget(s, s.view[n - 1].uid);
      s.view.erase(s.view.begin() + static_cast<std::ptrdiff_t>(n - 1));
      return;
    }
    skip(r, " FETCH (");
    expect(n >= 1 && n <= s.view.size(),
           s.name + ": " + line + " with " + std::to_string(s.view.size()) + " in view");
    if (ctx.fetched) ctx.fetched->push_back(static_cast<std::uint32_t>(n));
    std::optional<flag_set> flags;
    bool recent = false;
    std::optional<std::uint32_t> uid;
    std::optional<std::uint64_t> modseq;
    while (!r.starts_with(")")) {
      if (r.starts_with(" ")) r.remove_prefix(1);
      if (r.starts_with("FLAGS (")) {
        r.remove_prefix(7);
        const auto close = r.find(')');
        expect(close != std::string_view::npos, "bad FLAGS: " + line);
        std::string_view list = r.substr(0, close);
        r.remove_prefix(close + 1);
        flags.emplace();
        while (!list.empty()) {
          const auto sp = list.find(' ');
          const std::string flag(list.substr(0, sp));
          if (flag == "\\Recent") {
            recent = true;
          } else {
            flags->insert(flag);
          }
          list.remove_prefix(sp == std::string_view::npos ? list.size() : sp + 1);
        }
      } else if (r.starts_with("UID ")) {
        r.remove_prefix(4);
        uid = static_cast<std::uint32_t>(number(r));
      } else if (r.starts_with("MODSEQ (")) {
        r.remove_prefix(8);
        modseq = number(r);
        skip(r, ")");
      } else {
        fail(s.name + ": unexpected FETCH item: " + line);
      }
    }
    auto& e = s.view[n - 1];
    if (uid) {
      if (e.uid == 0) {
        // A UID learned for a message announced by EXISTS: it must fit the order.
        for (std::size_t i = n - 1; i-- > 0;) {
          if (s.view[i].uid) {
            expect(s.view[i].uid < *uid, s.name + ": UID " + std::to_string(*uid) +
                                             " out of order at " + std::to_string(n) + ": " + line);
            break;
          }
        }
        for (std::size_t i = n; i < s.view.size(); ++i) {
          if (s.view[i].uid) {
            expect(s.view[i].uid > *uid, s.name + ": UID " + std::to_string(*uid) +
                                             " out of order at " + std::to_string(n) + ": " + line);
            break;
          }
        }
        e.uid = *uid;
      } else {
        expect(e.uid == *uid, s.name + ": message " + std::to_string(n) + " is UID " +
                                  std::to_string(e.uid) + " in the client's view, got " + line);
      }
    }
    if (flags) {
      e.flags = flags;
      if (e.uid) {
        if (recent) {
          s.recent.insert(e.uid);
        } else {
          s.recent.erase(e.uid);
        }
      }
    }
    if (modseq) {
      expect(s.condstore, s.name + ": MODSEQ without CONDSTORE: " + line);
      expect(*modseq <= inbox_.highest, s.name + ": MODSEQ " + std::to_string(*modseq) +
                                            " above the mailbox's " +
                                            std::to_string(inbox_.highest));
      e.modseq = *modseq;
      s.max_modseq = std::max(s.max_modseq, *modseq);
      if (e.uid && flags) {
        auto it = s.last_modseq.find(e.uid);
        if (it != s.last_modseq.end()) {
          expect(*modseq >= it->second.first, s.name + ": MODSEQ went back from " +
                                                  std::to_string(it->second.first) + ": " + line);
          expect(*modseq != it->second.first || *flags == it->second.second,
                 s.name + ": flags changed without a new MODSEQ: " + line);
        }
        s.last_modseq[e.uid] = {*modseq, *flags};
      }
    }
  }

  void forget(session_state& s, std::uint32_t uid) {
    if (uid == 0) return;
    s.recent.erase(uid);
    s.last_modseq.erase(uid);
  }

  /// VANISHED of one UID: a known one, or one announced by EXISTS whose UID the
  /// client has not learned (any unknown entry between its known neighbours).
  void vanish(session_state& s, std::uint32_t uid) {
    std::size_t lo = 0;  // first index after the last known UID below `uid`
    for (std::size_t i = 0; i < s.view.size(); ++i) {
      if (s.view[i].uid == uid) {
        forget(s, uid);
        s.view.erase(s.view.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
      if (s.view[i].uid && s.view[i].uid < uid) lo = i + 1;
    }
    for (std::size_t i = lo; i < s.view.size() && s.view[i].uid == 0; ++i) {
      s.view.erase(s.view.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
    fail(s.name + ": VANISHED " + std::to_string(uid) + " is not in the client's view");
  }

  /// Learns the UIDs of messages announced by EXISTS, as clients do: FETCH by
  /// sequence number; a NOOP when some were expunged meanwhile.
  void resolve(session_state& s) {
    for (int round = 0; round < 6; ++round) {
      std::size_t first = 0, last = 0;
      for (std::size_t i = 0; i < s.view.size(); ++i) {
        if (s.view[i].uid == 0 || !s.view[i].flags) {
          if (first == 0) first = i + 1;
          last = i + 1;
        }
      }
      if (first == 0) return;
      if (round % 2 == 1) {
        command(s, "NOOP");
        continue;
      }
      parse_context ctx;
      ctx.expunge_forbidden = true;
      command(s, "FETCH " + std::to_string(first) + ":" + std::to_string(last) + " (UID FLAGS)",
              ctx);
    }
    fail(s.name + ": cannot learn the UIDs of the messages in view");
  }

  // --- the steps ---------------------------------------------------------------

  void deliver(bool log = true) {
    flag_set flags;
    hamail::store::message_flags mf;
    if (chance(20)) {
      flags.insert("$Work");
      mf.keywords.push_back("$Work");
    }
    const auto d = f_.deliver(message_text(), "alice", "INBOX", mf);
    const auto uid = inbox_.add(flags);
    if (log) note("LMTP delivers UID " + std::to_string(uid) + " " + flags_text(flags));
    expect(d.uid == uid && d.modseq == inbox_.highest,
           "delivery got UID " + std::to_string(d.uid) + " modseq " + std::to_string(d.modseq) +
               ", model expected " + std::to_string(uid) + " / " + std::to_string(inbox_.highest));
  }

  session_state& any_session() { return sessions_[pick(sessions_.size())]; }

  /// A sequence set over the client's view: "a", "a:b" or "a:*"; its UIDs.
  std::pair<std::string, std::vector<std::uint32_t>> seq_set(const session_state& s) {
    const std::size_t n = s.view.size();
    std::size_t a = 1 + pick(n), b = a;
    std::string text = std::to_string(a);
    const auto form = pick(3);
    if (form == 1) {
      b = a + pick(std::min<std::size_t>(n - a + 1, 4));
      text += ":" + std::to_string(b);
    } else if (form == 2) {
      b = n;
      text += ":*";
    }
    std::vector<std::uint32_t> uids;
    for (std::size_t i = a; i <= b; ++i) uids.push_back(s.view[i - 1].uid);
    return {text, uids};
  }

  /// A UID set over the client's view (sometimes reaching past the last UID).
  std::pair<std::string, std::vector<std::uint32_t>> uid_set(const session_state& s) {
    const std::size_t n = s.view.size();
    const std::size_t a = pick(n);
    std::size_t b = std::min(n - 1, a + pick(4));
    std::string text = std::to_string(s.view[a].uid);
    std::uint32_t hi = s.view[b].uid;
    const auto form = pick(4);
    if (form == 1) {
      text += ":" + std::to_string(hi);
    } else if (form == 2) {
      text += ":*";
      hi = s.view.back().uid;
    } else if (form == 3) {
      hi = inbox_.uid_next + 3;
      text += ":" + std::to_string(hi);
    } else {
      hi = s.view[a].uid;
    }
    std::vector<std::uint32_t> uids;
    for (const auto& e : s.view) {
      if (e.uid >= s.view[a].uid && e.uid <= hi) uids.push_back(e.uid);
    }
    return {text, uids};
  }

  void one_step() {
    const auto kind = pick(100);
    if (kind < 10) {
      deliver();
      return;
    }
    session_state& s = any_session();
    if (kind < 16) {
      // APPEND by a session.
      const flag_set flags = chance(50) ? flag_set{} : random_flags();
      const std::string body = message_text();
      std::string list = flags.empty() && chance(50) ? "" : flags_text(flags) + " ";
      const auto uid = inbox_.add(flags);
      parse_context ctx;
      command(s, "APPEND INBOX " + list + "{" + std::to_string(body.size()) + "+}\r\n" + body, ctx);
      expect(ctx.appenduid == uid, s.name + ": APPENDUID is not " + std::to_string(uid));
      return;
    }
    if (kind < 22) {
      if (s.idling) {
        done(s);
      } else {
        idle(s);
      }
      return;
    }
    if (kind < 27) {
      command(s, "NOOP");
      return;
    }
    // The rest works on messages in view: learn their UIDs first.
    if (s.idling && chance(50)) return;
    resolve(s);
    if (s.view.empty()) {
      command(s, chance(50) ? "SEARCH ALL" : "UID SEARCH ALL");
      return;
    }
    const bool by_uid = chance(50);
    auto [set, uids] = by_uid ? uid_set(s) : seq_set(s);
    const std::string uid_prefix = by_uid ? "UID " : "";
    parse_context ctx;
    ctx.expunge_forbidden = !by_uid;
    if (kind >= 55 && kind < 76 && noop_others_before_expunge) {
      for (auto& o : sessions_) {
        if (&o != &s && !o.idling) command(o, "NOOP");
      }
    }
    if (kind < 55) {
      const bool add = chance(60);
      const flag_set flags = random_flags();
      const bool silent = chance(30);
      if (noop_before_store) {
        // Only when the NOOP cannot change the set (sequence numbers, UIDs).
        command(s, "NOOP");
        if (!s.view.empty()) resolve(s);
        if (s.view.empty()) return;
        auto again = by_uid ? uid_set(s) : seq_set(s);
        set = again.first;
        uids = again.second;
      }
      inbox_.store(uids, add, flags);
      command(s,
              uid_prefix + "STORE " + set + (add ? " +" : " -") +
                  (silent ? "FLAGS.SILENT " : "FLAGS ") + flags_text(flags),
              ctx);
      if (silent) {
        // The client knows what it asked for (RFC 3501 §6.4.6 .SILENT).
        for (auto& e : s.view) {
          if (!e.flags || std::find(uids.begin(), uids.end(), e.uid) == uids.end()) continue;
          for (const auto& x : flags) {
            if (add) {
              e.flags->insert(x);
            } else {
              e.flags->erase(x);
            }
          }
        }
      }
    } else if (kind < 68) {
      std::vector<std::uint32_t> gone = inbox_.deleted();
      if (by_uid) {
        std::erase_if(gone, [&](std::uint32_t u) {
          return std::find(uids.begin(), uids.end(), u) == uids.end();
        });
      }
      if (noop_before_expunge && !by_uid) command(s, "NOOP");
      inbox_.expunge(gone);
      ctx.expunge_forbidden = false;
      command(s, by_uid ? "UID EXPUNGE " + set : std::string("EXPUNGE"), ctx);
      if (s.condstore) {
        expect(ctx.tagged_highestmodseq == inbox_.highest,
               s.name + ": EXPUNGE's HIGHESTMODSEQ is not " + std::to_string(inbox_.highest));
      }
    } else if (kind < 76) {
      std::vector<std::uint32_t> moved;
      for (auto u : uids) {
        if (inbox_.find(u)) moved.push_back(u);
      }
      other_ += inbox_.expunge(moved);
      ctx.expunge_forbidden = false;
      command(s, uid_prefix + "MOVE " + set + " Other", ctx);
    } else if (kind < 88) {
      command(s, uid_prefix + "FETCH " + set + " (FLAGS)", ctx);
    } else {
      search(s, by_uid);
    }
  }

  void search(session_state& s, bool by_uid) {
    std::vector<std::uint32_t> found;
    parse_context ctx;
    ctx.expunge_forbidden = !by_uid;
    ctx.search = &found;
    // The result is checked against the view as it was when the SEARCH response came.
    const auto before = s.view;
    command(s, by_uid ? "UID SEARCH ALL" : "SEARCH ALL", ctx);
    std::set<std::uint32_t> got(found.begin(), found.end());
    for (std::size_t i = 0; i < before.size(); ++i) {
      const auto uid = before[i].uid;
      const std::uint32_t key = by_uid ? uid : static_cast<std::uint32_t>(i + 1);
      // Messages expunged but not reported yet may or may not match; the rest must.
      if (uid && inbox_.find(uid)) {
        expect(got.count(key) == 1, s.name + ": SEARCH ALL misses " + std::to_string(key));
      }
      got.erase(key);
    }
    expect(got.empty(), s.name + ": SEARCH ALL names " + std::to_string(*got.begin()) +
                            ", not in the client's view");
  }

  /// After every step: idling sessions must see every change at once.
  void after_step() {
    for (auto& s : sessions_) {
      if (!s.idling) continue;
      const auto deadline = std::chrono::steady_clock::now() + 3s;
      for (;;) {
        drain_idle(s);
        if (view_matches(s, false).empty()) break;
        if (std::chrono::steady_clock::now() > deadline) {
          fail(s.name + ": idling, the view did not follow the mailbox: " + view_matches(s, false));
        }
        f_.io.run_one_for(1ms);
      }
    }
    for (auto& s : sessions_) {
      expect(s.max_modseq <= inbox_.highest, s.name + ": saw MODSEQ above the mailbox's");
    }
  }

  /// Empty when the client's view equals the model (unknown entries match
  /// anything unless `exact`); else what differs.
  std::string view_matches(const session_state& s, bool exact) const {
    if (s.view.size() != inbox_.messages.size()) {
      return "client has " + std::to_string(s.view.size()) + " messages, mailbox " +
             std::to_string(inbox_.messages.size());
    }
    for (std::size_t i = 0; i < s.view.size(); ++i) {
      const auto& e = s.view[i];
      const auto& m = inbox_.messages[i];
      const std::string at = "message " + std::to_string(i + 1) + " ";
      if (e.uid == 0 || !e.flags) {
        if (exact) return at + "unknown to the client";
        if (e.uid == 0) continue;
      }
      if (e.uid != m.uid)
        return at + "is UID " + std::to_string(e.uid) + ", not " + std::to_string(m.uid);
      if (e.flags && *e.flags != m.flags) {
        return at + "UID " + std::to_string(m.uid) + " has " + flags_text(*e.flags) + ", not " +
               flags_text(m.flags);
      }
      if (exact && s.condstore && e.modseq != m.modseq) {
        return at + "UID " + std::to_string(m.uid) + " has MODSEQ " + std::to_string(e.modseq) +
               ", not " + std::to_string(m.modseq);
      }
    }
    return {};
  }

  /// NOOP in every session, then its view must equal the model, and FETCH 1:*
  /// must agree; the mailbox's counters must agree too.
  void full_check() {
    note("full check");
    std::set<std::uint32_t> recent_somewhere;
    for (auto& s : sessions_) {
      command(s, "NOOP");
      resolve(s);
      if (auto d = view_matches(s, false); !d.empty()) fail(s.name + " after NOOP: " + d);
      if (!inbox_.messages.empty()) {
        std::vector<std::uint32_t> fetched;
        parse_context ctx;
        ctx.expunge_forbidden = true;
        ctx.fetched = &fetched;
        command(s, s.condstore ? "FETCH 1:* (UID FLAGS MODSEQ)" : "FETCH 1:* (UID FLAGS)", ctx);
        expect(fetched.size() == inbox_.messages.size(),
               s.name + ": FETCH 1:* returned " + std::to_string(fetched.size()) + " messages");
        for (std::size_t i = 0; i < fetched.size(); ++i) {
          expect(fetched[i] == i + 1, s.name + ": FETCH 1:* out of order");
        }
        if (auto d = view_matches(s, true); !d.empty()) fail(s.name + " after FETCH 1:*: " + d);
      }
      for (auto uid : s.recent) {
        expect(recent_somewhere.insert(uid).second,
               "UID " + std::to_string(uid) + " is \\Recent in two sessions");
      }
    }
    const std::string tag = "o" + std::to_string(++observer_tags_);
    auto unquote = [](std::string t) {
      std::erase(t, '"');
      return t;
    };
    const auto out =
        unquote(observer_->command(tag + " STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ)"));
    note("observer: " + out.substr(0, out.size() - 2));
    const std::string want = "* STATUS INBOX (MESSAGES " + std::to_string(inbox_.messages.size()) +
                             " UIDNEXT " + std::to_string(inbox_.uid_next) + " HIGHESTMODSEQ " +
                             std::to_string(std::max<std::uint64_t>(inbox_.highest, 1)) + ")\r\n";
    expect(out.starts_with(want), "STATUS INBOX: got " + out + "expected " + want);
    const auto other = unquote(observer_->command(tag + "b STATUS Other (MESSAGES)"));
    expect(other.starts_with("* STATUS Other (MESSAGES " + std::to_string(other_) + ")"),
           "STATUS Other: got " + other + "expected " + std::to_string(other_) + " messages");
  }

  std::uint32_t seed_;
  int steps_;
  std::mt19937 rng_;
  int step_ = 0;
  fixture f_;
  mailbox_model inbox_;
  std::size_t other_ = 0;
  std::vector<session_state> sessions_;
  client* observer_ = nullptr;
  int observer_tags_ = 0;
  int messages_made_ = 0;
  std::deque<std::string> log_;
};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

}  // namespace

class imap_model_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(imap_model_test);
  CPPUNIT_TEST(random_sessions_agree_with_the_model);
  CPPUNIT_TEST_SUITE_END();

 public:
  void random_sessions_agree_with_the_model() {
    const int steps = env_int("HAMAIL_MODEL_STEPS", 300);
    if (const char* one = std::getenv("HAMAIL_MODEL_SEED"); one && *one) {
      model_run(static_cast<std::uint32_t>(std::strtoul(one, nullptr, 10)), steps).run();
      return;
    }
    const int seeds = env_int("HAMAIL_MODEL_SEEDS", 20);
    const std::uint32_t base = std::random_device{}() % 1000000;
    for (int i = 0; i < seeds; ++i) model_run(base + static_cast<std::uint32_t>(i), steps).run();
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(imap_model_test);

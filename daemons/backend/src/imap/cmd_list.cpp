// LIST and LSUB (RFC 3501 §6.3.8-9, RFC 9051 §6.3.9) with CHILDREN (RFC 3348),
// LIST-EXTENDED (RFC 5258: selection options SUBSCRIBED, REMOTE,
// RECURSIVEMATCH, SPECIAL-USE; return options CHILDREN, SUBSCRIBED,
// SPECIAL-USE; several patterns), SPECIAL-USE attributes (RFC 6154) and
// LIST-STATUS (RFC 5819).
//
// Every LIST answer carries \HasChildren or \HasNoChildren and the special-use
// attribute, asked for or not (RFC 5258 §4 and RFC 6154 §2 allow it); only
// \Subscribed waits for SUBSCRIBED. The work (store listing, subscriptions,
// pattern matching, STATUS) runs on the blocking pool; the answer is written
// on the session's thread.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "hamail/protocol/imap/arguments.hpp"
#include "hamail/store/mailbox_name.hpp"
#include "imap/cmd_status.hpp"
#include "imap/session.hpp"
#include "imap/special_use.hpp"
#include "imap/subscriptions.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

/// At most this many patterns in one LIST: each costs a match per mailbox.
constexpr std::size_t max_patterns = 64;

/// What a LIST or LSUB command asks for.
struct list_request {
  bool lsub = false;
  // Selection options (RFC 5258 §3.1).
  bool select_subscribed = false;
  bool select_special_use = false;
  bool recursive_match = false;
  // Return options (RFC 5258 §3.2, RFC 5819).
  bool return_subscribed = false;
  std::optional<std::vector<status_item>> status;
  /// Reference and pattern joined, decoded to UTF-8; empty when nothing can match.
  std::vector<std::string> patterns;
};

/// One line of the answer.
struct listed {
  std::string name;
  bool exists = true;  ///< a mailbox or a placeholder parent (else only subscribed)
  bool selectable = true;
  bool has_children = false;
  bool subscribed = false;
  bool childinfo = false;  ///< RECURSIVEMATCH: a descendant meets the selection
  std::optional<status_values> status;
};

/// INBOX and its children first, then the rest, each by octets.
struct mailbox_order {
  static bool in_inbox(const std::string& n) {
    return n.compare(0, 5, "INBOX") == 0 && (n.size() == 5 || n[5] == '/');
  }
  bool operator()(const std::string& a, const std::string& b) const {
    const bool ia = in_inbox(a), ib = in_inbox(b);
    if (ia != ib) return ia;
    return a < b;
  }
};

/// Decodes a reference or pattern as sent: modified UTF-7 unless UTF-8 was
/// enabled (then both are tried, as mailbox_argument does). nullopt when it
/// cannot name anything.
std::optional<std::string> decode_text(const session& s, std::string_view raw) {
  const bool ascii = std::all_of(raw.begin(), raw.end(),
                                 [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (!ascii) {
    if (!s.enabled.utf8_accept) return std::nullopt;
    return std::string(raw);
  }
  if (raw.find('&') == std::string_view::npos) return std::string(raw);
  auto decoded = store::mutf7_decode(raw);
  if (decoded) return std::move(*decoded);
  if (s.enabled.utf8_accept) return std::string(raw);
  return std::nullopt;
}

/// Collapses runs of wildcards ("%*" and "**" to "*", "%%" to "%"), which
/// bounds the matcher's work by the name's length.
std::string simplify(std::string_view pattern) {
  std::string out;
  for (char ch : pattern) {
    if ((ch == '*' || ch == '%') && !out.empty() && (out.back() == '*' || out.back() == '%')) {
      if (ch == '*') out.back() = '*';
      continue;
    }
    out += ch;
  }
  return out;
}

/// True when `name` matches `pattern`: '*' matches anything, '%' anything but
/// the delimiter. The INBOX level of a name matches without regard to case.
bool matches(std::string_view pattern, std::string_view name) {
  std::size_t literals = 0;
  for (char ch : pattern) literals += ch != '*' && ch != '%';
  if (literals > name.size()) return false;
  const bool inbox = name.compare(0, 5, "INBOX") == 0 && (name.size() == 5 || name[5] == '/');
  // reach[j]: the pattern read so far can match the first j octets of the name.
  std::vector<char> reach(name.size() + 1, 0), next(name.size() + 1, 0);
  reach[0] = 1;
  for (char p : pattern) {
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    if (p == '*' || p == '%') {
      bool on = false;
      for (std::size_t j = 0; j <= name.size(); ++j) {
        if (p == '%' && j > 0 && name[j - 1] == '/') on = false;
        on = on || reach[j];
        next[j] = on;
        any = any || on;
      }
    } else {
      for (std::size_t j = 0; j < name.size(); ++j) {
        if (!reach[j]) continue;
        const bool same =
            inbox && j < 5 ? std::toupper(static_cast<unsigned char>(p)) == name[j] : p == name[j];
        if (same) next[j + 1] = any = 1;
      }
    }
    if (!any) return false;
    reach.swap(next);
  }
  return reach[name.size()] != 0;
}

bool matches_any(const std::vector<std::string>& patterns, std::string_view name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return matches(p, name); });
}

/// The proper ancestors of a name: "a/b/c" gives "a" and "a/b".
std::vector<std::string> ancestors(std::string_view name) {
  std::vector<std::string> out;
  for (auto pos = name.find('/'); pos != std::string_view::npos; pos = name.find('/', pos + 1)) {
    out.emplace_back(name.substr(0, pos));
  }
  return out;
}

/// LSUB: the subscribed names that match, and (when a pattern ends in '%')
/// their unsubscribed parents that match, as \Noselect (RFC 3501 §6.3.9).
std::vector<listed> run_lsub(const list_request& rq, const std::vector<std::string>& subscribed) {
  std::set<std::string, mailbox_order> names, parents;
  std::vector<std::string> percent_patterns;
  for (const auto& p : rq.patterns) {
    if (!p.empty() && p.back() == '%') percent_patterns.push_back(p);
  }
  const std::set<std::string> subs(subscribed.begin(), subscribed.end());
  for (const auto& s : subscribed) {
    if (matches_any(rq.patterns, s)) names.insert(s);
    if (percent_patterns.empty()) continue;
    for (auto& a : ancestors(s)) {
      if (!subs.count(a) && matches_any(percent_patterns, a)) parents.insert(std::move(a));
    }
  }
  names.insert(parents.begin(), parents.end());
  std::vector<listed> out;
  for (const auto& n : names) {
    listed l;
    l.name = n;
    l.subscribed = subs.count(n) != 0;
    l.selectable = l.subscribed;
    out.push_back(std::move(l));
  }
  return out;
}

/// LIST: the mailboxes (and, under SUBSCRIBED, subscribed names) that match a
/// pattern and the selection options, with what the answer says of each.
result<std::vector<listed>> run_list(store::mail_store& st, const std::string& account,
                                     const list_request& rq,
                                     const std::vector<std::string>& subscribed) {
  auto boxes = st.list_mailboxes(account);
  if (!boxes) return std::move(boxes).err();
  std::map<std::string, store::mailbox_list_entry, mailbox_order> existing;
  for (auto& e : *boxes) existing.emplace(e.name, e);
  const std::set<std::string> subs(subscribed.begin(), subscribed.end());
  auto meets_selection = [&](const std::string& n) {
    if (rq.select_subscribed && !subs.count(n)) return false;
    if (rq.select_special_use) {
      auto it = existing.find(n);
      if (it == existing.end() || !it->second.selectable || special_use_of(n).empty()) return false;
    }
    return true;
  };
  std::set<std::string, mailbox_order> universe;
  for (const auto& [n, e] : existing) universe.insert(n);
  if (rq.select_subscribed) universe.insert(subscribed.begin(), subscribed.end());
  // RECURSIVEMATCH: the ancestors of whatever meets the selection.
  std::set<std::string> with_childinfo;
  if (rq.recursive_match) {
    for (const auto& n : universe) {
      if (!meets_selection(n)) continue;
      for (auto& a : ancestors(n)) with_childinfo.insert(std::move(a));
    }
    universe.insert(with_childinfo.begin(), with_childinfo.end());
  }
  std::vector<listed> out;
  for (const auto& n : universe) {
    if (!matches_any(rq.patterns, n)) continue;
    listed l;
    l.name = n;
    l.childinfo = with_childinfo.count(n) != 0;
    if (!meets_selection(n) && !l.childinfo) continue;
    auto it = existing.find(n);
    l.exists = it != existing.end();
    l.selectable = l.exists && it->second.selectable;
    l.has_children = l.exists && it->second.has_children;
    l.subscribed = subs.count(n) != 0;
    if (rq.status && l.selectable) {
      auto v = read_status(st, account, n, *rq.status);
      // A mailbox that went away or cannot be read gets no STATUS (RFC 5819 §2).
      if (v) l.status = std::move(*v);
    }
    out.push_back(std::move(l));
  }
  return out;
}

/// Reads a reference or pattern argument into UTF-8; nullopt in the result
/// when it can match nothing, an error text when it is not a string.
std::optional<std::optional<std::string>> text_argument(const session& s, const imap::value& v) {
  auto raw = imap::mailbox_name(v);
  if (!raw) return std::nullopt;
  return decode_text(s, *raw);
}

/// Parses the arguments; false after queuing BAD.
bool parse_request(session& s, const imap::command& c, list_request& rq, bool& delimiter_query) {
  std::size_t i = 0;
  const auto& a = c.args;
  if (!rq.lsub && !a.empty() && a[0].kind == imap::value_kind::list) {
    bool other_selection = false;
    for (const auto& o : a[0].items) {
      if (o.is_atom("SUBSCRIBED")) {
        rq.select_subscribed = rq.return_subscribed = other_selection = true;
      } else if (o.is_atom("SPECIAL-USE")) {
        rq.select_special_use = other_selection = true;
      } else if (o.is_atom("RECURSIVEMATCH")) {
        rq.recursive_match = true;
      } else if (!o.is_atom("REMOTE")) {  // no remote mailboxes: REMOTE changes nothing
        s.bad(c, "Unknown LIST selection option");
        return false;
      }
    }
    if (rq.recursive_match && !other_selection) {
      s.bad(c, "RECURSIVEMATCH needs another selection option");  // RFC 5258 §3.1
      return false;
    }
    i = 1;
  }
  if (a.size() < i + 2 || (rq.lsub && a.size() != 2)) {
    s.bad(c, rq.lsub ? "LSUB takes a reference and a pattern"
                     : "LIST takes a reference and a pattern");
    return false;
  }
  auto reference = text_argument(s, a[i]);
  if (!reference) {
    s.bad(c, "Invalid reference name");
    return false;
  }
  const auto& pv = a[i + 1];
  std::vector<const imap::value*> raw_patterns;
  if (pv.kind == imap::value_kind::list && !rq.lsub) {
    if (pv.items.empty()) {
      s.bad(c, "Empty pattern list");
      return false;
    }
    for (const auto& p : pv.items) raw_patterns.push_back(&p);
  } else {
    raw_patterns.push_back(&pv);
  }
  if (raw_patterns.size() > max_patterns) {
    s.bad(c, "Too many patterns");
    return false;
  }
  for (const auto* p : raw_patterns) {
    auto text = text_argument(s, *p);
    if (!text) {
      s.bad(c, "Invalid mailbox pattern");
      return false;
    }
    if (!*reference || !*text) continue;  // cannot match anything
    if (raw_patterns.size() == 1 && pv.kind != imap::value_kind::list && (*text)->empty() &&
        !rq.lsub) {
      delimiter_query = true;
    }
    std::string joined = simplify(**reference + **text);
    if (!joined.empty() &&
        std::find(rq.patterns.begin(), rq.patterns.end(), joined) == rq.patterns.end()) {
      rq.patterns.push_back(std::move(joined));
    }
  }
  i += 2;
  if (i < a.size()) {
    if (!a[i].is_atom("RETURN") || i + 2 != a.size() || a[i + 1].kind != imap::value_kind::list) {
      s.bad(c, "Unexpected arguments after the pattern");
      return false;
    }
    const auto& opts = a[i + 1].items;
    for (std::size_t k = 0; k < opts.size(); ++k) {
      const auto& o = opts[k];
      if (o.is_atom("SUBSCRIBED")) {
        rq.return_subscribed = true;
      } else if (o.is_atom("CHILDREN") || o.is_atom("SPECIAL-USE")) {
        // Always returned.
      } else if (o.is_atom("STATUS") && k + 1 < opts.size()) {
        rq.status = parse_status_items(opts[++k]);
        if (!rq.status) {
          s.bad(c, "Invalid STATUS items");
          return false;
        }
      } else {
        s.bad(c, "Unknown LIST return option");
        return false;
      }
    }
  }
  return true;
}

}  // namespace

awaitable<void> cmd_list(session& s, const imap::command& c) {
  list_request rq;
  rq.lsub = c.name == "LSUB";
  bool delimiter_query = false;
  if (!parse_request(s, c, rq, delimiter_query)) co_return;
  if (delimiter_query) {
    // RFC 3501 §6.3.8: the delimiter and the root of the reference; hamail's
    // names are not rooted, so the root is empty.
    s.untagged("LIST (\\Noselect) \"/\" \"\"");
    s.ok(c, "LIST completed");
    co_return;
  }
  const bool need_subscriptions = rq.lsub || rq.select_subscribed || rq.return_subscribed;
  std::optional<subscriptions> subs;
  if (need_subscriptions) {
    auto found = subscriptions_of(s);
    if (!found) {
      s.no_for(c, found.err(), "Cannot read subscriptions");
      co_return;
    }
    subs = std::move(*found);
  }
  store::mail_store* st = &s.ctx.store;
  const std::string account = s.user();
  auto work = [st, account, rq, subs]() -> result<std::vector<listed>> {
    std::vector<std::string> subscribed;
    if (subs) {
      auto names = subs->names();
      if (!names) return std::move(names).err();
      subscribed = std::move(*names);
    }
    if (rq.lsub) return run_lsub(rq, subscribed);
    return run_list(*st, account, rq, subscribed);
  };
  auto found = co_await s.blocking(std::move(work));
  if (!found) {
    s.no_for(c, found.err(), rq.lsub ? "Cannot list subscriptions" : "Cannot list mailboxes");
    co_return;
  }
  const bool show_subscribed = rq.return_subscribed;
  std::string childinfo;
  if (rq.recursive_match) {
    childinfo = " (\"CHILDINFO\" (";
    if (rq.select_subscribed) childinfo += "\"SUBSCRIBED\"";
    if (rq.select_special_use)
      childinfo += rq.select_subscribed ? " \"SPECIAL-USE\"" : "\"SPECIAL-USE\"";
    childinfo += "))";
  }
  for (const auto& l : *found) {
    std::string attrs;
    auto add = [&attrs](std::string_view a) {
      if (!attrs.empty()) attrs += ' ';
      attrs += a;
    };
    if (rq.lsub) {
      if (!l.subscribed) add("\\Noselect");
    } else {
      if (!l.exists) {
        add("\\NonExistent");
      } else {
        if (!l.selectable) add("\\Noselect");
        add(l.has_children ? "\\HasChildren" : "\\HasNoChildren");
      }
      if (show_subscribed && l.subscribed) add("\\Subscribed");
      if (l.selectable) {
        if (auto su = special_use_of(l.name); !su.empty()) add(su);
      }
    }
    std::string line =
        (rq.lsub ? "LSUB (" : "LIST (") + attrs + ") \"/\" " + s.mailbox_text(l.name);
    if (l.childinfo) line += childinfo;
    s.untagged(line);
    if (l.status) s.untagged(status_text(s, l.name, *rq.status, *l.status));
  }
  if (rq.status && enables_condstore(*rq.status)) s.enabled.condstore = true;
  s.ok(c, rq.lsub ? "LSUB completed" : "LIST completed");
}

}  // namespace hamail::backend::imap_session_detail

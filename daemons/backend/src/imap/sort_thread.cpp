#include "imap/sort_thread.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <unordered_map>
#include <utility>

#include "hamail/core/ascii.hpp"

namespace hamail::backend::imap_search {

namespace {

std::string lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = hamail::ascii_lower(c);
  return out;
}

search_error bad(std::string text) { return {.bad = true, .code = {}, .text = std::move(text)}; }

// Reads the charset at args[i] that SORT and THREAD require. After ENABLE
// UTF8=ACCEPT only UTF-8 is allowed, others giving BAD (RFC 6855 erratum 4029).
std::optional<search_error> read_charset(std::span<const imap::value> args, std::size_t& i,
                                         const parse_options& o) {
  if (i >= args.size() || !args[i].is_astring()) return bad("Missing charset");
  const std::string& cs = args[i].text;
  if (o.utf8_accept && !ascii_iequals(cs, "UTF-8"))
    return bad("Only UTF-8 after ENABLE UTF8=ACCEPT");
  if (!ascii_iequals(cs, "UTF-8") && !ascii_iequals(cs, "US-ASCII")) {
    return search_error{
        .bad = false, .code = "BADCHARSET (US-ASCII UTF-8)", .text = "Unsupported charset"};
  }
  ++i;
  return std::nullopt;
}

// Parses the search keys after the charset with parse_search (no RETURN, no CHARSET).
std::variant<search_query, search_error> read_keys(std::span<const imap::value> rest,
                                                   const parse_options& o) {
  if (!rest.empty() && rest.front().is_atom("CHARSET")) return bad("Unexpected CHARSET");
  parse_options inner = o;
  inner.allow_return = false;
  inner.utf8_accept = false;
  return parse_search(rest, inner);
}

// ---------------------------------------------------------------------------
// Base subject (RFC 5256 §2.1)

// Length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at the start of s, or 0.
std::size_t blob_length(std::string_view s) {
  if (s.empty() || s.front() != '[') return 0;
  std::size_t i = 1;
  while (i < s.size() && s[i] != '[' && s[i] != ']') ++i;
  if (i >= s.size() || s[i] != ']') return 0;
  ++i;
  while (i < s.size() && s[i] == ' ') ++i;
  return i;
}

// Length of a subj-refwd ("re" / "fw" ["d"]) *WSP [subj-blob] ":" at the start of s, or 0.
std::size_t refwd_length(std::string_view s) {
  std::size_t i = 0;
  if (ascii_istarts_with(s, "re")) {
    i = 2;
  } else if (ascii_istarts_with(s, "fwd")) {
    i = 3;
  } else if (ascii_istarts_with(s, "fw")) {
    i = 2;
  } else {
    return 0;
  }
  while (i < s.size() && s[i] == ' ') ++i;
  i += blob_length(s.substr(i));
  if (i >= s.size() || s[i] != ':') return 0;
  return i + 1;
}

// Removes one subj-leader ((*subj-blob subj-refwd) / WSP); true when something went.
bool remove_leader(std::string& s, bool& reply) {
  if (!s.empty() && s.front() == ' ') {
    s.erase(0, 1);
    return true;
  }
  std::size_t i = 0;
  for (;;) {
    if (const std::size_t r = refwd_length(std::string_view(s).substr(i))) {
      s.erase(0, i + r);
      reply = true;
      return true;
    }
    const std::size_t b = blob_length(std::string_view(s).substr(i));
    if (b == 0) return false;
    i += b;
  }
}

// ---------------------------------------------------------------------------
// Sorting

std::string first_mailbox(const std::vector<mime::address>& list) {
  for (const auto& a : list) {
    if (a.mailbox && a.host) return lower_copy(*a.mailbox);
  }
  return {};
}

std::string first_display(const std::vector<mime::address>& list) {
  for (const auto& a : list) {
    if (!a.mailbox || !a.host) continue;
    if (a.name) {
      std::string name = mime::decode_header_value(*a.name);
      if (!name.empty()) return fold_case(name);
    }
    return fold_case(*a.mailbox + "@" + *a.host);
  }
  return {};
}

std::int64_t sent_or_internal(const std::optional<std::string>& date,
                              const store::message_info& info) {
  if (date) {
    if (auto d = parse_header_date(*date)) return d->unix_seconds;
  }
  return info.date.time_since_epoch().count();
}

struct sort_item {
  std::uint32_t index = 0;
  std::int64_t date = 0;
  std::array<std::string, 6> text;  // cc, from, subject, to, display_from, display_to
};

std::size_t text_slot(sort_key k) {
  switch (k) {
    case sort_key::cc:
      return 0;
    case sort_key::from:
      return 1;
    case sort_key::subject:
      return 2;
    case sort_key::to:
      return 3;
    case sort_key::display_from:
      return 4;
    default:
      return 5;
  }
}

// ---------------------------------------------------------------------------
// Threading

// The message IDs in a header value: the contents of each "<...>".
std::vector<std::string> message_ids(std::string_view v, std::size_t max) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < v.size()) {
    const std::size_t open = v.find('<', i);
    if (open == std::string_view::npos) break;
    const std::size_t close = v.find('>', open + 1);
    if (close == std::string_view::npos) break;
    std::string id;
    for (char ch : v.substr(open + 1, close - open - 1)) {
      if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') id += ch;
    }
    if (!id.empty()) out.push_back(std::move(id));
    i = close + 1;
  }
  if (out.size() > max) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(max));
  return out;
}

struct container {
  int msg = -1;  // position in the thread's message list; -1 for a dummy
  int parent = -1;
  std::vector<int> children;
};

struct thread_msg {
  std::uint32_t index = 0;
  std::int64_t date = 0;
  std::string subject;  // base subject, folded
  bool reply = false;
};

class threader {
 public:
  std::vector<container> c;
  std::vector<thread_msg> msgs;

  int add(int msg) {
    c.push_back(container{.msg = msg});
    return static_cast<int>(c.size()) - 1;
  }

  // True when walking up the parents from `from` meets `target` (or from is target).
  bool reaches_up(int from, int target) const {
    for (int x = from; x != -1; x = c[static_cast<std::size_t>(x)].parent) {
      if (x == target) return true;
    }
    return false;
  }

  void unlink(int child) {
    auto& ch = c[static_cast<std::size_t>(child)];
    if (ch.parent == -1) return;
    auto& siblings = c[static_cast<std::size_t>(ch.parent)].children;
    siblings.erase(std::find(siblings.begin(), siblings.end(), child));
    ch.parent = -1;
  }

  // Makes `parent` the parent of the parentless `child` unless that makes a loop.
  void link(int parent, int child) {
    // A child without children cannot be above the parent: no walk needed.
    if (parent == child) return;
    if (!c[static_cast<std::size_t>(child)].children.empty() && reaches_up(parent, child)) return;
    c[static_cast<std::size_t>(child)].parent = parent;
    c[static_cast<std::size_t>(parent)].children.push_back(child);
  }

  // Sort key of a container: its message's date and sequence position, or its
  // first child's for a dummy (children already sorted).
  std::pair<std::int64_t, std::uint32_t> key(int x) const {
    while (c[static_cast<std::size_t>(x)].msg == -1) {
      if (c[static_cast<std::size_t>(x)].children.empty()) return {0, 0};
      x = c[static_cast<std::size_t>(x)].children.front();
    }
    const auto& m = msgs[static_cast<std::size_t>(c[static_cast<std::size_t>(x)].msg)];
    return {m.date, m.index};
  }

  // Containers in post-order (children before parents) below the given roots.
  std::vector<int> post_order(const std::vector<int>& roots) const {
    std::vector<int> out;
    std::vector<std::pair<int, std::size_t>> stack;
    for (int r : roots) {
      stack.emplace_back(r, 0);
      while (!stack.empty()) {
        auto& [x, next] = stack.back();
        const auto& kids = c[static_cast<std::size_t>(x)].children;
        if (next < kids.size()) {
          const int child = kids[next++];
          stack.emplace_back(child, 0);
        } else {
          out.push_back(x);
          stack.pop_back();
        }
      }
    }
    return out;
  }

  void sort_children(int x) {
    auto& kids = c[static_cast<std::size_t>(x)].children;
    std::stable_sort(kids.begin(), kids.end(), [&](int a, int b) { return key(a) < key(b); });
  }

  // The IMAP rendering of the given roots.
  std::string render(const std::vector<int>& roots, std::span<const store::message_info> messages,
                     bool uid) const {
    std::string out;
    auto number = [&](int x) {
      const auto index = msgs[static_cast<std::size_t>(c[static_cast<std::size_t>(x)].msg)].index;
      return std::to_string(uid ? messages[index].uid : index + 1);
    };
    struct frame {
      int node;
      std::size_t next;
    };
    std::vector<frame> stack;
    for (int root : roots) {
      out += '(';
      int cur = root;
      bool space = false;
      for (;;) {
        // A chain of single children, then a branch (or a leaf).
        for (;;) {
          const auto& n = c[static_cast<std::size_t>(cur)];
          if (n.msg != -1) {
            if (space) out += ' ';
            out += number(cur);
            space = true;
          }
          if (n.msg != -1 && n.children.size() == 1) {
            cur = n.children.front();
            continue;
          }
          break;
        }
        if (!c[static_cast<std::size_t>(cur)].children.empty()) {
          if (space) out += ' ';
          stack.push_back({cur, 0});
        }
        bool descended = false;
        while (!stack.empty()) {
          frame& f = stack.back();
          const auto& kids = c[static_cast<std::size_t>(f.node)].children;
          if (f.next > 0) out += ')';
          if (f.next < kids.size()) {
            out += '(';
            cur = kids[f.next++];
            space = false;
            descended = true;
            break;
          }
          stack.pop_back();
        }
        if (!descended) break;
      }
      out += ')';
    }
    return out;
  }
};

}  // namespace

std::string base_subject(std::string_view raw_subject, bool* is_reply) {
  // (1) Decode, turn white space into single spaces.
  const std::string decoded = mime::decode_header_value(raw_subject);
  std::string s;
  for (char ch : decoded) {
    const bool ws = ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
    if (ws) {
      if (s.empty() || s.back() != ' ') s += ' ';
    } else {
      s += ch;
    }
  }
  bool reply = false;
  for (;;) {
    // (2) Trailers: "(fwd)" and white space.
    for (;;) {
      if (!s.empty() && s.back() == ' ') {
        s.pop_back();
      } else if (s.size() >= 5 &&
                 ascii_iequals(std::string_view(s).substr(s.size() - 5), "(fwd)")) {
        s.erase(s.size() - 5);
        reply = true;
      } else {
        break;
      }
    }
    // (3)-(5) Leaders and blobs.
    for (bool changed = true; changed;) {
      changed = false;
      while (remove_leader(s, reply)) changed = true;
      const std::size_t b = blob_length(s);
      if (b > 0 && b < s.size()) {
        s.erase(0, b);
        changed = true;
      }
    }
    // (6) "[fwd: ...]".
    if (s.size() >= 6 && ascii_istarts_with(s, "[fwd:") && s.back() == ']') {
      s = s.substr(5, s.size() - 6);
      reply = true;
      continue;
    }
    break;
  }
  if (is_reply) *is_reply = reply;
  return s;
}

std::variant<sort_query, search_error> parse_sort(std::span<const imap::value> args,
                                                  const parse_options& o) {
  sort_query q;
  std::size_t i = 0;
  return_options ret;
  if (o.allow_return && i < args.size() && args[i].is_atom("RETURN")) {
    // RETURN options are read by parse_search from a synthetic argument list.
    std::vector<imap::value> head(args.begin(),
                                  args.begin() + std::min<std::size_t>(2, args.size()));
    head.push_back(imap::value{.kind = imap::value_kind::atom, .text = "ALL"});
    auto parsed = parse_search(head, o);
    if (auto* e = std::get_if<search_error>(&parsed)) return std::move(*e);
    ret = std::get<search_query>(parsed).ret;
    i += 2;
  }
  if (i >= args.size() || args[i].kind != imap::value_kind::list || args[i].items.empty())
    return bad("SORT needs a list of sort criteria");
  bool reverse = false;
  for (const auto& item : args[i].items) {
    if (item.is_atom("REVERSE")) {
      if (reverse) return bad("REVERSE twice");
      reverse = true;
      continue;
    }
    struct named {
      std::string_view name;
      sort_key key;
    };
    static constexpr std::array<named, 9> keys = {{{"ARRIVAL", sort_key::arrival},
                                                   {"CC", sort_key::cc},
                                                   {"DATE", sort_key::date},
                                                   {"FROM", sort_key::from},
                                                   {"SIZE", sort_key::size},
                                                   {"SUBJECT", sort_key::subject},
                                                   {"TO", sort_key::to},
                                                   {"DISPLAYFROM", sort_key::display_from},
                                                   {"DISPLAYTO", sort_key::display_to}}};
    const auto it = std::find_if(keys.begin(), keys.end(),
                                 [&](const named& n) { return item.is_atom(n.name); });
    if (it == keys.end()) return bad("Unknown sort criterion");
    q.criteria.push_back({.key = it->key, .reverse = reverse});
    reverse = false;
  }
  if (reverse) return bad("REVERSE needs a sort criterion");
  ++i;
  if (auto e = read_charset(args, i, o)) return std::move(*e);
  auto keys = read_keys(args.subspan(i), o);
  if (auto* e = std::get_if<search_error>(&keys)) return std::move(*e);
  q.search = std::move(std::get<search_query>(keys));
  q.search.ret = ret;
  return q;
}

std::variant<thread_query, search_error> parse_thread(std::span<const imap::value> args,
                                                      const parse_options& o) {
  thread_query q;
  if (args.empty()) return bad("THREAD needs an algorithm");
  if (args[0].is_atom("REFERENCES")) {
    q.algorithm = thread_algorithm::references;
  } else if (args[0].is_atom("ORDEREDSUBJECT")) {
    q.algorithm = thread_algorithm::orderedsubject;
  } else {
    return bad("Unknown threading algorithm");
  }
  std::size_t i = 1;
  if (auto e = read_charset(args, i, o)) return std::move(*e);
  auto keys = read_keys(args.subspan(i), o);
  if (auto* e = std::get_if<search_error>(&keys)) return std::move(*e);
  q.search = std::move(std::get<search_query>(keys));
  return q;
}

std::vector<std::uint32_t> sort_messages(std::span<const std::uint32_t> indices,
                                         std::span<const sort_criterion> criteria,
                                         std::span<const store::message_info> messages,
                                         const envelope_fn& envelope) {
  bool need_env = false;
  for (const auto& cr : criteria) {
    if (cr.key != sort_key::arrival && cr.key != sort_key::size) need_env = true;
  }
  std::vector<sort_item> items(indices.size());
  for (std::size_t n = 0; n < indices.size(); ++n) {
    sort_item& it = items[n];
    it.index = indices[n];
    const store::message_info& info = messages[it.index];
    const mime::envelope* env = need_env && envelope ? envelope(it.index) : nullptr;
    it.date = info.date.time_since_epoch().count();
    for (const auto& cr : criteria) {
      switch (cr.key) {
        case sort_key::date:
          it.date = sent_or_internal(env ? env->date : std::nullopt, info);
          break;
        case sort_key::cc:
          if (env) it.text[0] = first_mailbox(env->cc);
          break;
        case sort_key::from:
          if (env) it.text[1] = first_mailbox(env->from);
          break;
        case sort_key::subject:
          if (env && env->subject) it.text[2] = fold_case(base_subject(*env->subject));
          break;
        case sort_key::to:
          if (env) it.text[3] = first_mailbox(env->to);
          break;
        case sort_key::display_from:
          if (env) it.text[4] = first_display(env->from);
          break;
        case sort_key::display_to:
          if (env) it.text[5] = first_display(env->to);
          break;
        default:
          break;
      }
    }
  }
  // ARRIVAL and DATE both use `date`; a query naming both keeps DATE's value,
  // so ARRIVAL reads the internal date directly.
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    const sort_item& a = items[x];
    const sort_item& b = items[y];
    for (const auto& cr : criteria) {
      int cmp = 0;
      switch (cr.key) {
        case sort_key::arrival: {
          const auto da = messages[a.index].date, db = messages[b.index].date;
          cmp = da < db ? -1 : da > db ? 1 : 0;
          break;
        }
        case sort_key::date:
          cmp = a.date < b.date ? -1 : a.date > b.date ? 1 : 0;
          break;
        case sort_key::size: {
          const auto sa = messages[a.index].size, sb = messages[b.index].size;
          cmp = sa < sb ? -1 : sa > sb ? 1 : 0;
          break;
        }
        default: {
          const std::size_t slot = text_slot(cr.key);
          cmp = a.text[slot].compare(b.text[slot]);
          cmp = cmp < 0 ? -1 : cmp > 0 ? 1 : 0;
          break;
        }
      }
      if (cr.reverse) cmp = -cmp;
      if (cmp != 0) return cmp < 0;
    }
    return a.index < b.index;
  });
  std::vector<std::uint32_t> out;
  out.reserve(order.size());
  for (auto o : order) out.push_back(items[o].index);
  return out;
}

thread_fields thread_fields_of(std::string_view raw, const mime::message_structure& structure) {
  thread_fields f;
  const auto& env = structure.env;
  if (env.subject) f.subject = *env.subject;
  if (env.date) f.date = *env.date;
  if (env.message_id) f.message_id = *env.message_id;
  if (env.in_reply_to) f.in_reply_to = *env.in_reply_to;
  const auto& h = structure.root.header;
  if (h.end > raw.size() || h.begin > h.end) return f;
  std::string_view header = raw.substr(h.begin, h.size());
  bool in_refs = false;
  bool found = false;
  while (!header.empty()) {
    const std::size_t eol = header.find('\n');
    std::string_view line = header.substr(0, eol);
    header = eol == std::string_view::npos ? std::string_view{} : header.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool continuation = !line.empty() && (line.front() == ' ' || line.front() == '\t');
    if (continuation) {
      if (in_refs) {
        f.references += ' ';
        f.references += line;
      }
      continue;
    }
    in_refs = false;
    if (found) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (ascii_iequals(name, "references")) {
      f.references = std::string(line.substr(colon + 1));
      in_refs = found = true;
    }
  }
  return f;
}

std::string thread_messages(thread_algorithm algorithm, std::span<const std::uint32_t> indices,
                            std::span<const store::message_info> messages,
                            const thread_fields_fn& fields, bool uid) {
  threader t;
  std::vector<thread_fields> raw(indices.size());
  t.msgs.resize(indices.size());
  for (std::size_t n = 0; n < indices.size(); ++n) {
    auto& m = t.msgs[n];
    m.index = indices[n];
    if (fields) raw[n] = fields(m.index);
    std::optional<std::string> date;
    if (!raw[n].date.empty()) date = raw[n].date;
    m.date = sent_or_internal(date, messages[m.index]);
    m.subject = fold_case(base_subject(raw[n].subject, &m.reply));
  }
  // Process in sequence order whatever order indices came in.
  std::vector<int> seq(indices.size());
  std::iota(seq.begin(), seq.end(), 0);
  std::stable_sort(seq.begin(), seq.end(), [&](int a, int b) {
    return t.msgs[static_cast<std::size_t>(a)].index < t.msgs[static_cast<std::size_t>(b)].index;
  });

  std::vector<int> roots;
  if (algorithm == thread_algorithm::orderedsubject) {
    std::vector<int> order = seq;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      const auto& x = t.msgs[static_cast<std::size_t>(a)];
      const auto& y = t.msgs[static_cast<std::size_t>(b)];
      if (x.subject != y.subject) return x.subject < y.subject;
      if (x.date != y.date) return x.date < y.date;
      return x.index < y.index;
    });
    int root = -1;
    const std::string* subject = nullptr;
    for (int m : order) {
      const int node = t.add(m);
      const std::string& s = t.msgs[static_cast<std::size_t>(m)].subject;
      if (root != -1 && *subject == s) {
        t.link(root, node);
      } else {
        root = node;
        subject = &s;
        roots.push_back(node);
      }
    }
    std::stable_sort(roots.begin(), roots.end(), [&](int a, int b) { return t.key(a) < t.key(b); });
    return t.render(roots, messages, uid);
  }

  // (1) Link messages by their references.
  std::unordered_map<std::string, int> table;
  auto container_of = [&](const std::string& id) {
    auto [it, inserted] = table.emplace(id, -1);
    if (inserted) it->second = t.add(-1);
    return it->second;
  };
  for (int m : seq) {
    const auto& f = raw[static_cast<std::size_t>(m)];
    std::vector<std::string> refs = message_ids(f.references, 256);
    if (refs.empty()) refs = message_ids(f.in_reply_to, 1);
    auto own = message_ids(f.message_id, 1);
    // (1B) This message's container: a dummy made for its ID is filled in; a
    // missing or duplicate ID gets a container of its own.
    int self = -1;
    if (!own.empty()) {
      auto it = table.find(own.front());
      if (it == table.end()) {
        self = t.add(m);
        table.emplace(own.front(), self);
      } else if (t.c[static_cast<std::size_t>(it->second)].msg == -1) {
        self = it->second;
        t.c[static_cast<std::size_t>(self)].msg = m;
      }
    }
    if (self == -1) self = t.add(m);
    // (1A) Chain the references, keeping existing links and avoiding loops.
    int prev = -1;
    for (const auto& r : refs) {
      const int cur = container_of(r);
      if (prev != -1 && prev != cur && t.c[static_cast<std::size_t>(cur)].parent == -1)
        t.link(prev, cur);
      prev = cur;
    }
    // (1C) The last reference is the parent; this message's own references win.
    t.unlink(self);
    if (prev != -1 && prev != self) t.link(prev, self);
  }
  // (2) The root set.
  for (std::size_t x = 0; x < t.c.size(); ++x) {
    if (t.c[x].parent == -1) roots.push_back(static_cast<int>(x));
  }
  // (4) Prune dummies, children first.
  auto prune_list = [&](std::vector<int>& list, bool root_level) {
    std::vector<int> out;
    for (int x : list) {
      auto& n = t.c[static_cast<std::size_t>(x)];
      if (n.msg != -1) {
        out.push_back(x);
      } else if (n.children.empty()) {
        continue;
      } else if (root_level && n.children.size() > 1) {
        out.push_back(x);
      } else {
        for (int k : n.children) out.push_back(k);
        n.children.clear();
      }
    }
    list = std::move(out);
  };
  for (int x : t.post_order(roots)) {
    auto& kids = t.c[static_cast<std::size_t>(x)].children;
    prune_list(kids, false);
    for (int k : kids) t.c[static_cast<std::size_t>(k)].parent = x;
  }
  prune_list(roots, true);
  for (int r : roots) t.c[static_cast<std::size_t>(r)].parent = -1;
  // (5) Merge root threads with the same subject.
  auto thread_subject = [&](int x) -> const std::string& {
    static const std::string none;
    const auto& n = t.c[static_cast<std::size_t>(x)];
    int m = n.msg;
    if (m == -1 && !n.children.empty()) m = t.c[static_cast<std::size_t>(n.children.front())].msg;
    return m == -1 ? none : t.msgs[static_cast<std::size_t>(m)].subject;
  };
  auto is_dummy = [&](int x) { return t.c[static_cast<std::size_t>(x)].msg == -1; };
  auto is_reply = [&](int x) {
    return !is_dummy(x) &&
           t.msgs[static_cast<std::size_t>(t.c[static_cast<std::size_t>(x)].msg)].reply;
  };
  std::map<std::string, int> subjects;
  for (int x : roots) {
    const std::string& s = thread_subject(x);
    if (s.empty()) continue;
    auto [it, inserted] = subjects.emplace(s, x);
    if (!inserted && !is_dummy(it->second) &&
        (is_dummy(x) || (is_reply(it->second) && !is_reply(x))))
      it->second = x;
  }
  std::vector<char> is_root(t.c.size() + roots.size(), 0);
  for (int x : roots) is_root[static_cast<std::size_t>(x)] = 1;
  std::vector<int> extra;
  for (int x : roots) {
    if (!is_root[static_cast<std::size_t>(x)]) continue;
    const std::string s = thread_subject(x);
    if (s.empty()) continue;
    auto it = subjects.find(s);
    int other = it->second;
    if (other == x) continue;
    if (is_dummy(other) && is_dummy(x)) {
      for (int k : t.c[static_cast<std::size_t>(x)].children) {
        t.c[static_cast<std::size_t>(k)].parent = other;
        t.c[static_cast<std::size_t>(other)].children.push_back(k);
      }
      t.c[static_cast<std::size_t>(x)].children.clear();
      is_root[static_cast<std::size_t>(x)] = 0;
    } else if (is_dummy(other) || (is_reply(x) && !is_reply(other))) {
      is_root[static_cast<std::size_t>(x)] = 0;
      t.link(other, x);
    } else {
      const int dummy = t.add(-1);
      if (is_root.size() <= static_cast<std::size_t>(dummy)) is_root.resize(t.c.size(), 0);
      is_root[static_cast<std::size_t>(other)] = 0;
      is_root[static_cast<std::size_t>(x)] = 0;
      t.link(dummy, other);
      t.link(dummy, x);
      is_root[static_cast<std::size_t>(dummy)] = 1;
      extra.push_back(dummy);
      it->second = dummy;
    }
  }
  std::vector<int> final_roots;
  for (int x : roots) {
    if (is_root[static_cast<std::size_t>(x)]) final_roots.push_back(x);
  }
  for (int x : extra) {
    if (is_root[static_cast<std::size_t>(x)]) final_roots.push_back(x);
  }
  // (6) Sort siblings by date, children before parents.
  for (int x : t.post_order(final_roots)) t.sort_children(x);
  std::stable_sort(final_roots.begin(), final_roots.end(),
                   [&](int a, int b) { return t.key(a) < t.key(b); });
  return t.render(final_roots, messages, uid);
}

}  // namespace hamail::backend::imap_search

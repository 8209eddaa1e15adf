#include "imap/search.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "hamail/core/ascii.hpp"
#include "hamail/protocol/imap/arguments.hpp"

namespace hamail::backend::imap_search {

namespace {

search_error bad(std::string text) { return {.bad = true, .code = {}, .text = std::move(text)}; }

// ---------------------------------------------------------------------------
// Parsing

class key_parser {
 public:
  key_parser(std::span<const imap::value> args, const parse_options& o, search_query& q)
      : args_(args), o_(o), q_(q) {}

  // Parses args_[i..] into the root's children; false with error_ set.
  bool parse_all(std::size_t i) {
    if (i >= args_.size()) return fail("Missing search key");
    while (i < args_.size()) {
      search_key k;
      if (!parse_key(args_, i, 1, k)) return false;
      q_.root.children.push_back(std::move(k));
    }
    return true;
  }

  search_error error_;

 private:
  bool fail(std::string text) {
    error_ = bad(std::move(text));
    return false;
  }

  // The next argument as a string (astring), or null.
  const std::string* next_string(std::span<const imap::value> a, std::size_t& i) {
    if (i >= a.size() || !a[i].is_astring()) return nullptr;
    return &a[i++].text;
  }

  bool next_number(std::span<const imap::value> a, std::size_t& i, std::string_view key,
                   std::uint64_t& out) {
    if (i >= a.size() || a[i].kind != imap::value_kind::number)
      return fail(std::string(key) + " needs a number");
    out = a[i++].number;
    return true;
  }

  bool next_date(std::span<const imap::value> a, std::size_t& i, std::string_view key,
                 std::uint64_t& out) {
    if (i >= a.size() || a[i].kind == imap::value_kind::list || a[i].has_section)
      return fail(std::string(key) + " needs a date");
    const auto d = imap::parse_date(a[i].text);
    if (!d) return fail(std::string(key) + " needs a date like 1-Feb-1994");
    // Stored biased so that dates before 1970 stay unsigned and ordered.
    out = static_cast<std::uint64_t>(imap::days_since_epoch(*d) + (std::int64_t{1} << 40));
    ++i;
    return true;
  }

  bool next_set(std::string_view text, search_key& k) {
    imap::sequence_error e{};
    auto set = imap::sequence_set::parse(text, o_.max_ranges, &e);
    if (!set) {
      return fail(e == imap::sequence_error::too_many_ranges ? "Too many ranges in sequence set"
                                                             : "Invalid sequence set");
    }
    if (set->is_saved_result()) q_.uses_saved = true;
    k.set = std::move(*set);
    return true;
  }

  bool parse_key(std::span<const imap::value> a, std::size_t& i, std::size_t depth, search_key& k) {
    if (depth > o_.max_depth) return fail("Search keys nested too deeply");
    if (++keys_ > o_.max_keys) return fail("Too many search keys");
    const imap::value& v = a[i++];
    if (v.kind == imap::value_kind::list) {
      if (v.items.empty()) return fail("Empty search key list");
      k.kind = key_kind::and_;
      std::span<const imap::value> inner(v.items);
      std::size_t j = 0;
      while (j < inner.size()) {
        search_key c;
        if (!parse_key(inner, j, depth + 1, c)) return false;
        k.children.push_back(std::move(c));
      }
      return true;
    }
    if (v.has_section || (v.kind != imap::value_kind::atom && v.kind != imap::value_kind::number))
      return fail("Invalid search key");
    const char first = v.text.empty() ? '\0' : v.text.front();
    if ((first >= '0' && first <= '9') || first == '*' || first == '$') {
      k.kind = key_kind::sequence;
      return next_set(v.text, k);
    }
    const std::string name = ascii_upper_copy(v.text);
    struct flag_key {
      std::string_view name;
      key_kind kind;
      store::system_flag flag;
    };
    static constexpr std::array<flag_key, 10> flags = {{
        {"ANSWERED", key_kind::flag, store::system_flag::answered},
        {"DELETED", key_kind::flag, store::system_flag::deleted},
        {"DRAFT", key_kind::flag, store::system_flag::draft},
        {"FLAGGED", key_kind::flag, store::system_flag::flagged},
        {"SEEN", key_kind::flag, store::system_flag::seen},
        {"UNANSWERED", key_kind::unflag, store::system_flag::answered},
        {"UNDELETED", key_kind::unflag, store::system_flag::deleted},
        {"UNDRAFT", key_kind::unflag, store::system_flag::draft},
        {"UNFLAGGED", key_kind::unflag, store::system_flag::flagged},
        {"UNSEEN", key_kind::unflag, store::system_flag::seen},
    }};
    for (const auto& f : flags) {
      if (name == f.name) {
        k.kind = f.kind;
        k.flag = f.flag;
        return true;
      }
    }
    if (name == "ALL") return k.kind = key_kind::all, true;
    if (name == "RECENT") return k.kind = key_kind::recent, true;
    if (name == "OLD") return k.kind = key_kind::not_recent, true;
    if (name == "NEW") return k.kind = key_kind::new_, true;
    if (name == "KEYWORD" || name == "UNKEYWORD") {
      k.kind = name == "KEYWORD" ? key_kind::keyword : key_kind::unkeyword;
      const std::string* s = next_string(a, i);
      if (!s || s->empty()) return fail(name + " needs a flag keyword");
      k.field = *s;
      return true;
    }
    if (name == "LARGER" || name == "SMALLER") {
      k.kind = name == "LARGER" ? key_kind::larger : key_kind::smaller;
      return next_number(a, i, name, k.number);
    }
    struct date_key {
      std::string_view name;
      key_kind kind;
    };
    static constexpr std::array<date_key, 6> dates = {{
        {"BEFORE", key_kind::before},
        {"ON", key_kind::on},
        {"SINCE", key_kind::since},
        {"SENTBEFORE", key_kind::sent_before},
        {"SENTON", key_kind::sent_on},
        {"SENTSINCE", key_kind::sent_since},
    }};
    for (const auto& d : dates) {
      if (name == d.name) {
        k.kind = d.kind;
        if (name.starts_with("SENT")) q_.needs_header = true;
        return next_date(a, i, name, k.number);
      }
    }
    if (name == "OLDER" || name == "YOUNGER") {
      k.kind = name == "OLDER" ? key_kind::older : key_kind::younger;
      if (!next_number(a, i, name, k.number)) return false;
      if (k.number == 0) return fail(name + " needs a positive number");
      return true;
    }
    static constexpr std::array<std::string_view, 5> address_keys = {"BCC", "CC", "FROM", "SUBJECT",
                                                                     "TO"};
    for (auto field : address_keys) {
      if (name == field) {
        k.kind = key_kind::header;
        k.field = fold_case(field);
        const std::string* s = next_string(a, i);
        if (!s) return fail(name + " needs a string");
        k.value = fold_case(*s);
        q_.needs_header = true;
        return true;
      }
    }
    if (name == "HEADER") {
      k.kind = key_kind::header;
      const std::string* f = next_string(a, i);
      const std::string* s = f ? next_string(a, i) : nullptr;
      if (!f || !s) return fail("HEADER needs a field name and a string");
      k.field = fold_case(*f);
      k.value = fold_case(*s);
      q_.needs_header = true;
      return true;
    }
    if (name == "BODY" || name == "TEXT") {
      k.kind = name == "BODY" ? key_kind::body : key_kind::text;
      const std::string* s = next_string(a, i);
      if (!s) return fail(name + " needs a string");
      k.value = fold_case(*s);
      q_.needs_body = true;
      if (k.kind == key_kind::text) q_.needs_header = true;
      return true;
    }
    if (name == "UID") {
      k.kind = key_kind::uid;
      if (i >= a.size() ||
          (a[i].kind != imap::value_kind::atom && a[i].kind != imap::value_kind::number) ||
          a[i].has_section)
        return fail("UID needs a sequence set");
      return next_set(a[i++].text, k);
    }
    if (name == "MODSEQ") {
      k.kind = key_kind::modseq;
      q_.uses_modseq = true;
      // MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5);
      // the entry is accepted and ignored.
      if (i + 2 < a.size() && a[i].kind != imap::value_kind::number && a[i].is_astring()) {
        const auto& type = a[i + 1];
        if (!(type.is_atom("priv") || type.is_atom("shared") || type.is_atom("all")))
          return fail("MODSEQ entry type must be priv, shared or all");
        i += 2;
      }
      if (!next_number(a, i, name, k.number)) return false;
      if (k.number > (std::uint64_t{1} << 63) - 1) return fail("MODSEQ value out of range");
      return true;
    }
    if (name == "NOT") {
      k.kind = key_kind::not_;
      if (i >= a.size()) return fail("NOT needs a search key");
      k.children.emplace_back();
      return parse_key(a, i, depth + 1, k.children.back());
    }
    if (name == "OR") {
      k.kind = key_kind::or_;
      for (int n = 0; n < 2; ++n) {
        if (i >= a.size()) return fail("OR needs two search keys");
        k.children.emplace_back();
        if (!parse_key(a, i, depth + 1, k.children.back())) return false;
      }
      return true;
    }
    return fail("Unknown search key " + std::string(v.text.substr(0, 40)));
  }

  std::span<const imap::value> args_;
  const parse_options& o_;
  search_query& q_;
  std::size_t keys_ = 0;
};

// ---------------------------------------------------------------------------
// Case folding

void put_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

char32_t fold_char(char32_t c) noexcept {
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x130) return 'i';
    if (c == 0x178) return 0xFF;
    if (c == 0x17F) return 's';
    const bool even_upper = (c <= 0x137) || (c >= 0x14A && c <= 0x177);
    if (even_upper) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x139 && c <= 0x148) return (c % 2 == 1) ? c + 1 : c;
    if (c >= 0x179 && c <= 0x17E) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
  if (c == 0x3C2) return 0x3C3;  // final sigma
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

// ---------------------------------------------------------------------------
// Evaluation

// message_flags::has_keyword without linking the store library (the fuzz
// harness builds these sources alone).
bool has_keyword(const store::message_flags& f, std::string_view keyword) noexcept {
  return std::any_of(f.keywords.begin(), f.keywords.end(),
                     [&](const std::string& k) { return ascii_iequals(k, keyword); });
}

struct node {
  const search_key* key = nullptr;
  int cost = 0;  // 0: message_info only; 1: header; 2: body
  std::vector<imap::sequence_range> ranges;
  bool saved = false;
  std::vector<node> children;
};

bool in_ranges(const std::vector<imap::sequence_range>& ranges, std::uint32_t n) {
  auto it =
      std::upper_bound(ranges.begin(), ranges.end(), n,
                       [](std::uint32_t x, const imap::sequence_range& r) { return x < r.first; });
  return it != ranges.begin() && std::prev(it)->last >= n;
}

struct evaluator {
  const search_context& c;
  std::vector<store::imap_uid> saved;  // sorted

  // Per-message state, reset for each message.
  std::size_t index = 0;
  bool loaded = false;
  const message_content* content = nullptr;
  bool headers_folded = false;
  std::string headers;
  bool body_folded = false;
  std::string body;
  bool sent_done = false;
  std::optional<header_date> sent;

  node prepare(const search_key& k) {
    node n;
    n.key = &k;
    switch (k.kind) {
      case key_kind::header:
      case key_kind::sent_before:
      case key_kind::sent_on:
      case key_kind::sent_since:
        n.cost = 1;
        break;
      case key_kind::body:
      case key_kind::text:
        n.cost = 2;
        break;
      case key_kind::sequence:
      case key_kind::uid:
        if (k.set.is_saved_result()) {
          n.saved = true;
        } else if (k.kind == key_kind::sequence) {
          n.ranges = k.set.resolve(static_cast<std::uint32_t>(c.messages.size()));
        } else if (!c.messages.empty()) {
          n.ranges = k.set.resolve(c.messages.back().uid);
        }
        break;
      default:
        break;
    }
    for (const auto& child : k.children) {
      n.children.push_back(prepare(child));
      n.cost = std::max(n.cost, n.children.back().cost);
    }
    if (k.kind == key_kind::and_ || k.kind == key_kind::or_) {
      std::stable_sort(n.children.begin(), n.children.end(),
                       [](const node& a, const node& b) { return a.cost < b.cost; });
    }
    return n;
  }

  void start(std::size_t i) {
    index = i;
    loaded = false;
    content = nullptr;
    headers_folded = body_folded = sent_done = false;
    sent.reset();
  }

  const message_content* get() {
    if (!loaded) {
      loaded = true;
      content = c.load ? c.load(index) : nullptr;
    }
    return content;
  }

  const std::string* folded_headers() {
    if (!headers_folded) {
      headers_folded = true;
      headers.clear();
      const auto* m = get();
      if (!m || !m->text) return nullptr;
      headers = fold_case(m->text->headers);
    }
    return content && content->text ? &headers : nullptr;
  }

  const std::string* folded_body() {
    if (!body_folded) {
      body_folded = true;
      body.clear();
      const auto* m = get();
      if (!m || !m->text) return nullptr;
      body = fold_case(m->text->body);
    }
    return content && content->text ? &body : nullptr;
  }

  // Calls f(value) for each header line of field `name` (folded); stops when f returns true.
  template <class F>
  bool any_field(std::string_view name, F&& f) {
    const std::string* h = folded_headers();
    if (!h) return false;
    std::string_view rest = *h;
    while (!rest.empty()) {
      const std::size_t eol = rest.find('\n');
      const std::string_view line = rest.substr(0, eol);
      rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || line.substr(0, colon) != name) continue;
      std::string_view value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (f(value)) return true;
    }
    return false;
  }

  const std::optional<header_date>& sent_date() {
    if (!sent_done) {
      sent_done = true;
      const auto* m = get();
      if (m && m->structure && m->structure->env.date) {
        sent = parse_header_date(*m->structure->env.date);
      } else if (m && m->text) {
        any_field("date", [&](std::string_view v) {
          sent = parse_header_date(v);
          return true;
        });
      }
    }
    return sent;
  }

  bool match(const node& n) {
    const search_key& k = *n.key;
    const store::message_info& m = c.messages[index];
    switch (k.kind) {
      case key_kind::all:
        return true;
      case key_kind::and_:
        for (const auto& ch : n.children)
          if (!match(ch)) return false;
        return true;
      case key_kind::or_:
        for (const auto& ch : n.children)
          if (match(ch)) return true;
        return false;
      case key_kind::not_:
        return !match(n.children.front());
      case key_kind::flag:
        return m.flags.has(k.flag);
      case key_kind::unflag:
        return !m.flags.has(k.flag);
      case key_kind::recent:
        return m.recent;
      case key_kind::not_recent:
        return !m.recent;
      case key_kind::new_:
        return m.recent && !m.flags.has(store::system_flag::seen);
      case key_kind::keyword:
        return has_keyword(m.flags, k.field);
      case key_kind::unkeyword:
        return !has_keyword(m.flags, k.field);
      case key_kind::larger:
        return m.size > k.number;
      case key_kind::smaller:
        return m.size < k.number;
      case key_kind::before:
      case key_kind::on:
      case key_kind::since: {
        const auto secs = m.date.time_since_epoch().count();
        const std::int64_t day = (secs >= 0 ? secs : secs - 86399) / 86400;
        return compare_day(k.kind, day, k.number);
      }
      case key_kind::sent_before:
      case key_kind::sent_on:
      case key_kind::sent_since: {
        const auto& d = sent_date();
        if (!d) return false;
        const std::int64_t day =
            imap::days_since_epoch(imap::date{.year = d->year, .month = d->month, .day = d->day});
        return compare_day(k.kind, day, k.number);
      }
      case key_kind::older:
      case key_kind::younger: {
        const std::int64_t age = (c.now - m.date).count();
        const auto limit = static_cast<std::int64_t>(std::min<std::uint64_t>(k.number, INT64_MAX));
        return k.kind == key_kind::older ? age > limit : age <= limit;
      }
      case key_kind::header:
        return any_field(
            k.field, [&](std::string_view v) { return v.find(k.value) != std::string_view::npos; });
      case key_kind::body: {
        const std::string* b = folded_body();
        return b && b->find(k.value) != std::string::npos;
      }
      case key_kind::text: {
        const std::string* h = folded_headers();
        if (h && h->find(k.value) != std::string::npos) return true;
        const std::string* b = folded_body();
        return b && b->find(k.value) != std::string::npos;
      }
      case key_kind::sequence:
      case key_kind::uid:
        if (n.saved) return std::binary_search(saved.begin(), saved.end(), m.uid);
        return in_ranges(n.ranges,
                         k.kind == key_kind::uid ? m.uid : static_cast<std::uint32_t>(index + 1));
      case key_kind::modseq:
        return m.modseq >= k.number;
    }
    return false;
  }

  static bool compare_day(key_kind kind, std::int64_t day, std::uint64_t biased) {
    const std::int64_t want = static_cast<std::int64_t>(biased) - (std::int64_t{1} << 40);
    switch (kind) {
      case key_kind::before:
      case key_kind::sent_before:
        return day < want;
      case key_kind::on:
      case key_kind::sent_on:
        return day == want;
      default:
        return day >= want;
    }
  }
};

// ---------------------------------------------------------------------------
// Dates

bool is_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

unsigned to_unsigned(std::string_view s) {
  unsigned v = 0;
  for (char ch : s) v = v * 10 + static_cast<unsigned>(ch - '0');
  return v;
}

bool leap(int y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in(int y, unsigned m) noexcept {
  static constexpr unsigned d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[m - 1];
}

}  // namespace

std::string fold_case(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out += ascii_lower(static_cast<char>(b));
      ++i;
      continue;
    }
    // Decode one well-formed 2- or 3-octet sequence; anything else is copied.
    std::size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (len == 1 || i + len > text.size()) {
      out += static_cast<char>(b);
      ++i;
      continue;
    }
    char32_t cp = b & (0x7F >> len);
    bool ok = true;
    for (std::size_t j = 1; j < len; ++j) {
      const auto cb = static_cast<unsigned char>(text[i + j]);
      if ((cb & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (!ok || len == 4) {
      out.append(text.substr(i, ok ? len : 1));
      i += ok ? len : 1;
      continue;
    }
    const char32_t folded = fold_char(cp);
    if (folded == cp)
      out.append(text.substr(i, len));
    else
      put_utf8(out, folded);
    i += len;
  }
  return out;
}

std::variant<search_query, search_error> parse_search(std::span<const imap::value> args,
                                                      const parse_options& o) {
  search_query q;
  q.root.kind = key_kind::and_;
  std::size_t i = 0;
  if (o.allow_return && i < args.size() && args[i].is_atom("RETURN")) {
    if (i + 1 >= args.size() || args[i + 1].kind != imap::value_kind::list)
      return bad("RETURN needs a list of options");
    q.ret.extended = true;
    for (const auto& opt : args[i + 1].items) {
      if (opt.is_atom("MIN"))
        q.ret.min = true;
      else if (opt.is_atom("MAX"))
        q.ret.max = true;
      else if (opt.is_atom("ALL"))
        q.ret.all = true;
      else if (opt.is_atom("COUNT"))
        q.ret.count = true;
      else if (opt.is_atom("SAVE"))
        q.ret.save = true;
      else
        return bad("Unknown RETURN option");
    }
    if (args[i + 1].items.empty()) q.ret.all = true;
    i += 2;
  }
  if (i < args.size() && args[i].is_atom("CHARSET")) {
    if (i + 1 >= args.size() || !args[i + 1].is_astring()) return bad("CHARSET needs a name");
    if (o.utf8_accept) return bad("CHARSET is not allowed after ENABLE UTF8=ACCEPT");
    const std::string& cs = args[i + 1].text;
    if (!ascii_iequals(cs, "UTF-8") && !ascii_iequals(cs, "US-ASCII")) {
      return search_error{
          .bad = false, .code = "BADCHARSET (US-ASCII UTF-8)", .text = "Unsupported charset"};
    }
    i += 2;
  }
  key_parser p(args, o, q);
  if (!p.parse_all(i)) return std::move(p.error_);
  return q;
}

std::vector<std::uint32_t> evaluate(const search_query& q, const search_context& c) {
  evaluator e{.c = c, .saved = {c.saved.begin(), c.saved.end()}};
  std::sort(e.saved.begin(), e.saved.end());
  const node root = e.prepare(q.root);
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < c.messages.size(); ++i) {
    e.start(i);
    if (e.match(root)) out.push_back(static_cast<std::uint32_t>(i));
  }
  return out;
}

std::vector<std::uint32_t> to_numbers(std::span<const std::uint32_t> indices,
                                      std::span<const store::message_info> messages, bool uid) {
  std::vector<std::uint32_t> out;
  out.reserve(indices.size());
  for (auto i : indices) out.push_back(uid ? messages[i].uid : i + 1);
  return out;
}

std::vector<store::imap_uid> saved_uids(const return_options& ret,
                                        std::span<const std::uint32_t> indices,
                                        std::span<const store::message_info> messages) {
  std::vector<store::imap_uid> out;
  if (indices.empty()) return out;
  if ((ret.min || ret.max) && !ret.all && !ret.count) {
    if (ret.min) out.push_back(messages[indices.front()].uid);
    if (ret.max && (!ret.min || indices.size() > 1)) out.push_back(messages[indices.back()].uid);
    return out;
  }
  return to_numbers(indices, messages, true);
}

store::mod_seq highest_modseq(std::span<const std::uint32_t> indices,
                              std::span<const store::message_info> messages) {
  store::mod_seq best = 0;
  for (auto i : indices) best = std::max(best, messages[i].modseq);
  return best;
}

std::string sequence_set_string(std::span<const std::uint32_t> sorted) {
  std::string out;
  std::size_t i = 0;
  while (i < sorted.size()) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(sorted[i]);
    if (j > i) out += ':' + std::to_string(sorted[j]);
    i = j + 1;
  }
  return out;
}

std::string esearch_response(std::string_view tag, bool uid, const return_options& ret,
                             std::span<const std::uint32_t> numbers, store::mod_seq modseq) {
  std::string out = "* ESEARCH";
  if (!tag.empty()) {
    out += " (TAG \"";
    out += tag;
    out += "\")";
  }
  if (uid) out += " UID";
  if (!numbers.empty()) {
    if (ret.min) out += " MIN " + std::to_string(numbers.front());
    if (ret.max) out += " MAX " + std::to_string(numbers.back());
  }
  if (ret.count) out += " COUNT " + std::to_string(numbers.size());
  if (ret.all && !numbers.empty()) out += " ALL " + sequence_set_string(numbers);
  if (modseq != 0 && !numbers.empty()) out += " MODSEQ " + std::to_string(modseq);
  return out;
}

std::string search_response(std::span<const std::uint32_t> numbers, store::mod_seq modseq,
                            std::string_view name) {
  std::string out = "* ";
  out += name;
  for (auto n : numbers) out += ' ' + std::to_string(n);
  if (modseq != 0 && !numbers.empty()) out += " (MODSEQ " + std::to_string(modseq) + ')';
  return out;
}

std::optional<header_date> parse_header_date(std::string_view text) {
  // Tokens split on white space and commas; comments dropped.
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  int comment = 0;
  while (i < text.size() && tokens.size() < 12) {
    const char ch = text[i];
    if (ch == '(') {
      ++comment;
      ++i;
      continue;
    }
    if (ch == ')') {
      if (comment > 0) --comment;
      ++i;
      continue;
    }
    if (comment > 0 || ch == ' ' || ch == '\t' || ch == ',' || ch == '\r' || ch == '\n') {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != ',' &&
           text[i] != '(' && text[i] != '\r' && text[i] != '\n')
      ++i;
    tokens.push_back(text.substr(start, i - start));
  }
  std::size_t t = 0;
  static constexpr std::array<std::string_view, 7> day_names = {"mon", "tue", "wed", "thu",
                                                                "fri", "sat", "sun"};
  if (t < tokens.size() && tokens[t].size() >= 3 &&
      std::any_of(day_names.begin(), day_names.end(),
                  [&](std::string_view d) { return ascii_iequals(tokens[t].substr(0, 3), d); }))
    ++t;
  if (t + 3 > tokens.size()) return std::nullopt;
  const auto day_tok = tokens[t], month_tok = tokens[t + 1], year_tok = tokens[t + 2];
  t += 3;
  if (!is_digits(day_tok) || day_tok.size() > 2 || month_tok.size() < 3 || !is_digits(year_tok) ||
      year_tok.size() < 2 || year_tok.size() > 4)
    return std::nullopt;
  static constexpr std::array<std::string_view, 12> months = {
      "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  header_date d;
  for (unsigned m = 0; m < 12; ++m) {
    if (ascii_iequals(month_tok.substr(0, 3), months[m])) d.month = m + 1;
  }
  if (d.month == 0) return std::nullopt;
  d.year = static_cast<int>(to_unsigned(year_tok));
  if (year_tok.size() == 2) d.year += d.year < 50 ? 2000 : 1900;
  if (year_tok.size() == 3) d.year += 1900;
  d.day = to_unsigned(day_tok);
  if (d.year < 1900 || d.day < 1 || d.day > days_in(d.year, d.month)) return std::nullopt;
  unsigned hour = 0, minute = 0, second = 0;
  int zone = 0;
  if (t < tokens.size()) {
    const auto tm = tokens[t++];
    const auto c1 = tm.find(':');
    if (c1 == std::string_view::npos) return std::nullopt;
    const auto c2 = tm.find(':', c1 + 1);
    const auto hh = tm.substr(0, c1);
    const auto mm =
        tm.substr(c1 + 1, c2 == std::string_view::npos ? std::string_view::npos : c2 - c1 - 1);
    const auto ss = c2 == std::string_view::npos ? std::string_view("0") : tm.substr(c2 + 1);
    if (!is_digits(hh) || !is_digits(mm) || !is_digits(ss) || hh.size() > 2 || mm.size() > 2 ||
        ss.size() > 2)
      return std::nullopt;
    hour = to_unsigned(hh);
    minute = to_unsigned(mm);
    second = to_unsigned(ss);
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    if (t < tokens.size()) {
      const auto z = tokens[t];
      if ((z.front() == '+' || z.front() == '-') && z.size() == 5 && is_digits(z.substr(1))) {
        const int v = static_cast<int>(to_unsigned(z.substr(1)));
        const int minutes = (v / 100) * 60 + v % 100;
        zone = z.front() == '-' ? -minutes : minutes;
      } else {
        struct named {
          std::string_view name;
          int hours;
        };
        static constexpr std::array<named, 8> zones = {{{"EST", -5},
                                                        {"EDT", -4},
                                                        {"CST", -6},
                                                        {"CDT", -5},
                                                        {"MST", -7},
                                                        {"MDT", -6},
                                                        {"PST", -8},
                                                        {"PDT", -7}}};
        for (const auto& nz : zones) {
          if (ascii_iequals(z, nz.name)) zone = nz.hours * 60;
        }
      }
    }
  }
  const std::int64_t days =
      imap::days_since_epoch(imap::date{.year = d.year, .month = d.month, .day = d.day});
  d.unix_seconds =
      days * 86400 + std::int64_t{hour} * 3600 + minute * 60 + second - std::int64_t{zone} * 60;
  return d;
}

}  // namespace hamail::backend::imap_search

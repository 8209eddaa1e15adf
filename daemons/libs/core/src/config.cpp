#include "hamail/core/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace hamail::config {

namespace detail {

/// One TOML table that code has opened as a section.
struct table_entry {
  const toml::table* table;
  std::string path;
  std::uint32_t line;
  std::set<std::string, std::less<>> requested;  // every key code asked for, present or not
};

struct document_state {
  std::string file;
  toml::table root;
  std::vector<problem> problems;
  std::vector<table_entry> tables;  // [0] is the root
  std::unordered_map<const toml::table*, std::size_t> table_index;
  std::unordered_set<const toml::node*> consumed;
};

}  // namespace detail

namespace {

// Configuration files are written by operators, not attackers, but a path
// pointing at /dev/zero should still fail instead of eating memory.
constexpr std::size_t max_file_size = 16 * 1024 * 1024;

std::uint32_t line_of(const toml::node& n) noexcept { return n.source().begin.line; }

/// A key as it would be written in TOML: bare when it can be, quoted otherwise.
std::string key_text(std::string_view key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (bare) return std::string(key);
  std::string out = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string join(std::string_view parent, std::string_view key) {
  if (parent.empty()) return key_text(key);
  return std::string(parent) + "." + key_text(key);
}

/// Appends `text` with control characters escaped, so a reason stays one line.
void append_escaped(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
}

/// The type of a node with its article, for "expected X, found Y".
std::string_view type_name(const toml::node& n) noexcept {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

/// Optimal string alignment distance: edits, with an adjacent swap counting one.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

/// Parses an unsigned decimal prefix of `text`; false on no digits or overflow.
bool parse_digits(std::string_view& text, std::uint64_t& out) {
  std::size_t i = 0;
  std::uint64_t v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
    ++i;
  }
  if (i == 0) return false;
  text.remove_prefix(i);
  out = v;
  return true;
}

bool checked_multiply(std::uint64_t a, std::uint64_t b, std::uint64_t limit, std::uint64_t& out) {
  if (a != 0 && b > limit / a) return false;
  out = a * b;
  return true;
}

constexpr std::string_view duration_hint =
    "expected a whole number with a unit: ms, s, m, h or d (e.g. \"30s\"); a bare number means "
    "seconds";
constexpr std::string_view size_hint =
    "expected a whole number of bytes, optionally with a binary unit: k/KiB, M/MiB, G/GiB or T/TiB "
    "(e.g. \"10M\")";

}  // namespace

std::string quote(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    append_escaped(out, std::string_view(&c, 1));
  }
  out += '"';
  return out;
}

// ---------------------------------------------------------------------------
// problem

std::string problem::to_string() const {
  std::string out = file;
  if (line != 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += reason;
  return out;
}

// ---------------------------------------------------------------------------
// section

namespace {

struct lookup {
  detail::table_entry& entry;
  const toml::node* node;  // null when absent
};

lookup find(detail::document_state& doc, std::size_t table, std::string_view key) {
  auto& entry = doc.tables[table];
  if (entry.requested.find(key) == entry.requested.end()) entry.requested.emplace(key);
  const toml::node* n = entry.table->get(key);
  if (n != nullptr) doc.consumed.insert(n);
  return {entry, n};
}

void record(detail::document_state& doc, std::string key, std::string reason, std::uint32_t line) {
  doc.problems.push_back(problem{doc.file, std::move(key), std::move(reason), line});
}

std::size_t register_table(detail::document_state& doc, const toml::table& t, std::string path) {
  if (auto it = doc.table_index.find(&t); it != doc.table_index.end()) return it->second;
  doc.tables.push_back(detail::table_entry{&t, std::move(path), line_of(t), {}});
  const std::size_t index = doc.tables.size() - 1;
  doc.table_index.emplace(&t, index);
  return index;
}

}  // namespace

std::string section::get_string(std::string_view key, std::string default_value) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) return default_value;
  if (const auto* s = n->as_string()) return s->get();
  record(*doc_, join(path_, key), "expected a string, found " + std::string(type_name(*n)),
         line_of(*n));
  return default_value;
}

std::string section::require_string(std::string_view key) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) {
    record(*doc_, join(path_, key), "missing required key", table_ == 0 ? 0 : entry.line);
    return {};
  }
  const auto* s = n->as_string();
  if (s == nullptr) {
    record(*doc_, join(path_, key), "expected a string, found " + std::string(type_name(*n)),
           line_of(*n));
    return {};
  }
  if (s->get().empty()) {
    record(*doc_, join(path_, key), "must not be empty", line_of(*n));
    return {};
  }
  return s->get();
}

std::int64_t section::get_integer(std::string_view key, std::int64_t default_value,
                                  std::int64_t min, std::int64_t max) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) return default_value;
  const auto* i = n->as_integer();
  if (i == nullptr) {
    record(*doc_, join(path_, key), "expected an integer, found " + std::string(type_name(*n)),
           line_of(*n));
    return default_value;
  }
  const std::int64_t v = i->get();
  if (v < min || v > max) {
    std::string reason = std::to_string(v) + " is out of range: ";
    if (min == std::numeric_limits<std::int64_t>::min())
      reason += "must be at most " + std::to_string(max);
    else if (max == std::numeric_limits<std::int64_t>::max())
      reason += "must be at least " + std::to_string(min);
    else
      reason += "must be between " + std::to_string(min) + " and " + std::to_string(max);
    record(*doc_, join(path_, key), std::move(reason), line_of(*n));
    return default_value;
  }
  return v;
}

bool section::get_bool(std::string_view key, bool default_value) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) return default_value;
  if (const auto* b = n->as_boolean()) return b->get();
  record(*doc_, join(path_, key),
         "expected a boolean (true or false), found " + std::string(type_name(*n)), line_of(*n));
  return default_value;
}

std::chrono::milliseconds section::get_duration(std::string_view key,
                                                std::chrono::milliseconds default_value) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) return default_value;
  constexpr auto max_ms =
      static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
  // A plain copy for the lambda: clang before 16 cannot capture a structured binding.
  const toml::node* const node = n;
  auto fail = [&](std::string reason) {
    record(*doc_, join(path_, key), std::move(reason), line_of(*node));
    return default_value;
  };

  std::uint64_t ms = 0;
  if (const auto* i = n->as_integer()) {
    if (i->get() < 0)
      return fail("negative duration " + std::to_string(i->get()) + " is not allowed");
    if (!checked_multiply(static_cast<std::uint64_t>(i->get()), 1000, max_ms, ms))
      return fail("duration " + std::to_string(i->get()) + " seconds is too large");
    return std::chrono::milliseconds(ms);
  }
  const auto* s = n->as_string();
  if (s == nullptr)
    return fail("expected a duration, found " + std::string(type_name(*n)) + "; " +
                std::string(duration_hint));

  std::string_view text = s->get();
  if (!text.empty() && text.front() == '-')
    return fail("negative duration " + quote(text) + " is not allowed");
  std::uint64_t count = 0;
  std::string_view rest = text;
  if (!parse_digits(rest, count))
    return fail("bad duration " + quote(text) + ": " + std::string(duration_hint));
  std::uint64_t unit_ms = 0;
  if (rest.empty() || rest == "s")
    unit_ms = 1000;
  else if (rest == "ms")
    unit_ms = 1;
  else if (rest == "m")
    unit_ms = 60 * 1000;
  else if (rest == "h")
    unit_ms = 60 * 60 * 1000;
  else if (rest == "d")
    unit_ms = 24 * 60 * 60 * 1000;
  else
    return fail("bad duration " + quote(text) + ": " + std::string(duration_hint));
  if (!checked_multiply(count, unit_ms, max_ms, ms))
    return fail("duration " + quote(text) + " is too large");
  return std::chrono::milliseconds(ms);
}

std::uint64_t section::get_size(std::string_view key, std::uint64_t default_value) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) return default_value;
  // A plain copy for the lambda: clang before 16 cannot capture a structured binding.
  const toml::node* const node = n;
  auto fail = [&](std::string reason) {
    record(*doc_, join(path_, key), std::move(reason), line_of(*node));
    return default_value;
  };

  if (const auto* i = n->as_integer()) {
    if (i->get() < 0) return fail("negative size " + std::to_string(i->get()) + " is not allowed");
    return static_cast<std::uint64_t>(i->get());
  }
  const auto* s = n->as_string();
  if (s == nullptr)
    return fail("expected a size, found " + std::string(type_name(*n)) + "; " +
                std::string(size_hint));

  std::string_view text = s->get();
  if (!text.empty() && text.front() == '-')
    return fail("negative size " + quote(text) + " is not allowed");
  std::uint64_t count = 0;
  std::string_view rest = text;
  if (!parse_digits(rest, count))
    return fail("bad size " + quote(text) + ": " + std::string(size_hint));
  unsigned shift = 0;
  if (rest.empty() || rest == "B")
    shift = 0;
  else if (rest == "k" || rest == "K" || rest == "KiB")
    shift = 10;
  else if (rest == "m" || rest == "M" || rest == "MiB")
    shift = 20;
  else if (rest == "g" || rest == "G" || rest == "GiB")
    shift = 30;
  else if (rest == "t" || rest == "T" || rest == "TiB")
    shift = 40;
  else
    return fail("bad size " + quote(text) + ": " + std::string(size_hint));
  std::uint64_t bytes = 0;
  if (!checked_multiply(count, std::uint64_t{1} << shift, std::numeric_limits<std::uint64_t>::max(),
                        bytes))
    return fail("size " + quote(text) + " is too large");
  return bytes;
}

std::vector<std::string> section::get_string_list(std::string_view key) {
  auto [entry, n] = find(*doc_, table_, key);
  std::vector<std::string> out;
  if (n == nullptr) return out;
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    record(*doc_, join(path_, key),
           "expected an array of strings, found " + std::string(type_name(*n)), line_of(*n));
    return out;
  }
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::node& element = *arr->get(i);
    if (const auto* s = element.as_string()) {
      out.push_back(s->get());
    } else {
      record(*doc_, join(path_, key) + "[" + std::to_string(i) + "]",
             "expected a string, found " + std::string(type_name(element)), line_of(element));
    }
  }
  return out;
}

std::string section::get_enum(std::string_view key, std::initializer_list<std::string_view> allowed,
                              std::string default_value) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) return default_value;
  std::string choices;
  for (auto a : allowed) {
    if (!choices.empty()) choices += ", ";
    choices += a;
  }
  const auto* s = n->as_string();
  if (s == nullptr) {
    record(*doc_, join(path_, key),
           "expected one of " + choices + ", found " + std::string(type_name(*n)), line_of(*n));
    return default_value;
  }
  if (std::find(allowed.begin(), allowed.end(), std::string_view(s->get())) != allowed.end())
    return s->get();
  record(*doc_, join(path_, key), quote(s->get()) + " is not one of: " + choices, line_of(*n));
  return default_value;
}

std::optional<section> section::table(std::string_view key) {
  auto [entry, n] = find(*doc_, table_, key);
  if (n == nullptr) return std::nullopt;
  const std::string path = join(path_, key);
  const auto* t = n->as_table();
  if (t == nullptr) {
    record(*doc_, path, "expected a table ([" + path + "]), found " + std::string(type_name(*n)),
           line_of(*n));
    return std::nullopt;
  }
  return section(doc_, register_table(*doc_, *t, path), path);
}

std::vector<section> section::tables(std::string_view key) {
  auto [entry, n] = find(*doc_, table_, key);
  std::vector<section> out;
  if (n == nullptr) return out;
  const std::string path = join(path_, key);
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    std::string reason =
        "expected an array of tables ([[" + path + "]]), found " + std::string(type_name(*n));
    if (n->is_table()) reason += " ([" + path + "])";
    record(*doc_, path, std::move(reason), line_of(*n));
    return out;
  }
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::node& element = *arr->get(i);
    std::string element_path = path + "[" + std::to_string(i) + "]";
    if (const auto* t = element.as_table()) {
      const std::size_t index = register_table(*doc_, *t, element_path);
      out.push_back(section(doc_, index, std::move(element_path)));
    } else {
      record(*doc_, std::move(element_path),
             "expected a table, found " + std::string(type_name(element)), line_of(element));
    }
  }
  return out;
}

bool section::has(std::string_view key) const {
  auto& entry = doc_->tables[table_];
  if (entry.requested.find(key) == entry.requested.end()) entry.requested.emplace(key);
  return entry.table->get(key) != nullptr;
}

void section::add_problem(std::string_view key, std::string reason) {
  const auto& entry = doc_->tables[table_];
  std::uint32_t line = table_ == 0 ? 0 : entry.line;
  std::string path = path_;
  if (!key.empty()) {
    path = join(path_, key);
    if (const toml::node* n = entry.table->get(key)) line = line_of(*n);
  }
  record(*doc_, std::move(path), std::move(reason), line);
}

std::string section::path() const { return path_; }

// ---------------------------------------------------------------------------
// document

document::document(std::unique_ptr<detail::document_state> state) : state_(std::move(state)) {}
document::document(document&&) noexcept = default;
document& document::operator=(document&&) noexcept = default;
document::~document() = default;

result<document> document::parse(std::string_view text, std::string file_name) {
  auto state = std::make_unique<detail::document_state>();
  state->file = file_name;
  try {
    state->root = toml::parse(text, std::string_view(file_name));
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::string detail = file_name;
    if (where.line != 0) detail += ":" + std::to_string(where.line);
    detail += ": TOML syntax error";
    if (where.column != 0) detail += " at column " + std::to_string(where.column);
    detail += ": ";
    append_escaped(detail, e.description());
    return error::permanent(errc::config_error, "configuration file has a syntax error",
                            std::move(detail));
  }
  // The root table is only ever reached through root(); register it up front so
  // its index is 0 and finish() always starts there.
  register_table(*state, state->root, {});
  state->tables[0].line = 0;
  return document(std::move(state));
}

result<document> document::load_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto fail = [&](std::string reason) {
    return error::permanent(errc::config_error, "configuration file cannot be read",
                            name + ": " + reason);
  };

  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::string("cannot open: ") + std::strerror(errno));
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("is a directory, not a file");

  std::string text;
  char buffer[16384];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return fail(std::string("cannot read: ") + std::strerror(errno));
    }
    if (got == 0) break;
    if (text.size() + static_cast<std::size_t>(got) > max_file_size)
      return fail("larger than " + std::to_string(max_file_size / (1024 * 1024)) +
                  " MiB; not a configuration file?");
    text.append(buffer, static_cast<std::size_t>(got));
  }
  return parse(text, name);
}

section document::root() { return section(state_.get(), 0, {}); }

namespace {

void walk_unknown(detail::document_state& doc, std::size_t table_index) {
  // Nothing registers tables during the walk, so the index stays valid.
  const toml::table& t = *doc.tables[table_index].table;
  const std::string path = doc.tables[table_index].path;

  for (auto&& [k, v] : t) {
    const std::string_view key = k.str();
    if (doc.consumed.find(&v) == doc.consumed.end()) {
      const auto& requested = doc.tables[table_index].requested;
      std::string reason = "unknown key";
      std::string best;
      std::size_t best_distance = 3;
      for (const auto& candidate : requested) {
        if (t.get(candidate) != nullptr) continue;  // set already; not what a typo meant
        const auto longer = std::max(key.size(), candidate.size());
        if (longer - std::min(key.size(), candidate.size()) > 2) continue;
        const std::size_t d = edit_distance(key, candidate);
        if (d < best_distance && d < key.size()) {
          best_distance = d;
          best = candidate;
        }
      }
      if (!best.empty()) reason += "; did you mean '" + best + "'?";
      const std::uint32_t line = k.source().begin.line != 0 ? k.source().begin.line : line_of(v);
      record(doc, join(path, key), std::move(reason), line);
      doc.consumed.insert(&v);  // report once even if finish() runs again
      continue;
    }
    // Only descend into what code opened as a section: a table read with the
    // wrong getter has already been reported as a bad type.
    if (const auto* sub = v.as_table()) {
      if (auto it = doc.table_index.find(sub); it != doc.table_index.end())
        walk_unknown(doc, it->second);
    } else if (const auto* arr = v.as_array()) {
      for (const auto& element : *arr) {
        if (const auto* sub_table = element.as_table()) {
          if (auto it = doc.table_index.find(sub_table); it != doc.table_index.end())
            walk_unknown(doc, it->second);
        }
      }
    }
  }
}

}  // namespace

void document::finish() { walk_unknown(*state_, 0); }

const std::vector<problem>& document::problems() const { return state_->problems; }

bool document::ok() const { return state_->problems.empty(); }

std::string document::report() const {
  std::vector<const problem*> sorted;
  sorted.reserve(state_->problems.size());
  for (const auto& p : state_->problems) sorted.push_back(&p);
  // By line, so the report reads top to bottom; problems without a line (a
  // missing key at top level) go last.
  std::stable_sort(sorted.begin(), sorted.end(), [](const problem* a, const problem* b) {
    const auto key = [](const problem* p) {
      return p->line == 0 ? std::numeric_limits<std::uint32_t>::max() : p->line;
    };
    return key(a) < key(b);
  });
  std::string out;
  for (const auto* p : sorted) {
    out += p->to_string();
    out += '\n';
  }
  return out;
}

}  // namespace hamail::config

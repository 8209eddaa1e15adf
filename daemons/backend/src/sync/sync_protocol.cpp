#include "sync/sync_protocol.hpp"

#include <charconv>

namespace hamail::backend::sync {

namespace {

bool is_control(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

bool has_control(std::string_view s) noexcept {
  for (unsigned char c : s)
    if (is_control(c)) return true;
  return false;
}

/// Upper-cases ASCII letters.
std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

/// The next space-separated word of `rest` (removed from it); empty at the end or when
/// `rest` starts with a space (two spaces in a row).
std::string_view next_word(std::string_view& rest) {
  const auto sp = rest.find(' ');
  std::string_view w = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  return w;
}

/// A decimal number of at most `max_digits` digits, no sign, within [0, max].
template <class T>
std::optional<T> number(std::string_view s, T max, std::size_t max_digits = 20) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v > static_cast<std::uint64_t>(max))
    return std::nullopt;
  return static_cast<T>(v);
}

std::optional<std::int64_t> signed_number(std::string_view s) {
  bool neg = false;
  if (!s.empty() && s.front() == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  auto v = number<std::uint64_t>(s, static_cast<std::uint64_t>(INT64_MAX), 19);
  if (!v) return std::nullopt;
  return neg ? -static_cast<std::int64_t>(*v) : static_cast<std::int64_t>(*v);
}

bool valid_host(std::string_view h) noexcept {
  if (h.empty() || h.size() > max_host) return false;
  for (char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return false;
  }
  return true;
}

parsed_command fail(std::string why) { return {std::nullopt, std::move(why)}; }

/// The account argument: the next word, checked.
std::optional<std::string> account_arg(std::string_view& rest, std::string& why) {
  const auto a = next_word(rest);
  if (a.empty()) {
    why = "missing account";
    return std::nullopt;
  }
  if (!valid_account_id(a)) {
    why = "invalid account id";
    return std::nullopt;
  }
  return std::string(a);
}

}  // namespace

bool valid_account_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 255 || id.front() == '.') return false;
  if (id.find("..") != std::string_view::npos) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == '@' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_store_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63) return false;
  const char f = name.front();
  if (!((f >= 'a' && f <= 'z') || (f >= '0' && f <= '9'))) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::string> path_problem(std::string_view path) {
  if (path.empty()) return "empty path";
  if (path.size() > max_path) return "path too long";
  if (path.front() == '/') return "absolute path";
  if (has_control(path)) return "control character in path";
  std::string_view rest = path;
  for (;;) {
    const auto slash = rest.find('/');
    const auto part = rest.substr(0, slash);
    if (part.empty()) return "empty path component";
    if (part == "." || part == "..") return "dot component in path";
    if (part.size() > max_path_component) return "path component too long";
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return std::nullopt;
}

std::string_view to_string(verb v) noexcept {
  switch (v) {
    case verb::auth:
      return "AUTH";
    case verb::list:
      return "LIST";
    case verb::get:
      return "GET";
    case verb::fence:
      return "FENCE";
    case verb::unfence:
      return "UNFENCE";
    case verb::purge:
      return "PURGE";
    case verb::pull:
      return "PULL";
    case verb::discard:
      return "DISCARD";
  }
  return "?";
}

parsed_command parse_command(std::string_view line) {
  if (line.size() > max_command_line) return fail("line too long");
  if (has_control(line)) return fail("control character in command");
  std::string_view rest = line;
  const std::string keyword = upper(next_word(rest));
  if (keyword.empty()) return fail("missing command");
  command c;
  std::string why;
  if (keyword == "AUTH") {
    c.what = verb::auth;
    if (rest.empty()) return fail("missing secret");
    if (rest.size() > max_secret) return fail("secret too long");
    c.secret = std::string(rest);
    return {std::move(c), {}};
  }
  if (keyword == "LIST" || keyword == "UNFENCE" || keyword == "PURGE" || keyword == "DISCARD") {
    c.what = keyword == "LIST"      ? verb::list
             : keyword == "UNFENCE" ? verb::unfence
             : keyword == "PURGE"   ? verb::purge
                                    : verb::discard;
    auto a = account_arg(rest, why);
    if (!a) return fail(why);
    if (!rest.empty() || line.back() == ' ') return fail("unexpected argument");
    c.account = std::move(*a);
    return {std::move(c), {}};
  }
  if (keyword == "GET") {
    c.what = verb::get;
    auto a = account_arg(rest, why);
    if (!a) return fail(why);
    c.account = std::move(*a);
    if (auto p = path_problem(rest)) return fail(*p);
    c.path = std::string(rest);
    return {std::move(c), {}};
  }
  if (keyword == "FENCE") {
    c.what = verb::fence;
    auto a = account_arg(rest, why);
    if (!a) return fail(why);
    c.account = std::move(*a);
    const std::string how = upper(next_word(rest));
    if (how != "LOCKED" && how != "MOVED") return fail("FENCE needs LOCKED or MOVED");
    c.moved = how == "MOVED";
    const auto st = next_word(rest);
    if (!valid_store_name(st)) return fail("invalid store name");
    c.store = std::string(st);
    if (!c.moved) {
      auto lease = number<std::uint32_t>(next_word(rest), max_lease_seconds, 6);
      if (!lease || *lease == 0) return fail("lease must be 1 to 86400 seconds");
      c.lease_seconds = *lease;
    }
    if (!rest.empty() || line.back() == ' ') return fail("unexpected argument");
    return {std::move(c), {}};
  }
  if (keyword == "PULL") {
    c.what = verb::pull;
    auto a = account_arg(rest, why);
    if (!a) return fail(why);
    c.account = std::move(*a);
    const auto host = next_word(rest);
    if (!valid_host(host)) return fail("invalid host");
    c.host = std::string(host);
    auto port = number<std::uint16_t>(next_word(rest), 65535, 5);
    if (!port || *port == 0) return fail("invalid port");
    c.port = *port;
    bool seen_final = false;
    while (!rest.empty()) {
      const std::string opt = upper(next_word(rest));
      if (opt == "FINAL" && !seen_final) {
        seen_final = true;
        c.final = true;
      } else if (opt == "RATE" && !c.rate) {
        auto r = number<std::uint64_t>(next_word(rest), 1'000'000'000'000ull, 13);
        if (!r) return fail("invalid RATE");
        c.rate = *r;
      } else {
        return fail("unexpected argument");
      }
    }
    if (line.back() == ' ') return fail("unexpected argument");
    return {std::move(c), {}};
  }
  return fail("unknown command");
}

line_step line_splitter::feed(std::string_view input) {
  line_step step;
  while (step.consumed < input.size()) {
    const auto avail = input.substr(step.consumed);
    const auto lf = avail.find('\n');
    if (skipping_) {
      if (lf == std::string_view::npos) {
        step.consumed = input.size();
        return step;
      }
      step.consumed += lf + 1;
      skipping_ = false;
      continue;
    }
    if (lf == std::string_view::npos) {
      // Room for max_line octets plus the CR that may precede the LF.
      if (partial_.size() + avail.size() > max_line_ + 1) {
        partial_.clear();
        skipping_ = true;
        step.consumed = input.size();
        step.status = line_status::too_long;
        return step;
      }
      partial_.append(avail);
      step.consumed = input.size();
      return step;
    }
    std::size_t length = partial_.size() + lf;  // octets before the LF
    const bool cr = lf > 0 ? avail[lf - 1] == '\r' : (!partial_.empty() && partial_.back() == '\r');
    if (cr) --length;
    step.consumed += lf + 1;
    if (length > max_line_) {
      partial_.clear();
      step.status = line_status::too_long;
      return step;
    }
    partial_.append(avail.substr(0, lf));
    if (cr) partial_.pop_back();
    step.line = std::move(partial_);
    partial_.clear();
    step.status = line_status::line;
    return step;
  }
  return step;
}

parsed_reply parse_reply(std::string_view line) {
  auto bad = [](std::string why) { return parsed_reply{std::nullopt, std::move(why)}; };
  if (line.size() > max_reply_line) return bad("reply line too long");
  reply r;
  std::string_view rest = line;
  if (rest.starts_with("* ")) {
    rest.remove_prefix(2);
    const auto word = next_word(rest);
    if (word == "F") {
      auto size = number<std::uint64_t>(next_word(rest), UINT64_MAX);
      auto mtime = signed_number(next_word(rest));
      if (!size || !mtime) return bad("bad F line");
      if (auto p = path_problem(rest)) return bad(*p);
      r.kind = reply::kind_t::file;
      r.size = *size;
      r.mtime_ns = *mtime;
      r.path = std::string(rest);
      return {std::move(r), {}};
    }
    if (word == "D") {
      if (auto p = path_problem(rest)) return bad(*p);
      r.kind = reply::kind_t::dir;
      r.path = std::string(rest);
      return {std::move(r), {}};
    }
    if (word == "DATA") {
      if (rest.size() < 3 || rest.front() != '{' || rest.back() != '}') return bad("bad DATA line");
      auto n = number<std::uint64_t>(rest.substr(1, rest.size() - 2), UINT64_MAX);
      if (!n) return bad("bad DATA size");
      r.kind = reply::kind_t::data;
      r.size = *n;
      return {std::move(r), {}};
    }
    if (word == "PROGRESS") {
      for (auto& n : r.numbers) {
        auto v = number<std::uint64_t>(next_word(rest), UINT64_MAX);
        if (!v) return bad("bad PROGRESS line");
        n = *v;
      }
      if (!rest.empty()) return bad("bad PROGRESS line");
      r.kind = reply::kind_t::progress;
      return {std::move(r), {}};
    }
    r.kind = reply::kind_t::other;
    r.text = std::string(line.substr(2));
    return {std::move(r), {}};
  }
  const auto word = next_word(rest);
  if (word == "OK") {
    r.kind = reply::kind_t::ok;
    r.text = std::string(rest);
    return {std::move(r), {}};
  }
  if (word == "NO") {
    r.kind = reply::kind_t::no;
    r.code = std::string(next_word(rest));
    if (r.code.empty()) return bad("NO without a code");
    r.text = std::string(rest);
    return {std::move(r), {}};
  }
  if (word == "BAD") {
    r.kind = reply::kind_t::bad;
    r.text = std::string(rest);
    return {std::move(r), {}};
  }
  return bad("unknown reply");
}

std::string format_ok(std::string_view text) {
  if (text.empty()) return "OK\r\n";
  return "OK " + reply_text(text) + "\r\n";
}

std::string format_no(std::string_view code, std::string_view text) {
  return "NO " + std::string(code) + " " + reply_text(text) + "\r\n";
}

std::string format_bad(std::string_view text) { return "BAD " + reply_text(text) + "\r\n"; }

std::string format_file(std::uint64_t size, std::int64_t mtime_ns, std::string_view path) {
  return "* F " + std::to_string(size) + " " + std::to_string(mtime_ns) + " " + std::string(path) +
         "\r\n";
}

std::string format_dir(std::string_view path) { return "* D " + std::string(path) + "\r\n"; }

std::string format_data(std::uint64_t octets) {
  return "* DATA {" + std::to_string(octets) + "}\r\n";
}

std::string format_progress(std::uint64_t files, std::uint64_t bytes, std::uint64_t total_files,
                            std::uint64_t total_bytes) {
  return "* PROGRESS " + std::to_string(files) + " " + std::to_string(bytes) + " " +
         std::to_string(total_files) + " " + std::to_string(total_bytes) + "\r\n";
}

std::string reply_text(std::string_view text) {
  std::string out(text.substr(0, 200));
  for (auto& c : out)
    if (is_control(static_cast<unsigned char>(c))) c = ' ';
  return out;
}

std::string no_code_for(const error& e) {
  switch (e.code) {
    case errc::not_found:
      return "NONEXISTENT";
    case errc::already_exists:
      return "EXISTS";
    case errc::limit_exceeded:
      return "LIMIT";
    case errc::invalid_input:
      return "PROTOCOL";
    case errc::io_error:
      return "IO";
    case errc::permission_denied:
      return "DENIED";
    default:
      return "UNAVAILABLE";
  }
}

}  // namespace hamail::backend::sync

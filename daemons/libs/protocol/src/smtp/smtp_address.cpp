#include "char_class.hpp"
#include "hamail/protocol/smtp/address.hpp"

namespace hamail::smtp {
namespace {

using detail::is_digit;
using detail::is_hex;
using detail::is_let_dig;

// Snum 3("." Snum), Snum = 1*3DIGIT with a value of at most 255.
bool valid_ipv4(std::string_view s) noexcept {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t digits = 0;
    unsigned value = 0;
    while (i < s.size() && is_digit(static_cast<unsigned char>(s[i])) && digits < 4) {
      value = value * 10 + unsigned(s[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3 || value > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// Counts colon-separated groups of 1..4 hex digits; -1 when malformed. An
// empty string has zero groups.
int hex_groups(std::string_view s) noexcept {
  if (s.empty()) return 0;
  int groups = 0;
  std::size_t run = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ':') {
      if (run == 0 || run > 4) return -1;
      ++groups;
      run = 0;
    } else if (is_hex(static_cast<unsigned char>(s[i]))) {
      ++run;
    } else {
      return -1;
    }
  }
  return groups;
}

// RFC 5321 IPv6-addr: IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp. The
// compressed forms carry at most 6 (4 with an IPv4 tail) explicit groups, so
// "::" always stands for at least two zero groups, as RFC 5321 writes it.
bool valid_ipv6(std::string_view s) noexcept {
  int max_groups = 8;
  std::string_view head = s;
  if (s.find('.') != std::string_view::npos) {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || !valid_ipv4(s.substr(colon + 1))) return false;
    max_groups = 6;
    head = s.substr(0, colon + 1);
    // Keep "::" whole; drop the single colon that separates the IPv4 tail.
    if (head.size() >= 2 && head.substr(head.size() - 2) == "::") {
      if (head.size() >= 3 && head[head.size() - 3] == ':') return false;
    } else {
      head.remove_suffix(1);
      if (head.empty()) return false;
    }
  }
  const auto dc = head.find("::");
  if (dc == std::string_view::npos) return hex_groups(head) == max_groups;
  if (head.find("::", dc + 1) != std::string_view::npos) return false;
  const auto left = head.substr(0, dc);
  const auto right = head.substr(dc + 2);
  if (!right.empty() && right.front() == ':') return false;
  const int l = hex_groups(left);
  const int r = hex_groups(right);
  if (l < 0 || r < 0) return false;
  return l + r <= max_groups - 2;
}

bool ldh_str(std::string_view s) noexcept {
  if (s.empty() || !is_let_dig(static_cast<unsigned char>(s.back()))) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!is_let_dig(c) && c != '-') return false;
  }
  return true;
}

bool is_atext_or_utf8(unsigned char c, bool utf8) noexcept {
  return detail::is_atext(c) || (utf8 && detail::is_non_ascii(c));
}

struct local_part_parse {
  bool ok = false;
  std::size_t length = 0;  // octets of the wire form
  std::string decoded;
  bool quoted = false;
};

// Parses the local part at the start of `s` up to (not including) the "@".
local_part_parse parse_local_part(std::string_view s, bool utf8) {
  local_part_parse r;
  if (!s.empty() && s.front() == '"') {
    r.quoted = true;
    std::size_t i = 1;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        r.ok = true;
        r.length = i + 1;
        return r;
      }
      if (c == '\\') {
        if (i + 1 >= s.size()) return r;
        const auto q = static_cast<unsigned char>(s[i + 1]);
        if (q < 32 || q > 126) return r;
        r.decoded.push_back(static_cast<char>(q));
        i += 2;
        continue;
      }
      const bool qtext =
          (c >= 32 && c <= 126 && c != '"' && c != '\\') || (utf8 && detail::is_non_ascii(c));
      if (!qtext) return r;
      r.decoded.push_back(static_cast<char>(c));
      ++i;
    }
    return r;
  }
  const auto at = s.find('@');
  const auto dot_string = s.substr(0, at);
  if (!is_valid_dot_string(dot_string, utf8)) return r;
  r.ok = true;
  r.length = dot_string.size();
  r.decoded.assign(dot_string);
  return r;
}

// At-domain *( "," At-domain ): the obsolete source route, validated and dropped.
bool valid_source_route(std::string_view route, bool utf8) noexcept {
  while (true) {
    if (route.empty() || route.front() != '@') return false;
    route.remove_prefix(1);
    const auto comma = route.find(',');
    if (!is_valid_domain(route.substr(0, comma), utf8)) return false;
    if (comma == std::string_view::npos) return true;
    route.remove_prefix(comma + 1);
  }
}

path_result fail(address_error e, std::string_view detail) {
  path_result r;
  r.error = e;
  r.detail = detail;
  return r;
}

}  // namespace

bool is_valid_dot_string(std::string_view s, bool utf8) noexcept {
  if (s.empty()) return false;
  bool previous_dot = true;  // a leading dot is as bad as a doubled one
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (previous_dot) return false;
      previous_dot = true;
    } else if (is_atext_or_utf8(c, utf8)) {
      previous_dot = false;
    } else {
      return false;
    }
  }
  return !previous_dot;
}

bool is_valid_domain(std::string_view s, bool utf8) noexcept {
  if (s.empty() || s.size() > max_domain_length) return false;
  if (utf8 ? !detail::is_valid_utf8(s) : !detail::is_ascii(s)) return false;
  auto let_dig = [utf8](unsigned char c) { return is_let_dig(c) || (utf8 && c >= 0x80); };
  std::size_t start = 0;
  while (true) {
    const auto dot = s.find('.', start);
    const auto label =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return false;
    if (!let_dig(static_cast<unsigned char>(label.front())) ||
        !let_dig(static_cast<unsigned char>(label.back()))) {
      return false;
    }
    bool ascii = true;
    for (char ch : label) {
      const auto c = static_cast<unsigned char>(ch);
      if (c >= 0x80) ascii = false;
      if (!let_dig(c) && c != '-') return false;
    }
    // An ASCII label is a DNS label (63 octets); a U-label's limit applies to
    // its A-label form, which is not computed here.
    if (ascii && label.size() > 63) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_valid_address_literal(std::string_view s) noexcept {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  const auto inner = s.substr(1, s.size() - 2);
  if (detail::istarts_with(inner, "IPv6:")) return valid_ipv6(inner.substr(5));
  const auto colon = inner.find(':');
  if (colon == std::string_view::npos) return valid_ipv4(inner);
  // General-address-literal = Standardized-tag ":" 1*dcontent
  if (!ldh_str(inner.substr(0, colon))) return false;
  const auto content = inner.substr(colon + 1);
  if (content.empty()) return false;
  for (char ch : content) {
    const auto c = static_cast<unsigned char>(ch);
    if (!((c >= 33 && c <= 90) || (c >= 94 && c <= 126))) return false;
  }
  return true;
}

std::string mailbox::address() const {
  std::string out;
  out.reserve(local_part.size() + domain.size() + 3);
  if (is_valid_dot_string(local_part, true)) {
    out += local_part;
  } else {
    out.push_back('"');
    for (char c : local_part) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('@');
  out += domain;
  return out;
}

bool mailbox::is_utf8() const noexcept {
  return !detail::is_ascii(local_part) || !detail::is_ascii(domain);
}

std::string path::wire() const {
  switch (kind) {
    case path_kind::null:
      return "<>";
    case path_kind::postmaster:
      return "<" + box.local_part + ">";
    case path_kind::mailbox:
      break;
  }
  return "<" + box.address() + ">";
}

path_result parse_path(std::string_view text, path_options options) {
  if (text.size() < 2 || text.front() != '<' || text.back() != '>') {
    return fail(address_error::syntax, "Address must be enclosed in <>");
  }
  if (text.size() > max_path_length) return fail(address_error::too_long, "Address too long");
  std::string_view inner = text.substr(1, text.size() - 2);
  if (!detail::is_ascii(inner)) {
    if (!options.utf8) {
      return fail(address_error::utf8_not_permitted, "Non-ASCII address without SMTPUTF8");
    }
    if (!detail::is_valid_utf8(inner))
      return fail(address_error::syntax, "Address is not valid UTF-8");
  }

  path p;
  p.original.assign(inner);
  if (inner.empty()) {
    if (!options.allow_null)
      return fail(address_error::null_not_permitted, "Null address not allowed here");
    p.kind = path_kind::null;
    return path_result{std::move(p)};
  }

  // A source route ("@relay,@relay:") ends at the first ':' outside a quoted
  // local part; a local part cannot start with '@', so the test is unambiguous.
  if (inner.front() == '@') {
    const auto colon = inner.find(':');
    if (colon == std::string_view::npos ||
        !valid_source_route(inner.substr(0, colon), options.utf8)) {
      return fail(address_error::syntax, "Bad source route");
    }
    inner.remove_prefix(colon + 1);
  }

  if (options.allow_postmaster && detail::iequals(inner, "postmaster")) {
    p.kind = path_kind::postmaster;
    p.box.local_part.assign(inner);
    return path_result{std::move(p)};
  }

  auto local = parse_local_part(inner, options.utf8);
  if (!local.ok) return fail(address_error::syntax, "Bad local part");
  if (local.length > max_local_part_length)
    return fail(address_error::too_long, "Local part too long");
  if (local.length >= inner.size() || inner[local.length] != '@') {
    return fail(address_error::syntax, "Address needs a domain");
  }
  const auto domain = inner.substr(local.length + 1);
  if (domain.size() > max_domain_length) return fail(address_error::too_long, "Domain too long");
  const bool literal = !domain.empty() && domain.front() == '[';
  if (literal ? !is_valid_address_literal(domain) : !is_valid_domain(domain, options.utf8)) {
    return fail(address_error::syntax, literal ? "Bad address literal" : "Bad domain");
  }

  p.kind = path_kind::mailbox;
  p.box.local_part = std::move(local.decoded);
  p.box.quoted_local_part = local.quoted;
  p.box.domain.assign(domain);
  p.box.address_literal = literal;
  return path_result{std::move(p)};
}

}  // namespace hamail::smtp

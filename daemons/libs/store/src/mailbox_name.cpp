#include "hamail/store/mailbox_name.hpp"

#include <array>
#include <cstdint>
#include <vector>

#include "folder_name.hpp"
#include "hamail/core/account_id.hpp"
#include "hamail/core/utf8.hpp"

namespace hamail::store {

namespace {

error bad_name(std::string text, std::string detail = {}) {
  return error::permanent(errc::invalid_input, std::move(text), std::move(detail));
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr std::string_view b64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == ',') return 63;
  return -1;
}

bool is_direct(char32_t cp, bool dot_encoded) {
  return cp >= 0x20 && cp <= 0x7E && cp != '&' && !(dot_encoded && cp == '.');
}

void flush_base64(std::string& out, std::vector<std::uint16_t>& units) {
  if (units.empty()) return;
  out += '&';
  std::uint32_t bits = 0;
  int nbits = 0;
  for (auto u : units) {
    bits = (bits << 16) | u;
    nbits += 16;
    while (nbits >= 6) {
      nbits -= 6;
      out += b64_alphabet[(bits >> nbits) & 0x3F];
    }
    bits &= (1u << nbits) - 1;
  }
  if (nbits > 0) out += b64_alphabet[(bits << (6 - nbits)) & 0x3F];
  out += '-';
  units.clear();
}

bool is_control(char32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

namespace detail {

result<std::string> mutf7_encode(std::string_view utf8, bool dot_encoded) {
  std::vector<char32_t> cps;
  if (!decode_utf8(utf8, cps)) return bad_name("malformed UTF-8 in mailbox name");
  std::string out;
  std::vector<std::uint16_t> units;
  for (char32_t cp : cps) {
    if (is_direct(cp, dot_encoded) || cp == '&') {
      flush_base64(out, units);
      if (cp == '&')
        out += "&-";
      else
        out += static_cast<char>(cp);
      continue;
    }
    if (cp >= 0x10000) {
      const char32_t v = cp - 0x10000;
      units.push_back(static_cast<std::uint16_t>(0xD800 + (v >> 10)));
      units.push_back(static_cast<std::uint16_t>(0xDC00 + (v & 0x3FF)));
    } else {
      units.push_back(static_cast<std::uint16_t>(cp));
    }
  }
  flush_base64(out, units);
  return out;
}

result<std::string> mutf7_decode(std::string_view s, bool dot_encoded) {
  std::string out;
  std::size_t i = 0;
  bool after_base64 = false;
  while (i < s.size()) {
    const char c = s[i];
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E)
      return bad_name("invalid character in modified UTF-7 name");
    if (c != '&') {
      if (dot_encoded && c == '.') return bad_name("literal '.' in an on-disk name segment");
      out += c;
      ++i;
      after_base64 = false;
      continue;
    }
    ++i;
    if (i < s.size() && s[i] == '-') {
      out += '&';
      ++i;
      after_base64 = false;
      continue;
    }
    if (after_base64) return bad_name("adjacent base64 runs in modified UTF-7 name");
    std::uint32_t bits = 0;
    int nbits = 0;
    std::vector<std::uint16_t> units;
    bool terminated = false;
    while (i < s.size()) {
      if (s[i] == '-') {
        terminated = true;
        ++i;
        break;
      }
      const int v = b64_value(s[i]);
      if (v < 0) return bad_name("bad base64 in modified UTF-7 name");
      bits = (bits << 6) | static_cast<std::uint32_t>(v);
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        units.push_back(static_cast<std::uint16_t>((bits >> nbits) & 0xFFFF));
        bits &= (1u << nbits) - 1;
      }
      ++i;
    }
    if (!terminated) return bad_name("unterminated base64 in modified UTF-7 name");
    // Leftover bits must be padding: fewer than one base64 character, all zero.
    if (units.empty() || nbits >= 6 || bits != 0)
      return bad_name("bad base64 padding in modified UTF-7 name");
    for (std::size_t k = 0; k < units.size(); ++k) {
      char32_t cp = units[k];
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (k + 1 >= units.size() || units[k + 1] < 0xDC00 || units[k + 1] > 0xDFFF)
          return bad_name("unpaired surrogate in modified UTF-7 name");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (units[k + 1] - 0xDC00);
        ++k;
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return bad_name("unpaired surrogate in modified UTF-7 name");
      }
      if (is_direct(cp, dot_encoded) || cp == '&')
        return bad_name("non-shortest modified UTF-7 name");
      append_utf8(out, cp);
    }
    after_base64 = true;
  }
  return out;
}

result<std::string> mailbox_dir_name(std::string_view canonical) {
  if (canonical == "INBOX") return std::string();
  std::string out;
  std::size_t start = 0;
  while (start <= canonical.size()) {
    std::size_t end = canonical.find(mailbox_delimiter, start);
    if (end == std::string_view::npos) end = canonical.size();
    auto seg = mutf7_encode(canonical.substr(start, end - start), true);
    if (!seg) return std::move(seg).err();
    out += '.';
    out += *seg;
    start = end + 1;
  }
  // One directory entry: the file system's NAME_MAX.
  if (out.size() > 255)
    return bad_name("mailbox name too long", "encoded folder name exceeds 255 octets");
  return out;
}

result<std::string> mailbox_name_from_dir(std::string_view dir_name) {
  if (dir_name.size() < 2 || dir_name[0] != '.') return bad_name("not a folder directory");
  std::string name;
  std::size_t start = 1;
  while (start <= dir_name.size()) {
    std::size_t end = dir_name.find('.', start);
    if (end == std::string_view::npos) end = dir_name.size();
    auto seg = mutf7_decode(dir_name.substr(start, end - start), true);
    if (!seg) return std::move(seg).err();
    if (start > 1) name += mailbox_delimiter;
    name += *seg;
    start = end + 1;
  }
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  if (*canonical == "INBOX") return bad_name("folder directory names INBOX");
  // Only the canonical spelling maps back: ".inbox.x" and ".INBOX.x" cannot both be "INBOX/x".
  auto again = mailbox_dir_name(*canonical);
  if (!again || *again != dir_name) return bad_name("non-canonical folder directory name");
  return canonical;
}

}  // namespace detail

result<std::string> mutf7_encode(std::string_view utf8) {
  return detail::mutf7_encode(utf8, false);
}

result<std::string> mutf7_decode(std::string_view mutf7) {
  return detail::mutf7_decode(mutf7, false);
}

result<std::string> validate_mailbox_name(std::string_view utf8) {
  if (utf8.empty()) return bad_name("empty mailbox name");
  if (utf8.size() > max_mailbox_name_octets) return bad_name("mailbox name too long");
  std::vector<char32_t> cps;
  if (!decode_utf8(utf8, cps)) return bad_name("mailbox name is not valid UTF-8");
  for (char32_t cp : cps) {
    if (is_control(cp)) return bad_name("control character in mailbox name");
    if (cp == '*' || cp == '%') return bad_name("wildcard character in mailbox name");
  }
  std::string out;
  std::size_t levels = 0;
  std::size_t start = 0;
  while (start <= utf8.size()) {
    std::size_t end = utf8.find(mailbox_delimiter, start);
    if (end == std::string_view::npos) end = utf8.size();
    const std::string_view seg = utf8.substr(start, end - start);
    if (seg.empty()) return bad_name("empty level in mailbox name");
    if (seg == "." || seg == "..") return bad_name("'.' or '..' level in mailbox name");
    if (++levels > max_mailbox_levels) return bad_name("mailbox name too deep");
    if (levels > 1) out += mailbox_delimiter;
    if (levels == 1 && iequals_ascii(seg, "INBOX"))
      out += "INBOX";
    else
      out += seg;
    start = end + 1;
  }
  return out;
}

result<void> validate_account_id(std::string_view id) {
  if (const auto why = account_id_problem(id)) {
    return bad_name("invalid account id", "account id " + std::string(*why));
  }
  return ok();
}

}  // namespace hamail::store

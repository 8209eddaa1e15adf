#include "maildir_file.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <vector>

namespace hamail::store::detail {

namespace {

struct letter_bit {
  char letter;
  std::uint8_t bit;
};
// ASCII order, as Maildir requires.
constexpr letter_bit system_letters[] = {
    {'D', static_cast<std::uint8_t>(system_flag::draft)},
    {'F', static_cast<std::uint8_t>(system_flag::flagged)},
    {'P', flag_passed},
    {'R', static_cast<std::uint8_t>(system_flag::answered)},
    {'S', static_cast<std::uint8_t>(system_flag::seen)},
    {'T', static_cast<std::uint8_t>(system_flag::deleted)},
};

template <class T>
std::optional<T> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string flag_letters(stored_flags flags) {
  std::string out;
  for (const auto& lb : system_letters)
    if ((flags.system & lb.bit) != 0) out += lb.letter;
  for (std::size_t i = 0; i < max_keywords; ++i)
    if ((flags.keywords & (1u << i)) != 0) out += static_cast<char>('a' + i);
  return out;
}

stored_flags parse_flag_letters(std::string_view letters) {
  stored_flags f;
  for (char c : letters) {
    if (c >= 'a' && c <= 'z') {
      f.keywords |= 1u << (c - 'a');
      continue;
    }
    for (const auto& lb : system_letters)
      if (lb.letter == c) f.system |= lb.bit;
  }
  return f;
}

std::optional<message_name> parse_message_name(std::string_view name) {
  if (name.empty() || name.front() == '.') return std::nullopt;
  if (name.find_first_of("/\n\r") != std::string_view::npos) return std::nullopt;
  message_name out;
  const auto colon = name.find(':');
  out.base = std::string(name.substr(0, colon));
  if (out.base.empty()) return std::nullopt;
  if (colon != std::string_view::npos) {
    out.has_info = true;
    const std::string_view info = name.substr(colon + 1);
    if (info.substr(0, 2) == "2,") out.flags = parse_flag_letters(info.substr(2));
  }
  std::string_view rest = out.base;
  const auto first_comma = rest.find(',');
  if (first_comma != std::string_view::npos) {
    rest.remove_prefix(first_comma + 1);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view field = rest.substr(0, comma);
      if (field.substr(0, 2) == "S=") out.size = parse_number<std::uint64_t>(field.substr(2));
      if (field.substr(0, 2) == "W=") out.wire_size = parse_number<std::uint64_t>(field.substr(2));
      if (field.substr(0, 2) == "U=") {
        auto uid = parse_number<std::uint32_t>(field.substr(2));
        if (uid && *uid != 0) out.uid = uid;
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

namespace {

// `base` without the fields (after the unique part) whose key `drop` accepts.
template <class Drop>
std::string base_without(std::string_view base, Drop drop) {
  std::string out;
  std::size_t start = 0;
  bool first = true;
  while (start <= base.size()) {
    auto comma = base.find(',', start);
    if (comma == std::string_view::npos) comma = base.size();
    const std::string_view field = base.substr(start, comma - start);
    if (first || !drop(field.substr(0, 2))) {
      if (!first) out += ',';
      out += field;
    }
    first = false;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string base_with_size_and_uid(std::string_view base, std::uint64_t size, imap_uid uid) {
  std::string out =
      base_without(base, [](std::string_view key) { return key == "S=" || key == "U="; });
  out += ",S=" + std::to_string(size) + ",U=" + std::to_string(uid);
  return out;
}

std::string base_with_sizes_and_uid(std::string_view base, std::uint64_t size,
                                    std::uint64_t wire_size, imap_uid uid) {
  std::string out = base_without(
      base, [](std::string_view key) { return key == "W=" || key == "S=" || key == "U="; });
  if (wire_size != size) out += ",W=" + std::to_string(wire_size);
  out += ",S=" + std::to_string(size) + ",U=" + std::to_string(uid);
  return out;
}

std::uint64_t wire_size_in_base(std::string_view base, std::uint64_t size) {
  // As parse_message_name: the fields after the unique part, the last W= wins.
  std::optional<std::uint64_t> wire;
  std::size_t comma = base.find(',');
  while (comma != std::string_view::npos) {
    const std::size_t start = comma + 1;
    comma = base.find(',', start);
    const std::string_view field = base.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (field.substr(0, 2) == "W=") wire = parse_number<std::uint64_t>(field.substr(2));
  }
  return wire && *wire >= size ? *wire : size;
}

std::string message_relpath(std::string_view base, bool in_new, stored_flags flags) {
  std::string out = in_new ? "new/" : "cur/";
  out += base;
  if (!in_new) {
    out += ":2,";
    out += flag_letters(flags);
  }
  return out;
}

std::string unique_message_name(std::string_view hostname) {
  static std::atomic<std::uint64_t> counter{0};
  struct timeval tv {};
  ::gettimeofday(&tv, nullptr);
  std::string out = std::to_string(tv.tv_sec);
  out += ".M" + std::to_string(tv.tv_usec);
  out += "P" + std::to_string(::getpid());
  out += "Q" + std::to_string(counter.fetch_add(1) + 1);
  out += '.';
  out += hostname;
  return out;
}

std::string sanitize_hostname(std::string_view hostname) {
  std::string out;
  for (char ch : hostname) {
    const auto c = static_cast<unsigned char>(ch);
    if (c > 0x20 && c < 0x7F && c != '/' && c != ':' && c != ',' && c != '\\') {
      out += ch;
    } else {
      out += '\\';
      out += static_cast<char>('0' + ((c >> 6) & 7));
      out += static_cast<char>('0' + ((c >> 3) & 7));
      out += static_cast<char>('0' + (c & 7));
    }
    if (out.size() >= 64) break;
  }
  if (out.empty()) out = "localhost";
  return out;
}

}  // namespace hamail::store::detail

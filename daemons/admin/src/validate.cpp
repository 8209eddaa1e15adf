#include "hamail/admin/validate.hpp"

#include <arpa/inet.h>

#include <array>
#include <cctype>

namespace hamail::admin {
namespace {

bool is_lower_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool is_alnum(char c) noexcept { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

/// RFC 5322 atext.
bool is_atext(char c) noexcept {
  if (is_alnum(c)) return true;
  constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return specials.find(c) != std::string_view::npos;
}

bool valid_label(std::string_view label) noexcept {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (const char c : label) {
    if (!is_alnum(c) && c != '-') return false;
  }
  return true;
}

}  // namespace

std::optional<std::uint64_t> parse_seconds(std::string_view text) noexcept {
  std::uint64_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        unit = 0;
        break;
    }
    if (unit != 0) text.remove_suffix(1);
    if (unit == 0) unit = 1;
  }
  constexpr std::uint64_t ten_years = 10ULL * 366 * 86400;
  const auto n = parse_count(text, ten_years);
  if (!n || *n > ten_years / unit) return std::nullopt;
  return *n * unit;
}

std::optional<std::uint64_t> parse_count(std::string_view text, std::uint64_t max) noexcept {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  const auto number = parse_count(text.substr(0, digits));
  if (!number) return std::nullopt;
  std::string unit = lower_ascii(text.substr(digits));
  std::uint64_t multiplier = 1;
  if (unit.empty() || unit == "b") {
    multiplier = 1;
  } else if (unit == "k" || unit == "kib") {
    multiplier = 1ULL << 10;
  } else if (unit == "m" || unit == "mib") {
    multiplier = 1ULL << 20;
  } else if (unit == "g" || unit == "gib") {
    multiplier = 1ULL << 30;
  } else if (unit == "t" || unit == "tib") {
    multiplier = 1ULL << 40;
  } else {
    return std::nullopt;
  }
  if (*number > UINT64_MAX / multiplier) return std::nullopt;
  return *number * multiplier;
}

bool valid_host_name(std::string_view host) noexcept {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = host.find('.', start);
    if (!valid_label(host.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool valid_address(std::string_view address) noexcept {
  if (address.size() > 254) return false;
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return false;
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.empty() || local.size() > 64) return false;
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return false;
  }
  for (const char c : local) {
    if (!is_atext(c) && c != '.') return false;
  }
  return valid_host_name(domain);
}

bool valid_ip_address(std::string_view address) noexcept {
  if (address.empty() || address.size() > 45) return false;
  const std::string text(address);
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, text.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buf.data()) == 1;
}

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace hamail::admin

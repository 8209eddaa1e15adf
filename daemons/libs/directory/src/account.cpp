#include "hamail/directory/account.hpp"

#include <algorithm>
#include <cctype>

namespace hamail::directory {

std::optional<account_state> parse_account_state(std::string_view text) noexcept {
  if (text == "active") return account_state::active;
  if (text == "locked") return account_state::locked;
  if (text == "moving") return account_state::moving;
  if (text == "disabled") return account_state::disabled;
  return std::nullopt;
}

std::string_view to_string(account_state state) noexcept {
  switch (state) {
    case account_state::active:
      return "active";
    case account_state::locked:
      return "locked";
    case account_state::moving:
      return "moving";
    case account_state::disabled:
      return "disabled";
  }
  return "unknown";
}

std::string normalize_address(std::string_view address) {
  std::string out(address);
  // Only ASCII is folded: UTF-8 local parts (SMTPUTF8) are compared as given.
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return c < 0x80 ? static_cast<char>(std::tolower(c)) : static_cast<char>(c);
  });
  return out;
}

std::optional<std::string> strip_subaddress(std::string_view address, std::string_view delimiters) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos || delimiters.empty()) return std::nullopt;
  const auto local = address.substr(0, at);
  const auto cut = local.find_first_of(delimiters);
  // "+tag@example.org" has no base address: leave it alone.
  if (cut == std::string_view::npos || cut == 0) return std::nullopt;
  std::string out(local.substr(0, cut));
  out.append(address.substr(at));
  return out;
}

}  // namespace hamail::directory

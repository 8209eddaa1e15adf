#include "hamail/core/account_id.hpp"

namespace hamail {

namespace {

constexpr bool is_lower_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

std::optional<std::string_view> account_id_problem(std::string_view id) noexcept {
  if (id.empty()) return "is empty";
  if (id.size() > max_account_id_length) return "is longer than 64 characters";
  // Not '.', '-', '@' or '+' first: no hidden files, "." or "..", and nothing that a
  // command line would read as an option.
  if (!is_lower_alnum(id.front())) return "does not start with a-z or 0-9";
  if (id.find("..") != std::string_view::npos) return "contains \"..\"";
  for (const char c : id) {
    if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-' && c != '@' && c != '+') {
      return "has a character other than a-z 0-9 . _ - @ +";
    }
  }
  return std::nullopt;
}

bool valid_account_id(std::string_view id) noexcept { return !account_id_problem(id); }

}  // namespace hamail

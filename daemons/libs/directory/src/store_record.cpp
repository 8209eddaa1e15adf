#include "hamail/directory/store_record.hpp"

namespace hamail::directory {

bool valid_store_name(std::string_view name) noexcept {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.empty() || name.size() > 63 || !lower_alnum(name.front())) return false;
  for (const char c : name) {
    if (!lower_alnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

std::optional<store_state> parse_store_state(std::string_view text) noexcept {
  if (text == "open") return store_state::open;
  if (text == "draining") return store_state::draining;
  if (text == "closed") return store_state::closed;
  if (text == "readonly") return store_state::readonly;
  return std::nullopt;
}

std::string_view to_string(store_state state) noexcept {
  switch (state) {
    case store_state::open:
      return "open";
    case store_state::draining:
      return "draining";
    case store_state::closed:
      return "closed";
    case store_state::readonly:
      return "readonly";
  }
  return "unknown";
}

}  // namespace hamail::directory

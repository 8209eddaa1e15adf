#include "hamail/directory/memory_directory.hpp"

namespace hamail::directory {

namespace {

error unavailable_error() {
  return error::temporary(errc::unavailable, "directory unavailable",
                          "memory directory set unavailable");
}

}  // namespace

result<void> memory_directory::put(account acct) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> addresses;
  addresses.push_back(normalize_address(acct.primary_address));
  for (const auto& a : acct.aliases) addresses.push_back(normalize_address(a));
  const std::string login =
      normalize_address(acct.login.empty() ? acct.primary_address : acct.login);
  for (const auto& a : addresses) {
    if (a.empty()) continue;
    auto it = address_to_id_.find(a);
    if (it != address_to_id_.end() && it->second != acct.id) {
      return error::permanent(errc::already_exists, "address already in use",
                              "address " + a + " belongs to " + it->second);
    }
  }
  if (auto it = login_to_id_.find(login); it != login_to_id_.end() && it->second != acct.id) {
    return error::permanent(errc::already_exists, "login already in use",
                            "login " + login + " belongs to " + it->second);
  }
  // Replacing: forget the old addresses first.
  if (by_id_.count(acct.id) != 0) {
    std::erase_if(address_to_id_, [&](const auto& kv) { return kv.second == acct.id; });
    std::erase_if(login_to_id_, [&](const auto& kv) { return kv.second == acct.id; });
  }
  for (const auto& a : addresses) {
    if (!a.empty()) address_to_id_[a] = acct.id;
  }
  login_to_id_[login] = acct.id;
  by_id_[acct.id] = std::move(acct);
  return ok();
}

bool memory_directory::remove(std::string_view id) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  const std::string key = it->first;
  by_id_.erase(it);
  std::erase_if(address_to_id_, [&](const auto& kv) { return kv.second == key; });
  std::erase_if(login_to_id_, [&](const auto& kv) { return kv.second == key; });
  return true;
}

void memory_directory::set_unavailable(bool unavailable) {
  std::lock_guard lock(mutex_);
  unavailable_ = unavailable;
}

result<std::optional<account>> memory_directory::lookup_address(std::string_view address) const {
  std::lock_guard lock(mutex_);
  if (unavailable_) return unavailable_error();
  auto it = address_to_id_.find(normalize_address(address));
  if (it == address_to_id_.end()) return std::optional<account>{};
  return std::optional<account>{by_id_.at(it->second)};
}

result<std::optional<account>> memory_directory::lookup_id(std::string_view id) const {
  std::lock_guard lock(mutex_);
  if (unavailable_) return unavailable_error();
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::optional<account>{};
  return std::optional<account>{it->second};
}

result<std::optional<account>> memory_directory::lookup_login(std::string_view login) const {
  std::lock_guard lock(mutex_);
  if (unavailable_) return unavailable_error();
  const auto key = normalize_address(login);
  if (auto it = login_to_id_.find(key); it != login_to_id_.end()) {
    return std::optional<account>{by_id_.at(it->second)};
  }
  // The primary address is a login name too; aliases are not.
  for (const auto& [id, acct] : by_id_) {
    if (normalize_address(acct.primary_address) == key) return std::optional<account>{acct};
  }
  return std::optional<account>{};
}

boost::asio::awaitable<result<std::optional<account>>> memory_directory::find_by_address(
    std::string_view address) {
  co_return lookup_address(address);
}

boost::asio::awaitable<result<std::optional<account>>> memory_directory::find_by_login(
    std::string_view login) {
  co_return lookup_login(login);
}

}  // namespace hamail::directory

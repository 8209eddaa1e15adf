#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "hamail/directory/directory.hpp"

namespace hamail::directory {

/// A directory held in memory: for unit tests and for a backend run without LDAP.
/// Thread-safe.
class memory_directory final : public directory {
 public:
  /// Adds or replaces an account; fails when one of its addresses or its login
  /// belongs to another account.
  result<void> put(account acct);
  /// Removes the account with this id; false when there was none.
  bool remove(std::string_view id);
  /// While set, every lookup answers errc::unavailable (simulates a directory outage).
  void set_unavailable(bool unavailable);

  boost::asio::awaitable<result<std::optional<account>>> find_by_address(
      std::string_view address) override;
  boost::asio::awaitable<result<std::optional<account>>> find_by_login(
      std::string_view login) override;

  /// The same lookups, synchronously.
  result<std::optional<account>> lookup_address(std::string_view address) const;
  result<std::optional<account>> lookup_login(std::string_view login) const;
  /// The account whose id is `id` (the fence lease review of hamail-backend, which knows
  /// only ids); empty when there is none.
  result<std::optional<account>> lookup_id(std::string_view id) const;

 private:
  mutable std::mutex mutex_;
  bool unavailable_ = false;
  std::map<std::string, account, std::less<>> by_id_;
  std::map<std::string, std::string, std::less<>> address_to_id_;
  std::map<std::string, std::string, std::less<>> login_to_id_;
};

}  // namespace hamail::directory

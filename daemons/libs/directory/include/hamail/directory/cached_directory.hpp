#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "hamail/directory/cache_settings.hpp"
#include "hamail/directory/directory.hpp"

namespace hamail::directory {

/// A caching wrapper around any directory: answers (found and not found) are kept
/// for their TTL, errors never. Lookups by address and by login are cached apart
/// (an alias is an address but not a login). Thread-safe; `inner` must outlive it.
class cached_directory final : public directory {
 public:
  /// The time source: steady_clock::now in production, a fake in tests.
  using clock_function = std::function<std::chrono::steady_clock::time_point()>;

  /// Wraps `inner` (not owned) with `settings`, reading the time from `now`.
  cached_directory(
      directory& inner, cache_settings settings,
      clock_function now = [] { return std::chrono::steady_clock::now(); });

  boost::asio::awaitable<result<std::optional<account>>> find_by_address(
      std::string_view address) override;
  boost::asio::awaitable<result<std::optional<account>>> find_by_login(
      std::string_view login) override;

  /// Forgets every answer about `address_or_login`: the lookups by that key and
  /// every cached account with it as id, login, primary address or alias (call
  /// after an admin change to the account). Lookups already in flight are not
  /// cached when they finish.
  void invalidate(std::string_view address_or_login);
  /// Forgets everything (SIGHUP, bulk changes). Lookups in flight are not cached.
  void clear();

  /// Counters for tests and statistics.
  struct statistics {
    std::uint64_t hits = 0;    ///< answered from the cache
    std::uint64_t misses = 0;  ///< passed to the inner directory
    std::size_t entries = 0;   ///< answers held now (expired ones until evicted)
  };
  /// A snapshot of the counters.
  statistics stats() const;

 private:
  struct entry {
    std::optional<account> value;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator lru;
  };

  // Takes references, not strings by value: GCC 12 destroys by-value coroutine
  // parameters twice. The caller's frame owns `key`.
  boost::asio::awaitable<result<std::optional<account>>> lookup(bool by_address,
                                                                const std::string& key,
                                                                std::string_view query);
  std::optional<std::optional<account>> get(const std::string& key);
  void put(const std::string& key, const std::optional<account>& value, std::uint64_t generation);
  void erase_locked(std::unordered_map<std::string, entry>::iterator it);

  directory& inner_;
  const cache_settings settings_;
  const clock_function now_;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;
  std::list<std::string> lru_;    ///< most recently used first
  std::uint64_t generation_ = 0;  ///< bumped by invalidate() and clear()
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace hamail::directory

#include "hamail/directory/cached_directory.hpp"

#include <algorithm>
#include <utility>

namespace hamail::directory {

namespace {

std::string cache_key(bool by_address, std::string_view text) {
  // Addresses and logins live apart: "a.smith@example.org" may be an address
  // (alias) that is not a login name.
  std::string key = by_address ? "a:" : "l:";
  key += normalize_address(text);
  return key;
}

bool account_has_name(const account& a, const std::string& name) {
  if (normalize_address(a.id) == name || normalize_address(a.login) == name ||
      normalize_address(a.primary_address) == name) {
    return true;
  }
  return std::any_of(a.aliases.begin(), a.aliases.end(),
                     [&](const std::string& alias) { return normalize_address(alias) == name; });
}

}  // namespace

cached_directory::cached_directory(directory& inner, cache_settings settings, clock_function now)
    : inner_(inner), settings_(settings), now_(std::move(now)) {}

boost::asio::awaitable<result<std::optional<account>>> cached_directory::find_by_address(
    std::string_view address) {
  const std::string key = cache_key(true, address);
  co_return co_await lookup(true, key, address);
}

boost::asio::awaitable<result<std::optional<account>>> cached_directory::find_by_login(
    std::string_view login) {
  const std::string key = cache_key(false, login);
  co_return co_await lookup(false, key, login);
}

boost::asio::awaitable<result<std::optional<account>>> cached_directory::lookup(
    bool by_address, const std::string& key, std::string_view query) {
  if (auto cached = get(key)) co_return std::move(*cached);
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    generation = generation_;
  }
  // Two plain statements rather than a conditional expression around co_await,
  // which GCC 12 handles badly.
  if (by_address) {
    auto r = co_await inner_.find_by_address(query);
    if (r) put(key, *r, generation);  // errors are never cached
    co_return r;
  }
  auto r = co_await inner_.find_by_login(query);
  if (r) put(key, *r, generation);
  co_return r;
}

std::optional<std::optional<account>> cached_directory::get(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  if (now_() >= it->second.expires) {
    erase_locked(it);
    ++misses_;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  ++hits_;
  return it->second.value;
}

void cached_directory::put(const std::string& key, const std::optional<account>& value,
                           std::uint64_t generation) {
  const auto ttl = value ? settings_.positive_ttl : settings_.negative_ttl;
  if (ttl.count() <= 0 || settings_.max_entries == 0) return;
  std::lock_guard lock(mutex_);
  // invalidate() or clear() ran while the answer was on its way: it may be stale.
  if (generation != generation_) return;
  const auto expires = now_() + ttl;
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second.value = value;
    it->second.expires = expires;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  while (entries_.size() >= settings_.max_entries) erase_locked(entries_.find(lru_.back()));
  lru_.push_front(key);
  entries_.emplace(key, entry{value, expires, lru_.begin()});
}

void cached_directory::erase_locked(std::unordered_map<std::string, entry>::iterator it) {
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void cached_directory::invalidate(std::string_view address_or_login) {
  const std::string name = normalize_address(address_or_login);
  std::lock_guard lock(mutex_);
  ++generation_;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool key_matches = it->first.compare(2, std::string::npos, name) == 0;
    const bool account_matches = it->second.value && account_has_name(*it->second.value, name);
    if (key_matches || account_matches) {
      lru_.erase(it->second.lru);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

void cached_directory::clear() {
  std::lock_guard lock(mutex_);
  ++generation_;
  entries_.clear();
  lru_.clear();
}

cached_directory::statistics cached_directory::stats() const {
  std::lock_guard lock(mutex_);
  return statistics{hits_, misses_, entries_.size()};
}

}  // namespace hamail::directory

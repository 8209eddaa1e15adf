#pragma once

#include <chrono>
#include <cstddef>

namespace hamail::directory {

/// How long answers stay cached and how many are kept (`[directory]` cache_ttl,
/// negative_cache_ttl, cache_size).
struct cache_settings {
  /// How long an account that was found is served from the cache; 0 disables.
  std::chrono::milliseconds positive_ttl = std::chrono::seconds(30);
  /// How long "no such account" is served from the cache; 0 disables.
  std::chrono::milliseconds negative_ttl = std::chrono::seconds(5);
  /// Most answers kept; the least recently used goes first. 0 disables the cache.
  std::size_t max_entries = 10000;
};

}  // namespace hamail::directory

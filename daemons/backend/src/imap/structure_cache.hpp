#pragma once

// A process-wide cache of parsed MIME structures, so that a second FETCH of
// BODYSTRUCTURE, ENVELOPE or a section of the same message does not map and
// parse it again. A message's bytes never change under one UIDVALIDITY, so an
// entry never goes stale; it only ages out.

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "hamail/mime/message.hpp"

namespace hamail::backend::imap_fetch {

/// Approximate heap and object bytes a parsed structure holds (strings,
/// vectors and nodes counted by size), for bounding the cache.
std::size_t estimated_size(const mime::message_structure& structure) noexcept;

/// A thread-safe LRU cache of parsed message structures, bounded by the sum
/// of their estimated sizes (plus their keys). Lookups return shared
/// pointers, so an entry evicted while a FETCH renders from it stays alive.
class structure_cache {
 public:
  /// Counters, for tests and status reports.
  struct stats {
    std::uint64_t hits = 0;       ///< find() calls that found an entry
    std::uint64_t misses = 0;     ///< find() calls that found none
    std::uint64_t evictions = 0;  ///< entries dropped to make room
    std::size_t bytes = 0;        ///< estimated bytes held now
    std::size_t entries = 0;      ///< entries held now
  };

  /// Makes an empty cache holding at most about `max_bytes`.
  explicit structure_cache(std::size_t max_bytes);
  structure_cache(const structure_cache&) = delete;
  structure_cache& operator=(const structure_cache&) = delete;

  /// The key of one message: account, mailbox, UIDVALIDITY and UID, joined
  /// so that no two distinct tuples give the same key.
  static std::string key(std::string_view account, std::string_view mailbox,
                         std::uint32_t uid_validity, std::uint32_t uid);

  /// The structure stored under `key` (made most recently used), or null.
  std::shared_ptr<const mime::message_structure> find(const std::string& key);
  /// Stores `structure` under `key`, replacing any entry there, and evicts the
  /// least recently used entries until the total fits. A structure larger
  /// than the whole budget is not kept.
  void insert(std::string key, std::shared_ptr<const mime::message_structure> structure);
  /// Parses `raw` (outside the lock), stores the structure under `key` as
  /// insert() does and returns it: what a FETCH does after a find() miss.
  std::shared_ptr<const mime::message_structure> parse_and_insert(std::string key,
                                                                  std::string_view raw);
  /// Drops the entry under `key`, if any.
  void erase(const std::string& key);
  /// Drops every entry (counters other than bytes/entries are kept).
  void clear();
  /// Changes the budget, evicting down to it at once.
  void set_max_bytes(std::size_t max_bytes);
  /// The budget.
  std::size_t max_bytes() const;
  /// A copy of the counters.
  stats counters() const;

  /// The cache every IMAP session of the process shares (64 MiB until
  /// set_max_bytes() says otherwise).
  static structure_cache& process_wide();

 private:
  struct entry {
    std::string key;
    std::shared_ptr<const mime::message_structure> structure;
    std::size_t bytes = 0;
  };
  void evict_to(std::size_t budget);  // with mutex_ held

  mutable std::mutex mutex_;
  std::size_t max_bytes_;
  std::list<entry> lru_;  // most recently used first
  std::unordered_map<std::string_view, std::list<entry>::iterator> index_;  // views into lru_ keys
  stats stats_;
};

}  // namespace hamail::backend::imap_fetch

#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/store/store.hpp"
#include "maildir_file.hpp"

// Pieces both store implementations share.

namespace hamail::store::detail {

/// Registered change callbacks of one mailbox.
class subscriber_list : public std::enable_shared_from_this<subscriber_list> {
 public:
  /// Registers `callback`; the subscription unregisters it.
  subscription add(change_callback callback);
  /// Calls every callback with `changes` (nothing when empty); an exception
  /// from a callback is logged and goes no further.
  void notify(std::span<const mailbox_change> changes);

 private:
  std::mutex mutex_;
  std::map<std::uint64_t, change_callback> callbacks_;
  std::uint64_t next_id_ = 0;
};

/// ASCII case-insensitive equality (IMAP keywords).
bool iequals(std::string_view a, std::string_view b) noexcept;

/// Checks every keyword of `flags`. Errors are permanent, invalid_input.
result<void> validate_flags(const message_flags& flags);

/// `current` changed by `given` under `mode` (keywords case-insensitive; the
/// spelling already present wins).
message_flags apply_flag_mode(const message_flags& current, flag_mode mode,
                              const message_flags& given);

/// The keyword ↔ letter map of one mailbox (hamail-keywords): letter 'a'+i
/// names keywords[i]. Letters are never reassigned.
class keyword_table {
 public:
  /// Parses hamail-keywords ("<index> <name>" lines); bad lines are skipped.
  static keyword_table parse(std::string_view content);
  /// The file content.
  std::string serialize() const;
  /// The letter index of `name` (case-insensitive).
  std::optional<std::size_t> find(std::string_view name) const;
  /// Adds `name`, returning its index; nullopt when all 26 letters are taken.
  std::optional<std::size_t> add(std::string_view name);
  /// The keyword of index `i`, or "" when unknown.
  std::string_view name(std::size_t i) const;
  std::size_t size() const noexcept { return names_.size(); }

 private:
  std::vector<std::string> names_;  // index = letter; "" for a gap in a damaged file
};

/// Converts IMAP flags to stored flags with `table`. Unknown keywords are added
/// when `add_missing` (setting `table_changed`) or else dropped. Errors:
/// limit_exceeded (permanent) when the mailbox has no letter left.
result<stored_flags> to_stored(const message_flags& flags, keyword_table& table, bool add_missing,
                               bool& table_changed);
/// Converts stored flags to IMAP flags (letters without a name are left out).
message_flags to_message_flags(stored_flags flags, const keyword_table& table);

/// Now, to the second.
internal_date now_seconds();

}  // namespace hamail::store::detail

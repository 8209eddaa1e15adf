#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "hamail/store/store.hpp"

// The Maildir++ "maildirsize" file at the account root: a limits line
// "<bytes>S,<count>C" then "<bytes> <count>" delta lines whose sum is the usage.
// Recalculated from the message files when missing, larger than 5120 octets,
// unparsable, or when the limits in force differ from its first line.

namespace hamail::store::detail {

/// Usage of an account.
struct quota_usage {
  std::int64_t bytes = 0;
  std::int64_t messages = 0;
};

/// "<bytes>S,<count>C" with zero parts left out; "" for unlimited.
std::string format_quota_limits(const quota_limits& limits);

/// A parsed maildirsize.
struct parsed_maildirsize {
  std::string limits_line;
  quota_usage usage;
};
/// Parses maildirsize content; nullopt when malformed.
std::optional<parsed_maildirsize> parse_maildirsize(std::string_view content);

/// Sums sizes (S= or stat) and counts of the messages in new/ and cur/ of one mailbox directory.
result<quota_usage> scan_mailbox_usage(const std::filesystem::path& mailbox_dir);

/// Sums sizes (S= or stat) and counts of every message in new/ and cur/ of the
/// account root and of each folder below it.
result<quota_usage> scan_account_usage(const std::filesystem::path& account_dir);

/// True when maildirsize `content` (nullopt: missing) must be recalculated
/// before it is used against `limits`: missing while limits apply, unparsable,
/// larger than 5120 octets, or with another limits line.
bool quota_recalculation_due(const std::optional<std::string>& content, const quota_limits& limits);

/// The usage maildirsize `content` records, without any recalculation; nullopt
/// when it is missing or unparsable.
std::optional<quota_usage> recorded_quota_usage(const std::optional<std::string>& content);

/// The usage of an account for a check against `limits`: read from
/// maildirsize, recalculated (and rewritten) when needed. nullopt when the
/// account keeps no maildirsize and `limits` is unlimited (nothing to track).
/// `before_scan`, when set, is called before a recalculation.
result<std::optional<quota_usage>> read_quota_usage(const std::filesystem::path& account_dir,
                                                    const quota_limits& limits,
                                                    const std::function<void()>& before_scan = {});

/// Appends a delta line when maildirsize exists (no fsync: it is recalculable).
result<void> append_quota_delta(const std::filesystem::path& account_dir, std::int64_t bytes,
                                std::int64_t messages);

/// Name of the quota file.
inline constexpr std::string_view maildirsize_name = "maildirsize";

}  // namespace hamail::store::detail

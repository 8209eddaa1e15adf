#pragma once

// The subscription list of an account (RFC 3501 §6.3.6-7, RFC 9051 §6.3.7-8):
// a file "hamail-subscriptions" in the account's directory of the store, one
// canonical UTF-8 mailbox name per line, sorted by octets, rewritten whole and
// atomically (temporary file, fsync, rename, directory fsync) on each change.

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_session_detail {

class session;

/// Name of the subscription file inside an account directory.
inline constexpr std::string_view subscriptions_file_name = "hamail-subscriptions";

/// The subscription list of one account. Every call is blocking (run it on the
/// blocking pool) and safe from any thread: changes to one file are serialised
/// by a lock of this process, which owns the store.
class subscriptions {
 public:
  /// The list of `account`: in the data directory of `st` when it is a
  /// maildir_store, else in `data_dir`. `fsync` false skips the fsyncs (tests).
  /// Errors: invalid_input (bad account id), unavailable (no data directory known).
  static result<subscriptions> of(store::mail_store& st, const std::filesystem::path& data_dir,
                                  std::string_view account, bool fsync);

  /// Every subscribed name, sorted by octets, without duplicates; none when the
  /// file does not exist. Errors: io_error.
  result<std::vector<std::string>> names() const;
  /// Adds canonical names; true when the list changed. Creates the account
  /// (its INBOX) in the store when it has no directory yet. Errors: io_error.
  result<bool> add(std::span<const std::string> names);
  /// Removes a name; true when it was subscribed. Errors: io_error.
  result<bool> remove(std::string_view name);
  /// After RENAME: `from` and every name below it ("from/...") become `to` and
  /// "to/..."; true when the list changed. Errors: io_error.
  result<bool> rename(std::string_view from, std::string_view to);
  /// The file holding the list.
  const std::filesystem::path& file() const noexcept { return file_; }

 private:
  subscriptions(store::mail_store& st, std::string account, std::filesystem::path file, bool fsync)
      : store_(&st), account_(std::move(account)), file_(std::move(file)), fsync_(fsync) {}
  template <class Edit>
  result<bool> update(Edit edit);

  store::mail_store* store_;
  std::string account_;
  std::filesystem::path file_;
  bool fsync_;
};

/// The subscription list of the session's account, under its settings
/// ([store] data_dir and fsync).
result<subscriptions> subscriptions_of(const session& s);

}  // namespace hamail::backend::imap_session_detail

#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/store/store.hpp"

// The on-disk store: Maildir++ folders under <data_dir>/accounts/, a per-mailbox
// append-only index that is only a cache of what the file names say, and group
// commit of deliveries. docs/store-format.md describes the format, the durability
// protocol and how to recover by hand.

namespace hamail::store {

/// How a maildir_store is opened.
struct maildir_options {
  /// Host name written into message file names; gethostname() when empty.
  std::string hostname;
  /// Issue fsync/fdatasync. Only tests that say so turn it off: without it an
  /// acknowledged message is not durable.
  bool fsync = true;
  /// Quota for targets that carry none.
  quota_limits default_quota;
  /// Compact an index once it holds this many more lines than live messages.
  std::size_t compact_slack = 1000;
  /// Mailboxes kept loaded after their last user lets go (0: none).
  std::size_t mailbox_cache = 256;
  /// Test hook, called by a group-commit leader with the size of the batch it
  /// took, before processing it. Empty in production.
  std::function<void(std::size_t)> on_commit_batch;
  /// Test hook, called before slow maintenance of an account: "quota rescan"
  /// (maildirsize recalculated from the files) or "load" (a mailbox's index
  /// replayed and reconciled with its files). Empty in production.
  std::function<void(std::string_view account, std::string_view what)> on_maintenance;
};

/// What group commit has done so far (monotonic). Sync points are counted even
/// when maildir_options::fsync is off.
struct commit_counters {
  std::uint64_t commits = 0;      ///< messages committed or rejected by a leader
  std::uint64_t batches = 0;      ///< leader rounds
  std::uint64_t file_syncs = 0;   ///< message file fsyncs (one per received body or copy)
  std::uint64_t dir_syncs = 0;    ///< directory fsyncs issued by commits
  std::uint64_t index_syncs = 0;  ///< index fdatasyncs issued by commits
};

/// What rebuild_index() did.
struct rebuild_report {
  std::size_t mailboxes = 0;      ///< indexes rebuilt
  std::size_t messages = 0;       ///< messages indexed
  std::size_t uids_assigned = 0;  ///< files that had no (or a duplicate) U= and got a new UID
  std::size_t uid_validity_renewed = 0;  ///< mailboxes whose hamail-uidvalidity was lost
  std::vector<std::string> notes;        ///< one line per noteworthy event, for the operator
};

/// One way an index disagrees with the message files (see maildir_store::verify).
struct discrepancy {
  enum class kind_t {
    index_unreadable,      ///< the index is damaged beyond its last line, or missing
    missing_uid_validity,  ///< hamail-uidvalidity missing or not matching the index
    file_not_indexed,      ///< a message file whose UID the index does not know
    file_without_uid,      ///< a message file with no U= in its name
    duplicate_uid,         ///< two files claim the same UID
    indexed_file_missing,  ///< the index lists a UID with no file
    metadata_mismatch,     ///< flags, size or location differ between index and name
    stray_file,            ///< something in new/ or cur/ that is not a message file
    stale_uid,  ///< a file the index does not know whose U= is below UIDNEXT or far above it
  };
  kind_t kind = kind_t::index_unreadable;
  std::string mailbox;  ///< canonical mailbox name
  imap_uid uid = 0;     ///< 0 when not about one message
  std::string detail;
};

/// The on-disk Maildir++ store of one data directory, owned by one process at a
/// time. Thread-safe. The store lock is released when this object and every
/// mailbox opened from it are gone.
class maildir_store final : public mail_store {
 public:
  /// Opens (creating as needed) the store in `data_dir` and takes its lock for
  /// the life of the object. Errors: already_exists (temporary) when another
  /// maildir_store, in this or another process, holds the lock (the detail names
  /// its pid); io_error (temporary).
  static result<std::unique_ptr<maildir_store>> open(const std::filesystem::path& data_dir,
                                                     maildir_options options = {});
  ~maildir_store() override;
  maildir_store(const maildir_store&) = delete;
  maildir_store& operator=(const maildir_store&) = delete;

  result<incoming_message> begin_delivery() override;
  std::vector<result<delivered>> deliver(const sealed_message& message,
                                         std::span<const delivery_target> targets) override;
  result<void> create_mailbox(std::string_view account, std::string_view name) override;
  result<void> delete_mailbox(std::string_view account, std::string_view name) override;
  result<void> rename_mailbox(std::string_view account, std::string_view from,
                              std::string_view to) override;
  result<std::vector<mailbox_list_entry>> list_mailboxes(std::string_view account) override;
  result<mailbox_status> status(std::string_view account, std::string_view name) override;
  result<std::shared_ptr<mailbox>> open_mailbox(std::string_view account,
                                                std::string_view name) override;
  result<std::optional<store::quota_usage>> quota_usage(std::string_view account) override;

  /// Rebuilds the index of every mailbox of `account` from the message files
  /// alone, keeping UIDs (from U= in names) and UIDVALIDITY (from
  /// hamail-uidvalidity; renewed when that file is lost). Open mailboxes are
  /// rebuilt in place. Errors: invalid_input, not_found, io_error.
  result<rebuild_report> rebuild_index(std::string_view account);
  /// rebuild_index() for every account of the store.
  result<rebuild_report> rebuild_all();
  /// Compares every mailbox index of `account` with its message files without
  /// changing anything; an empty list means they agree. Errors: invalid_input,
  /// not_found, io_error.
  result<std::vector<discrepancy>> verify(std::string_view account);
  /// Removes `account`'s whole tree (an account moved to another store, or a copy staged by
  /// an abandoned move): every loaded mailbox of the account is marked deleted (later calls on
  /// it fail with not_found) and dropped from the cache, the account root is renamed into
  /// <data_dir>/tmp/, the parent directory synced, then the renamed tree removed. Callers make
  /// sure nothing else uses the account (a move's fence). Errors: invalid_input, not_found
  /// (permanent) when the account has no tree, io_error.
  result<void> remove_account(std::string_view account);
  /// Group commit statistics.
  commit_counters counters() const;
  /// Commits queued and not yet taken by a leader (diagnostics and tests).
  std::size_t queued_commits() const;
  /// The data directory.
  const std::filesystem::path& data_dir() const noexcept;
  /// The directory holding `account`'s INBOX (the account root) in the store at
  /// `data_dir`; the account need not exist. Errors: invalid_input. For tests and
  /// operator tools: the layout is a pure function of the names.
  static result<std::filesystem::path> account_dir(const std::filesystem::path& data_dir,
                                                   std::string_view account);
  /// The directory of mailbox `name` of `account` (need not exist). Errors: invalid_input.
  static result<std::filesystem::path> mailbox_dir(const std::filesystem::path& data_dir,
                                                   std::string_view account, std::string_view name);

  struct impl;

 private:
  explicit maildir_store(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;  // shared with open mailboxes, which may outlive this object
};

}  // namespace hamail::store

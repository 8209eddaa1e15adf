#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"
#include "hamail/store/maildir_store.hpp"
#include "index_log.hpp"
#include "quota_file.hpp"

// Internals of maildir_store shared by its source files.
//
// Lock order (never acquire leftwards while holding something to the right):
//   account ns_mutex → account quota_mutex → mailbox write_mutex (several only in
//   address order) → mailbox state_mutex → subscriber list.
// The commit queue mutex is only held briefly and never while taking another.
// Nobody holds a write_mutex while waiting for the commit queue.
//
// Group commit runs one queue per account: a leader commits one account's
// queued messages, so accounts commit in parallel and one account's slow
// commit (or a stalled disk path) never holds another's. A leader does no slow
// maintenance: a mailbox that needs (re)loading or a maildirsize that needs a
// recalculation is handed back to the delivering thread ("bounced"), which does
// it outside any leader and queues the commit again.

namespace hamail::store::detail {

namespace fs = std::filesystem;

inline constexpr std::string_view index_file_name = "hamail-index";
inline constexpr std::string_view uid_validity_file_name = "hamail-uidvalidity";
inline constexpr std::string_view keywords_file_name = "hamail-keywords";
inline constexpr std::string_view folder_marker_name = "maildirfolder";

class maildir_mailbox;

/// Per-account locks; see the lock order above.
struct account_locks {
  std::mutex ns_mutex;     ///< mailbox creation, deletion, rename, listing
  std::mutex quota_mutex;  ///< maildirsize check and update, expunge, delete
};

/// One message waiting for group commit: its file is already durable in the
/// mailbox's tmp/ under `unique`.
struct pending_commit {
  std::shared_ptr<maildir_mailbox> box;
  std::string unique;  ///< file name in tmp/, and the unique part of the final name
  std::uint64_t size = 0;
  std::uint64_t wire_size = 0;  ///< message_info::wire_size (W= in the name when != size)
  std::int64_t date = 0;
  message_flags flags;
  quota_limits quota;
  std::optional<result<delivered>> outcome;  ///< set by the leader
  bool done = false;                         ///< guarded by the commit queue mutex
  bool taken = false;                        ///< in a leader's batch; guarded likewise
  std::string queue_key;                     ///< the account whose queue holds it
  /// Set by a leader that left the commit undone for maintenance by its
  /// submitter (no outcome); `attempts` counts those rounds.
  bool bounced = false;
  int attempts = 0;
  // Leader scratch.
  index_entry entry;
  bool renamed = false;
};

/// Bounces per commit before a leader does the maintenance itself (a mailbox
/// that keeps failing to stay loaded must not loop forever).
inline constexpr int max_commit_bounces = 3;

/// Per-mailbox reconcile statistics and findings.
struct reconcile_outcome {
  std::vector<std::string> records;  ///< index record payloads to append
  std::vector<discrepancy> found;    ///< what differed
  std::size_t uids_assigned = 0;
  std::vector<std::pair<imap_uid, mod_seq>> expunged;  ///< entries whose file is gone
  bool touched_new = false;                            ///< renames happened in new/
  bool touched_cur = false;                            ///< renames happened in cur/
};

/// Brings `state` in line with the files of `dir`: files are the truth. With
/// `apply` it renames files to their canonical names and returns the index
/// records to append; without, it changes nothing on disk and only reports.
/// A file the index does not know keeps the UID in its name only when that UID
/// lies in [UIDNEXT, UIDNEXT + uid_adoption_window) (what a commit cut short by a
/// crash can have used); otherwise it gets the next UID, like a file without
/// one, so UIDs stay strictly ascending and UIDNEXT cannot jump to the end of
/// the UID space. `rebuilding` (the index's UIDNEXT is unknown) trusts every U=
/// up to max_uid.
result<reconcile_outcome> reconcile(index_state& state, const fs::path& dir,
                                    const std::string& mailbox_name, bool apply, bool rebuilding);

/// How far above UIDNEXT a file's own U= is still adopted (see reconcile()).
inline constexpr imap_uid uid_adoption_window = imap_uid{1} << 20;

}  // namespace hamail::store::detail

namespace hamail::store {

namespace fs = std::filesystem;

struct maildir_store::impl : std::enable_shared_from_this<maildir_store::impl> {
  fs::path data_dir;
  maildir_options options;
  std::string hostname;  ///< sanitized
  unique_fd lock_fd;

  std::mutex uid_validity_mutex;
  std::uint32_t last_uid_validity = 0;  ///< persisted in hamail-uidvalidity-last
  std::atomic<std::uint64_t> n_commits{0}, n_batches{0}, n_file_syncs{0}, n_dir_syncs{0},
      n_index_syncs{0};

  std::mutex registry_mutex;
  std::map<std::string, std::weak_ptr<detail::maildir_mailbox>>
      open_boxes;  // key: account '\0' name
  std::map<std::string, std::shared_ptr<detail::account_locks>> accounts;
  /// Recently used mailboxes kept loaded (strong references), most recent first,
  /// so deliveries to a mailbox nobody has open do not reload it each time.
  std::list<std::shared_ptr<detail::maildir_mailbox>> recent_boxes;
  std::unordered_map<detail::maildir_mailbox*,
                     std::list<std::shared_ptr<detail::maildir_mailbox>>::iterator>
      recent_index;
  /// Marks `box` most recently used, evicting the least recent. Caller holds registry_mutex.
  void touch_locked(const std::shared_ptr<detail::maildir_mailbox>& box);
  /// Drops every cached mailbox (breaks the impl ↔ mailbox reference cycle).
  void clear_cache();

  /// One account's group-commit queue.
  struct commit_queue {
    std::vector<detail::pending_commit*> waiting;
    bool leader_active = false;
  };
  mutable std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::map<std::string, commit_queue> queues;  ///< by account; dropped when idle

  fs::path tmp_dir() const { return data_dir / "tmp"; }
  /// <data_dir>/accounts/<h2>/<account> (no validation).
  fs::path account_path(std::string_view account) const;
  /// A fresh UIDVALIDITY: the current time, strictly above any this store handed
  /// out before (across restarts: the last one is kept in <data_dir>/hamail-uidvalidity-last).
  std::uint32_t new_uid_validity();
  std::shared_ptr<detail::account_locks> locks_for(std::string_view account);
  /// Creates the account (root = INBOX) when missing. Caller holds its ns_mutex.
  result<void> ensure_account_locked(std::string_view account);
  /// Creates a folder directory with cur/ new/ tmp/, maildirfolder,
  /// hamail-uidvalidity and an empty index, atomically (built in the store's
  /// tmp/, renamed into place). Caller holds the account's ns_mutex.
  result<void> create_folder_locked(std::string_view account, const std::string& canonical);
  /// The shared state of a mailbox, loaded; INBOX (and its account) created on demand.
  result<std::shared_ptr<detail::maildir_mailbox>> get_box(std::string_view account,
                                                           const std::string& canonical);
  /// The shared state object without loading it (for verify/rebuild under its write mutex).
  std::shared_ptr<detail::maildir_mailbox> get_box_unloaded(std::string_view account,
                                                            const std::string& canonical);
  /// Canonical names of the account's existing mailboxes (INBOX first). Caller
  /// holds the ns_mutex or accepts a racy listing.
  result<std::vector<std::string>> mailbox_names(std::string_view account);

  /// Links (or copies) a message into `box`'s tmp/ for commit.
  result<void> stage(detail::pending_commit& c, const fs::path& source, int source_fd,
                     std::int64_t source_date);
  /// Group commit: enqueues `commits` and returns once each has an outcome,
  /// doing the maintenance of bounced commits between rounds and compacting
  /// indexes that are due afterwards.
  void submit(std::span<detail::pending_commit*> commits);
  /// One round: queues `commits` on their accounts' queues and leads or waits
  /// until each is done (with an outcome, or bounced).
  void run_commits(std::span<detail::pending_commit*> commits);
  /// process_batch() that cannot throw: a failure gives every commit still
  /// without an outcome a temporary error, takes its file back out and makes
  /// the mailboxes involved reload from disk before their next use.
  void lead_batch(std::vector<detail::pending_commit*>& batch) noexcept;
  /// The leader's work on one batch (one account's commits).
  void process_batch(std::vector<detail::pending_commit*>& batch);
  /// Stages and commits one message into `box` (APPEND).
  result<delivered> commit_one(const std::shared_ptr<detail::maildir_mailbox>& box,
                               const sealed_message& message, const message_flags& flags,
                               std::optional<internal_date> date,
                               std::optional<quota_limits> quota);
  /// Recalculates `account`'s maildirsize in the calling thread when it is due
  /// (see quota_recalculation_due), so that the group-commit leader never has to.
  void prepare_quota(std::string_view account, const quota_limits& limits);
  /// Calls options.on_maintenance(account, what), if set (a test hook).
  std::function<void()> maintenance_hook(std::string_view account, std::string_view what) const {
    if (!options.on_maintenance) return {};
    return [this, a = std::string(account), what] { options.on_maintenance(a, what); };
  }
  /// The quota a target gets.
  quota_limits quota_or_default(const std::optional<quota_limits>& q) const {
    return q ? *q : options.default_quota;
  }
};

}  // namespace hamail::store

namespace hamail::store::detail {

/// The process-wide state of one on-disk mailbox.
class maildir_mailbox final : public mailbox, public std::enable_shared_from_this<maildir_mailbox> {
 public:
  maildir_mailbox(std::shared_ptr<maildir_store::impl> store, std::shared_ptr<account_locks> locks,
                  std::string account, std::string name, fs::path dir);

  std::string account() const override { return account_; }
  std::string name() const override;
  result<mailbox_snapshot> snapshot() const override;
  result<mailbox_status> status() const override;
  result<message_file> read_message(imap_uid uid) override;
  result<store_outcome> set_flags(std::span<const imap_uid> uids, flag_mode mode,
                                  const message_flags& flags,
                                  std::optional<mod_seq> unchanged_since) override;
  result<std::vector<imap_uid>> expunge(std::span<const imap_uid> uids) override;
  result<delivered> append(const sealed_message& message, const message_flags& flags,
                           std::optional<internal_date> date,
                           std::optional<quota_limits> quota) override;
  result<copy_result> copy(std::span<const imap_uid> uids, std::string_view destination,
                           std::optional<quota_limits> quota) override;
  result<copy_result> move(std::span<const imap_uid> uids, std::string_view destination,
                           std::optional<quota_limits> quota) override;
  subscription subscribe(change_callback callback) override;
  result<std::vector<imap_uid>> claim_recent() override;

  // --- used by the store ---
  /// Loads the index (replay, repair, reconcile) unless loaded. Errors:
  /// not_found when the directory is gone or the mailbox was deleted.
  result<void> ensure_loaded();
  /// The mailbox directory.
  fs::path dir() const;
  std::mutex& write_mutex() { return write_mutex_; }
  const std::shared_ptr<account_locks>& locks() const { return locks_; }

  // The following require write_mutex().
  /// (Re)loads from disk; `force_rebuild` ignores the index's records.
  result<void> load_locked(bool force_rebuild, rebuild_report* report);
  bool deleted_locked() const { return deleted_; }
  /// Marks the mailbox deleted; every later call fails with not_found.
  void mark_deleted_locked();
  /// Points the object at a renamed directory.
  void rename_locked(std::string new_name, fs::path new_dir);
  /// Sum of sizes and count of live messages (for quota after delete).
  quota_usage usage_locked() const;
  /// Leader: allocates UIDs, renames tmp/ files into new/ or cur/, fsyncs the
  /// directories once, appends all index records with one write and one
  /// fdatasync, publishes and notifies. Commits that already have an outcome
  /// or are bounced are skipped; every other one gets its outcome, or is
  /// bounced when the mailbox needs loading first.
  void commit_locked(std::vector<pending_commit*>& commits);
  /// Forgets the loaded state: the next use reloads and reconciles from disk.
  void invalidate_locked();
  /// Compacts the index when it is due (takes the write mutex).
  void compact_if_due();
  /// Link source path of a live message, or nullopt.
  std::optional<std::pair<fs::path, index_entry>> locate_locked(imap_uid uid) const;

 private:
  /// not_found once deleted; (re)loads when not loaded.
  result<void> fail_if_unusable_locked();
  /// Appends sealed lines with one write and one fdatasync; undoes a partial write.
  result<void> append_index_locked(const std::vector<std::string>& payloads);
  result<void> maybe_compact_locked();
  result<void> save_keywords_locked();
  std::vector<mailbox_change> changes_for(std::span<const index_entry> entries,
                                          mailbox_change::kind_t kind) const;
  /// What subscribers must hear when the state goes from `before` to the
  /// current state_ (a reload): expunges, new messages, changed flags or modseqs,
  /// in modseq order.
  std::vector<mailbox_change> changes_since(
      const index_state& before,
      const std::vector<std::pair<imap_uid, mod_seq>>& expunge_modseqs) const;
  message_info info_of(const index_entry& e) const;

  const std::shared_ptr<maildir_store::impl> store_;
  const std::shared_ptr<account_locks> locks_;
  const std::string account_;
  const std::shared_ptr<subscriber_list> subscribers_ = std::make_shared<subscriber_list>();

  // Writers hold write_mutex_ for the whole of a change, including its syncs.
  std::mutex write_mutex_;
  unique_fd index_fd_;
  std::uint64_t index_size_ = 0;
  bool uid_next_dirty_ = false;  // UIDs were used without an A record: write an N record
  bool tmp_cleaned_ = false;     // tmp/ emptied of crash leftovers (first load only)

  // Guarded by state_mutex_ for readers; changed only with write_mutex_ held too,
  // so writers may read them without state_mutex_.
  mutable std::mutex state_mutex_;
  std::string name_;
  fs::path dir_;
  bool loaded_ = false;
  bool deleted_ = false;
  index_state state_;
  keyword_table keywords_;
};

}  // namespace hamail::store::detail

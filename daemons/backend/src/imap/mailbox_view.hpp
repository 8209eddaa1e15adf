#pragma once

// The selected mailbox as one session sees it (RFC 3501 §2.3.1.2): the
// sequence number map, the \Recent messages this session holds, and the
// changes other sessions made that it has not reported yet. The messages
// themselves (flags, sizes, dates) live in the store's shared mailbox state;
// a view costs four octets per message plus the unreported changes.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "hamail/store/store.hpp"

namespace hamail::backend::imap_session_detail {

/// Changes of the selected mailbox waiting to be reported, filled from store
/// threads by the subscription and drained by the session. Bounded: past
/// `max_pending` changes it only remembers that it overflowed, and the session
/// resynchronises from a snapshot.
class change_queue {
 public:
  static constexpr std::size_t max_pending = 4096;

  /// Called by the store (any thread) with the changes of one operation.
  void push(std::span<const store::mailbox_change> changes);
  /// Takes what is queued; `overflowed` tells whether changes were dropped.
  std::vector<store::mailbox_change> take(bool& overflowed);
  /// True when something is queued (or was dropped).
  bool pending() const;
  /// Removes queued changes this session made itself (its own STORE, or
  /// FETCH's implicit \Seen) and, when `older_too` (its response showed the
  /// messages' current flags), older queued changes of the same messages.
  /// What stays is reported later with the flags as they are then.
  void forget(std::span<const store::mailbox_change> reported, bool older_too);
  /// Removes queued expunges of `uids` (this session reported them itself).
  void forget_expunges(std::span<const store::imap_uid> uids);
  /// Sets the function called (from the store's thread, under the queue's lock)
  /// when changes arrive; empty to stop. IDLE uses it to wake up.
  void on_change(std::function<void()> wake);

 private:
  mutable std::mutex mutex_;
  std::vector<store::mailbox_change> changes_;
  bool overflowed_ = false;
  std::function<void()> wake_;
};

/// The selected mailbox of one session.
class mailbox_view {
 public:
  /// Opens the view: subscribes to changes, then takes a snapshot (so nothing
  /// falls between them) and, unless `read_only`, claims \Recent. Blocking.
  static result<std::unique_ptr<mailbox_view>> open(std::shared_ptr<store::mailbox> box,
                                                    bool read_only);
  ~mailbox_view();
  mailbox_view(const mailbox_view&) = delete;
  mailbox_view& operator=(const mailbox_view&) = delete;

  /// The store's mailbox.
  store::mailbox& box() const noexcept { return *box_; }
  /// The store's mailbox, shared.
  const std::shared_ptr<store::mailbox>& shared_box() const noexcept { return box_; }
  /// EXAMINE, or a mailbox that may not be changed.
  bool read_only() const noexcept { return read_only_; }
  /// The snapshot taken at open().
  const store::mailbox_snapshot& initial() const noexcept { return initial_; }
  /// Releases the initial snapshot (after SELECT has answered).
  void drop_initial() { initial_ = {}; }
  /// UIDVALIDITY.
  std::uint32_t uid_validity() const noexcept { return uid_validity_; }
  /// The highest modseq reported to the client.
  store::mod_seq highest_modseq() const noexcept { return modseq_; }
  /// Messages in view (the EXISTS count).
  std::uint32_t exists() const noexcept { return static_cast<std::uint32_t>(uids_.size()); }
  /// UIDs by sequence number: uids()[n - 1] is message n.
  const std::vector<store::imap_uid>& uids() const noexcept { return uids_; }
  /// The sequence number of `uid`, if in view.
  std::optional<std::uint32_t> seq_of(store::imap_uid uid) const noexcept;
  /// True when this session holds \Recent for `uid`.
  bool is_recent(store::imap_uid uid) const noexcept;
  /// Messages this session holds \Recent for.
  std::uint32_t recent_count() const noexcept { return static_cast<std::uint32_t>(recent_.size()); }
  /// True when apply() has something to report: queued changes, or expunges
  /// held back from an earlier command.
  bool has_changes() const { return !held_expunges_.empty() || queue_->pending(); }
  /// The queue other sessions' changes arrive in.
  change_queue& changes() noexcept { return *queue_; }

  /// What report() found: untagged responses to send, in order.
  struct update {
    std::vector<store::imap_uid> expunged;     ///< removed from view, ascending UID
    std::vector<std::uint32_t> expunged_seq;   ///< their sequence numbers, as EXPUNGE must say them
    std::vector<store::mailbox_change> flags;  ///< flag changes of messages in view
    bool exists_changed = false;               ///< new messages: send EXISTS and RECENT
  };
  /// Applies queued changes to the view. Expunges are applied only when
  /// `allow_expunge`; otherwise they stay queued. New messages get \Recent
  /// claimed unless read-only (blocking call into the store).
  result<update> apply(bool allow_expunge);
  /// Removes `uids` from the view after this session expunged them itself;
  /// returns their sequence numbers as EXPUNGE responses must say them.
  std::vector<std::uint32_t> remove(std::span<const store::imap_uid> uids);
  /// Notes a modseq reported to the client.
  void saw_modseq(store::mod_seq m) noexcept {
    if (m > modseq_) modseq_ = m;
  }

 private:
  mailbox_view() = default;

  std::shared_ptr<store::mailbox> box_;
  bool read_only_ = false;
  std::uint32_t uid_validity_ = 0;
  store::mod_seq modseq_ = 0;
  store::mod_seq base_modseq_ = 0;  // the snapshot's HIGHESTMODSEQ
  std::vector<store::imap_uid> uids_;
  std::vector<store::imap_uid> recent_;  // ascending
  store::mailbox_snapshot initial_;
  std::shared_ptr<change_queue> queue_;
  store::subscription subscription_;
  std::vector<store::mailbox_change>
      held_expunges_;  // expunges waiting for a command that may send them
};

}  // namespace hamail::backend::imap_session_detail

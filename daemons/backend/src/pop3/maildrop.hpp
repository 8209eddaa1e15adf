#pragma once

// The maildrop as one POP3 session sees it (RFC 1939 §5): the INBOX's messages
// at login, numbered from 1, with the session's deletion marks. Later
// deliveries and other sessions' changes never renumber it; deletions reach the
// store only at QUIT (UPDATE state). No I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hamail/store/store.hpp"

namespace hamail::backend::pop3_session_detail {

/// The unique-id listing of a message (RFC 1939 §7 UIDL): its UID then the
/// mailbox's UIDVALIDITY, 8 upper-case hex digits each, as Dovecot's default
/// pop3_uidl_format "%08Xu%08Xv" (so a mailbox migrated with its UIDs keeps
/// its UIDLs). IMAP and POP3 name a message the same way through it.
std::string uidl_of(std::uint32_t uid_validity, store::imap_uid uid);

/// One message of the maildrop.
struct maildrop_message {
  store::imap_uid uid = 0;
  std::uint64_t size = 0;  ///< octets as RETR sends them (CRLF line ends), before dot-stuffing
  bool deleted = false;    ///< DELE'd in this session
  bool retrieved = false;  ///< RETR'd in this session (marked \Seen at QUIT)
};

/// The session's snapshot of the maildrop.
class maildrop {
 public:
  /// Takes the INBOX's snapshot at login.
  explicit maildrop(const store::mailbox_snapshot& snapshot);

  /// Messages in the snapshot, deleted ones included (the highest message number).
  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(messages_.size()); }
  /// Messages not marked deleted.
  std::uint32_t live_count() const noexcept { return live_count_; }
  /// Their octets.
  std::uint64_t live_octets() const noexcept { return live_octets_; }
  /// Message `n` (1-based) unless it does not exist or is marked deleted.
  const maildrop_message* find(std::uint32_t n) const noexcept;
  /// Marks message `n` deleted; false when find(n) is null.
  bool remove(std::uint32_t n) noexcept;
  /// Marks message `n` retrieved; nothing when find(n) is null.
  void mark_retrieved(std::uint32_t n) noexcept;
  /// Unmarks every deleted message (RSET).
  void undelete_all() noexcept;
  /// The UIDL of message `n` (which must exist).
  std::string uidl(std::uint32_t n) const { return uidl_of(uid_validity_, messages_[n - 1].uid); }
  /// UIDs marked deleted, ascending.
  std::vector<store::imap_uid> deleted_uids() const;
  /// UIDs retrieved and not deleted, ascending.
  std::vector<store::imap_uid> retrieved_uids() const;
  /// Every message, in number order.
  const std::vector<maildrop_message>& messages() const noexcept { return messages_; }

 private:
  std::uint32_t uid_validity_ = 0;
  std::vector<maildrop_message> messages_;
  std::uint32_t live_count_ = 0;
  std::uint64_t live_octets_ = 0;
};

}  // namespace hamail::backend::pop3_session_detail

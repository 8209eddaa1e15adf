#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/store/unique_fd.hpp"

// The mailbox store interface. Every call is synchronous, blocking and
// thread-safe: the daemon calls it from a thread pool. Errors are values; a
// temporary error (I/O failure, disk full, contention, over quota with room to
// free) may succeed on retry and maps to SMTP 4xx / IMAP NO [UNAVAILABLE]; a
// permanent one (bad name, no such mailbox) will fail again.

namespace hamail::store {

/// An IMAP message UID (RFC 3501 §2.3.1.1); 0 is never a valid UID.
using imap_uid = std::uint32_t;
/// A CONDSTORE modification sequence (RFC 7162).
using mod_seq = std::uint64_t;
/// The IMAP INTERNALDATE of a message, to the second (it is a file mtime on disk).
using internal_date = std::chrono::sys_seconds;

/// The IMAP system flags a message can carry permanently (\Recent is not one of
/// them: see message_info::recent).
enum class system_flag : std::uint8_t {
  answered = 1,
  flagged = 2,
  deleted = 4,
  seen = 8,
  draft = 16,
};

/// The flags of one message: system flags as a bit set of system_flag, and
/// keywords ($Junk, $Forwarded, NonJunk...). Keywords compare case-insensitively;
/// the store keeps the spelling it saw first in a mailbox.
struct message_flags {
  std::uint8_t system = 0;
  std::vector<std::string> keywords;

  /// True when `f` is set.
  bool has(system_flag f) const noexcept { return (system & static_cast<std::uint8_t>(f)) != 0; }
  /// Sets or clears `f`; returns *this for chaining.
  message_flags& set(system_flag f, bool on = true) noexcept {
    if (on)
      system |= static_cast<std::uint8_t>(f);
    else
      system &= static_cast<std::uint8_t>(~static_cast<std::uint8_t>(f));
    return *this;
  }
  /// True when the keyword is present (case-insensitive).
  bool has_keyword(std::string_view keyword) const noexcept;
  /// Equal system flags and the same keyword set (order and case ignored).
  bool same_as(const message_flags& other) const noexcept;
};

/// How set_flags combines the given flags with a message's flags (IMAP STORE
/// +FLAGS, -FLAGS, FLAGS).
enum class flag_mode { add, remove, replace };

/// Checks a keyword: an IMAP atom of 1..128 characters not starting with '\'.
/// Errors are permanent, invalid_input.
result<void> validate_keyword(std::string_view keyword);

/// One message as a snapshot shows it.
struct message_info {
  imap_uid uid = 0;
  mod_seq modseq = 0;
  message_flags flags;
  internal_date date{};
  std::uint64_t size = 0;  ///< octets as stored (RFC822.SIZE)
  /// Octets of the message with every LF not preceded by CR counted as CRLF,
  /// plus 2 when the message is non-empty and its last octet is not LF: what
  /// POP3 RETR/TOP send before dot-stuffing and the terminator (RFC 1939 sizes).
  /// Equal to `size` for a message already in that form.
  std::uint64_t wire_size = 0;
  bool recent = false;  ///< \Recent: not yet claimed by a session (see mailbox::claim_recent)
};

/// A consistent view of one mailbox at one instant.
struct mailbox_snapshot {
  std::uint32_t uid_validity = 0;
  imap_uid uid_next = 1;
  mod_seq highest_modseq = 0;
  std::vector<message_info> messages;  ///< strictly ascending UIDs
};

/// Counters for IMAP STATUS / SELECT.
struct mailbox_status {
  std::uint32_t messages = 0;
  std::uint32_t recent = 0;
  std::uint32_t unseen = 0;
  imap_uid uid_next = 1;
  std::uint32_t uid_validity = 0;
  mod_seq highest_modseq = 0;
  std::uint64_t size = 0;  ///< sum of message sizes, octets
};

/// One name in an account's mailbox list.
struct mailbox_list_entry {
  std::string name;           ///< canonical UTF-8 name, '/' delimited
  bool selectable = true;     ///< false for a parent that exists only as a prefix (\Noselect)
  bool has_children = false;  ///< \HasChildren vs \HasNoChildren
};

/// Per-account quota limits; 0 means unlimited.
struct quota_limits {
  std::uint64_t bytes = 0;
  std::uint64_t messages = 0;
  bool unlimited() const noexcept { return bytes == 0 && messages == 0; }
  bool operator==(const quota_limits&) const = default;
};

/// What an account uses, counted as quota enforcement counts it: every message
/// of every mailbox, by size in octets.
struct quota_usage {
  std::uint64_t bytes = 0;
  std::uint64_t messages = 0;
  bool operator==(const quota_usage&) const = default;
};

/// One recipient of a delivery (or the destination of an APPEND).
struct delivery_target {
  std::string account;
  std::string mailbox =
      "INBOX";          ///< UTF-8; INBOX (any case) is created on demand, others must exist
  message_flags flags;  ///< initial flags; a message with none lands in new/
  std::optional<internal_date> date;  ///< INTERNALDATE; the sealed message's date when absent
  std::optional<quota_limits> quota;  ///< the store's default quota when absent
};

/// Where a committed message ended up.
struct delivered {
  imap_uid uid = 0;
  std::uint32_t uid_validity = 0;
  mod_seq modseq = 0;
};

/// Result of COPY/MOVE: pairs (source UID, destination UID) for COPYUID (RFC 4315).
struct copy_result {
  std::uint32_t uid_validity = 0;  ///< of the destination
  std::vector<std::pair<imap_uid, imap_uid>> uids;
};

/// Result of a STORE: the messages that changed, and those skipped because they
/// were modified after `unchanged_since` (RFC 7162 MODIFIED).
struct store_outcome {
  struct change {
    imap_uid uid = 0;
    mod_seq modseq = 0;
    message_flags flags;
  };
  std::vector<change> changed;
  std::vector<imap_uid> modified;
};

/// An open, readable message body. The descriptor stays valid even if the
/// message is renamed or expunged afterwards.
struct message_file {
  unique_fd fd;
  std::uint64_t size = 0;
};

/// What happened to a mailbox, reported to subscribers after it is durable.
struct mailbox_change {
  enum class kind_t { exists, flags, expunge };
  kind_t kind = kind_t::exists;
  imap_uid uid = 0;
  mod_seq modseq = 0;
  message_flags flags;  ///< the flags after the change (exists, flags)
};

/// Called with the changes of one operation, in ascending modseq order, while
/// the mailbox is held for writing (possibly on a group-commit leader's thread):
/// it must be quick, must not call into the store other than snapshot()/status(),
/// and must not cancel a subscription.
using change_callback = std::function<void(std::span<const mailbox_change>)>;

/// Keeps a change_callback registered; destroying or resetting it unregisters
/// it, waiting for a callback in progress on another thread to return.
class subscription {
 public:
  subscription() = default;
  /// Wraps the function that unregisters (called once).
  explicit subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  subscription(subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
  subscription& operator=(subscription&& other) noexcept {
    if (this != &other) {
      reset();
      cancel_ = std::exchange(other.cancel_, nullptr);
    }
    return *this;
  }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { reset(); }
  /// Unregisters now; no callback runs after this returns.
  void reset() {
    if (cancel_) std::exchange(cancel_, nullptr)();
  }

 private:
  std::function<void()> cancel_;
};

namespace detail {
/// A received message body as one store implementation holds it.
class sealed_body {
 public:
  virtual ~sealed_body() = default;
  virtual std::uint64_t size() const noexcept = 0;
  /// The size with bare LFs and a missing final line end counted as CRLF
  /// (message_info::wire_size).
  virtual std::uint64_t wire_size() const noexcept = 0;
  virtual internal_date date() const noexcept = 0;
};
/// Where the bytes of a message being received go; one per store implementation.
class message_sink {
 public:
  virtual ~message_sink() = default;
  virtual result<void> write(std::span<const char> bytes) = 0;
  virtual std::uint64_t size() const noexcept = 0;
  virtual result<std::shared_ptr<sealed_body>> finish(internal_date date) = 0;
};
}  // namespace detail

/// A complete message body received durably, ready for deliver() or append().
/// Copyable (copies share the body); the temporary file goes away with the last copy.
class sealed_message {
 public:
  /// Wraps an implementation's body (used by stores).
  explicit sealed_message(std::shared_ptr<detail::sealed_body> body) : body_(std::move(body)) {}
  /// Size in octets.
  std::uint64_t size() const noexcept { return body_->size(); }
  /// Size as POP3 sends it: every line end CRLF (see message_info::wire_size).
  std::uint64_t wire_size() const noexcept { return body_->wire_size(); }
  /// The INTERNALDATE targets get unless they say otherwise.
  internal_date date() const noexcept { return body_->date(); }
  /// The implementation's body (used by stores).
  const std::shared_ptr<detail::sealed_body>& body() const noexcept { return body_; }

 private:
  std::shared_ptr<detail::sealed_body> body_;
};

/// A message body being received (streamed from SMTP DATA or an IMAP literal).
/// Destroying it unfinished removes what was written.
class incoming_message {
 public:
  /// Wraps an implementation's sink (used by stores).
  explicit incoming_message(std::unique_ptr<detail::message_sink> sink) : sink_(std::move(sink)) {}
  /// Appends bytes. Errors are temporary (disk full, I/O) and leave the message unusable.
  result<void> write(std::span<const char> bytes) { return sink_->write(bytes); }
  /// Appends the bytes of anything viewable as a string (std::string, literals).
  template <class S>
  requires std::is_convertible_v<const S&, std::string_view> result<void> write(const S& bytes) {
    const std::string_view v(bytes);
    return write(std::span<const char>(v.data(), v.size()));
  }
  /// Octets written so far.
  std::uint64_t size() const noexcept { return sink_->size(); }
  /// Makes the body durable (fsync) with `date` as its INTERNALDATE (now when
  /// absent) and returns it sealed. Call once.
  result<sealed_message> finish(std::optional<internal_date> date = std::nullopt);

 private:
  std::unique_ptr<detail::message_sink> sink_;
};

/// One mailbox of one account, shared by every session of the process that
/// opened it. Thread-safe.
class mailbox {
 public:
  virtual ~mailbox() = default;

  /// The owning account.
  virtual std::string account() const = 0;
  /// The canonical name (it changes if the mailbox is renamed).
  virtual std::string name() const = 0;
  /// Every message with its UID, flags, date, size and modseq, plus the
  /// mailbox's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ. Errors: not_found after
  /// the mailbox was deleted.
  virtual result<mailbox_snapshot> snapshot() const = 0;
  /// STATUS counters.
  virtual result<mailbox_status> status() const = 0;
  /// Opens the body of `uid` for reading. Errors: not_found (permanent) when the
  /// UID does not exist (any more), io_error (temporary).
  virtual result<message_file> read_message(imap_uid uid) = 0;
  /// Changes flags of the given UIDs (unknown ones are ignored); messages whose
  /// modseq is above `unchanged_since` are left alone and reported as modified.
  /// Messages whose flags do not change keep their modseq and are not reported.
  virtual result<store_outcome> set_flags(
      std::span<const imap_uid> uids, flag_mode mode, const message_flags& flags,
      std::optional<mod_seq> unchanged_since = std::nullopt) = 0;
  /// Removes the given UIDs (unknown ones are ignored); returns those removed, ascending.
  virtual result<std::vector<imap_uid>> expunge(std::span<const imap_uid> uids) = 0;
  /// IMAP APPEND: commits `message` into this mailbox by the same durable path as
  /// a delivery, with the given flags, date (the message's own when absent) and
  /// quota (the store default when absent). Errors as deliver().
  virtual result<delivered> append(const sealed_message& message, const message_flags& flags,
                                   std::optional<internal_date> date = std::nullopt,
                                   std::optional<quota_limits> quota = std::nullopt) = 0;
  /// Copies the given UIDs (unknown ones ignored) into mailbox `destination` of
  /// the same account, keeping flags and dates; destination UIDs are ascending
  /// in source UID order. Quota applies as `quota` or the store default.
  virtual result<copy_result> copy(std::span<const imap_uid> uids, std::string_view destination,
                                   std::optional<quota_limits> quota = std::nullopt) = 0;
  /// copy() then expunge() of the copied source messages (RFC 6851). The
  /// account's usage does not change, so quota never refuses a move: the
  /// copy's limits (`quota` or the default) are raised by the moved messages.
  virtual result<copy_result> move(std::span<const imap_uid> uids, std::string_view destination,
                                   std::optional<quota_limits> quota = std::nullopt) = 0;
  /// Registers `callback` for every change from now on; see change_callback.
  virtual subscription subscribe(change_callback callback) = 0;
  /// Takes \Recent for the caller: returns the UIDs that were recent (ascending)
  /// and clears \Recent on them for everyone (messages move from new/ to cur/).
  /// The claim outlives the mailbox object and a restart of the process (not
  /// synced: a power cut may make the messages recent again).
  virtual result<std::vector<imap_uid>> claim_recent() = 0;
};

/// A mailbox store: accounts, their mailboxes and message delivery.
class mail_store {
 public:
  virtual ~mail_store() = default;

  /// Starts receiving a message body for deliver()/append(). Errors: temporary.
  virtual result<incoming_message> begin_delivery() = 0;
  /// Commits `message` durably into every target; one result per target, in
  /// order. A result is a value only once the message and its index record are on
  /// stable storage. Per-target errors: invalid_input (bad account or mailbox
  /// name, permanent), not_found (no such mailbox other than INBOX, permanent),
  /// quota_exceeded (permanent when the message alone exceeds the byte limit,
  /// temporary otherwise), io_error (temporary).
  virtual std::vector<result<delivered>> deliver(const sealed_message& message,
                                                 std::span<const delivery_target> targets) = 0;
  /// Creates a mailbox (and any missing parents). INBOX always exists. Errors:
  /// invalid_input, already_exists (permanent), io_error (temporary).
  virtual result<void> create_mailbox(std::string_view account, std::string_view name) = 0;
  /// Deletes a mailbox and its messages. Refuses INBOX and mailboxes that have
  /// children (permanent, permission_denied / already_exists): hamail keeps no
  /// \Noselect placeholders. Errors: not_found.
  virtual result<void> delete_mailbox(std::string_view account, std::string_view name) = 0;
  /// Renames a mailbox and its children. Renaming INBOX moves its messages into
  /// a new mailbox and leaves INBOX empty (RFC 3501 §6.3.5). Errors: not_found,
  /// already_exists, invalid_input (destination inside the source).
  virtual result<void> rename_mailbox(std::string_view account, std::string_view from,
                                      std::string_view to) = 0;
  /// Every mailbox of the account, INBOX first then by name; missing parents of
  /// existing mailboxes are listed as not selectable.
  virtual result<std::vector<mailbox_list_entry>> list_mailboxes(std::string_view account) = 0;
  /// STATUS of one mailbox. Errors: not_found, invalid_input.
  virtual result<mailbox_status> status(std::string_view account, std::string_view name) = 0;
  /// The process-wide shared state of one mailbox (created on first open,
  /// INBOX on demand). Errors: not_found, invalid_input, io_error.
  virtual result<std::shared_ptr<mailbox>> open_mailbox(std::string_view account,
                                                        std::string_view name) = 0;
  /// The account's current usage as the store tracks it for quota enforcement,
  /// read cheaply (no scan of the messages), e.g. for a quota check at SMTP RCPT.
  /// nullopt when the store keeps no usage record for the account (it never
  /// received mail under a limit): the usage is then unknown until a delivery
  /// with limits counts it. A missing account uses nothing. Advisory: the
  /// commit re-checks. Errors: invalid_input (bad account id), io_error.
  virtual result<std::optional<store::quota_usage>> quota_usage(std::string_view account) = 0;
};

}  // namespace hamail::store

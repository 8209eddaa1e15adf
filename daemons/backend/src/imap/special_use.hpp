#pragma once

// SPECIAL-USE mailboxes (RFC 6154): which names carry which attribute, and
// their creation at login.

#include <string_view>

#include "hamail/core/result.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_session_detail {

/// The special-use attribute of a top-level mailbox name ("\\Sent" for "Sent"),
/// empty when it has none.
std::string_view special_use_of(std::string_view name) noexcept;

/// Creates Drafts, Sent, Trash, Junk and Archive for `account` where missing,
/// and subscribes the ones it created, with INBOX (in the data directory of
/// `st` when it is a maildir_store; not at all otherwise). `fsync` false skips
/// the subscription file's fsyncs. Blocking.
result<void> create_special_use_mailboxes(store::mail_store& st, std::string_view account,
                                          bool fsync = true);

}  // namespace hamail::backend::imap_session_detail

// RENAME (RFC 3501 §6.3.5, RFC 9051 §6.3.6). The store renames the mailbox and
// its children, or for INBOX moves its messages into the new mailbox and keeps
// INBOX. Subscriptions follow a rename (INBOX's stays with INBOX).

#include "imap/session.hpp"
#include "imap/subscriptions.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_rename(session& s, const imap::command& c) {
  if (c.args.size() != 2) {
    s.bad(c, "RENAME takes two mailbox names");
    co_return;
  }
  auto from = s.mailbox_argument(c, c.args[0]);
  if (!from) co_return;
  auto to = s.mailbox_argument(c, c.args[1]);
  if (!to) co_return;
  store::mail_store* st = &s.ctx.store;
  const std::string account = s.user();
  const std::string source = *from;
  const std::string target = *to;
  auto rename = [st, account, source, target] {
    return st->rename_mailbox(account, source, target);
  };
  auto r = co_await s.blocking(std::move(rename));
  if (!r) {
    switch (r.err().code) {
      case errc::not_found:
        s.no_such_mailbox(c);
        break;
      case errc::already_exists:
        s.no(c, "Mailbox already exists", "ALREADYEXISTS");
        break;
      default:
        s.no_for(c, r.err(), "Cannot rename mailbox");
        break;
    }
    co_return;
  }
  if (source != "INBOX") {
    auto subs = subscriptions_of(s);
    if (subs) {
      subscriptions list = std::move(*subs);
      auto follow = [list, source, target]() mutable { return list.rename(source, target); };
      auto moved = co_await s.blocking(std::move(follow));
      if (!moved) {
        s.conn.log().warning("subscriptions of {} after RENAME: {}", account,
                             moved.err().describe());
      }
    }
  }
  s.ok(c, "RENAME completed");
}

}  // namespace hamail::backend::imap_session_detail

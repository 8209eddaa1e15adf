// CREATE (RFC 3501 §6.3.3, RFC 9051 §6.3.4). CREATE-SPECIAL-USE (RFC 6154 §3)
// is not offered: a USE parameter is refused as bad syntax.

#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_create(session& s, const imap::command& c) {
  if (c.args.size() != 1) {
    s.bad(c, "CREATE takes one mailbox name");
    co_return;
  }
  auto name = s.mailbox_argument(c, c.args[0]);
  if (!name) co_return;
  // A trailing delimiter declares the intent to create children below the
  // name (RFC 3501 §6.3.3); hamail creates the name itself either way.
  if (name->size() > 1 && name->back() == '/') name->pop_back();
  store::mail_store* st = &s.ctx.store;
  const std::string account = s.user();
  const std::string mailbox = *name;
  auto create = [st, account, mailbox] { return st->create_mailbox(account, mailbox); };
  auto r = co_await s.blocking(std::move(create));
  if (!r) {
    if (r.err().code == errc::already_exists) {
      s.no(c, "Mailbox already exists", "ALREADYEXISTS");
    } else {
      s.no_for(c, r.err(), "Cannot create mailbox");
    }
    co_return;
  }
  s.ok(c, "CREATE completed");
}

}  // namespace hamail::backend::imap_session_detail

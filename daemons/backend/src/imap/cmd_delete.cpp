// DELETE (RFC 3501 §6.3.4, RFC 9051 §6.3.5). hamail keeps no \Noselect
// placeholders, so a mailbox with children is refused (NO [HASCHILDREN]); the
// mailbox this session has selected is refused too (NO [INUSE]). Subscriptions
// stay: the name remains subscribed (RFC 9051 §6.3.5).

#include "hamail/store/mailbox_name.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_delete(session& s, const imap::command& c) {
  if (c.args.size() != 1) {
    s.bad(c, "DELETE takes one mailbox name");
    co_return;
  }
  auto canonical = s.existing_mailbox_argument(c, c.args[0]);
  if (!canonical) co_return;
  if (*canonical == "INBOX") {
    s.no(c, "INBOX cannot be deleted", "CANNOT");
    co_return;
  }
  if (s.selected && s.selected->box().name() == *canonical) {
    s.no(c, "Mailbox is selected; close it first", "INUSE");
    co_return;
  }
  store::mail_store* st = &s.ctx.store;
  const std::string account = s.user();
  const std::string mailbox = *canonical;
  auto remove = [st, account, mailbox] { return st->delete_mailbox(account, mailbox); };
  auto r = co_await s.blocking(std::move(remove));
  if (!r) {
    switch (r.err().code) {
      case errc::not_found:
        s.no_such_mailbox(c);
        break;
      case errc::permission_denied:
        // INBOX was handled above: the store refuses a mailbox with children.
        s.no(c, "Mailbox has children; delete them first", "HASCHILDREN");
        break;
      default:
        s.no_for(c, r.err(), "Cannot delete mailbox");
        break;
    }
    co_return;
  }
  s.ok(c, "DELETE completed");
}

}  // namespace hamail::backend::imap_session_detail

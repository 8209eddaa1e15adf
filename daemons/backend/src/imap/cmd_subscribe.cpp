// SUBSCRIBE and UNSUBSCRIBE (RFC 3501 §6.3.6-7, RFC 9051 §6.3.7-8). A name may
// be subscribed whether or not the mailbox exists; UNSUBSCRIBE of a name that
// is not subscribed succeeds (RFC 9051 §6.3.8).

#include "hamail/store/mailbox_name.hpp"
#include "imap/session.hpp"
#include "imap/subscriptions.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_subscribe(session& s, const imap::command& c) {
  const bool subscribe = c.name == "SUBSCRIBE";
  if (c.args.size() != 1) {
    s.bad(c, subscribe ? "SUBSCRIBE takes one mailbox name" : "UNSUBSCRIBE takes one mailbox name");
    co_return;
  }
  auto name = s.mailbox_argument(c, c.args[0]);
  if (!name) co_return;
  auto canonical = store::validate_mailbox_name(*name);
  if (!canonical) {
    s.no_for(c, canonical.err(), "Invalid mailbox name");
    co_return;
  }
  auto subs = subscriptions_of(s);
  if (!subs) {
    s.no_for(c, subs.err(), "Cannot change subscriptions");
    co_return;
  }
  subscriptions list = std::move(*subs);
  const std::string mailbox = *canonical;
  auto change = [list, mailbox, subscribe]() mutable -> result<bool> {
    if (subscribe) return list.add(std::span(&mailbox, 1));
    return list.remove(mailbox);
  };
  auto r = co_await s.blocking(std::move(change));
  if (!r) {
    s.no_for(c, r.err(), "Cannot change subscriptions");
    co_return;
  }
  s.ok(c, subscribe ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed");
}

}  // namespace hamail::backend::imap_session_detail

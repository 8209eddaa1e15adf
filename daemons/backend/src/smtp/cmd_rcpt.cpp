// RCPT TO (RFC 5321 §4.1.1.3): the recipient is resolved through the directory
// to the account that owns it, and must be placed on this store.

#include "smtp/session.hpp"

namespace hamail::backend::smtp_session_detail {

namespace {

store::quota_limits quota_for(const session& s, const directory::account& a) {
  store::quota_limits q;
  q.bytes = a.quota_bytes != 0 ? a.quota_bytes : s.cfg.quota.default_bytes;
  q.messages = a.quota_messages != 0 ? a.quota_messages : s.cfg.quota.default_messages;
  return q;
}

}  // namespace

awaitable<void> cmd_rcpt(session& s, const smtp::rcpt_command& c) {
  if (!s.tx) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "Need MAIL before RCPT"));
    co_return;
  }
  if (s.tx->body || s.tx->bdat_failed) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "RCPT after BDAT"));
    co_return;
  }
  ++s.tx->rcpt_commands;
  if (!c.params.unknown.empty()) {
    s.reply(smtp::reply(smtp::status::unsupported_parameter,
                        "Unsupported parameter " + c.params.unknown.front().keyword));
    s.count_error();
    co_return;
  }
  if (s.tx->recipients.size() >= s.cfg.smtp.max_recipients) {
    s.reply(smtp::status::too_many_recipients);
    co_return;
  }

  std::string address;
  if (c.recipient.kind == smtp::path_kind::postmaster) {
    if (s.cfg.smtp.postmaster.empty()) {
      s.reply(smtp::status::unknown_user);
      co_return;
    }
    address = s.cfg.smtp.postmaster;
  } else {
    address = c.recipient.box.address();
  }

  auto found = co_await s.ctx.directory.find_by_address(address);
  if (found && !found->has_value() && !s.cfg.smtp.recipient_delimiter.empty()) {
    if (auto base = directory::strip_subaddress(address, s.cfg.smtp.recipient_delimiter)) {
      found = co_await s.ctx.directory.find_by_address(*base);
    }
  }
  if (!found) {
    s.conn.log().warning("directory lookup for <{}> failed: {}", address, found.err().describe());
    s.reply(
        smtp::reply(451, "4.4.3").add_line("Directory temporarily unavailable, try again later"));
    co_return;
  }
  if (!found->has_value()) {
    s.conn.log().info("unknown recipient <{}>", address);
    s.reply(smtp::status::unknown_user);
    s.count_error();
    co_return;
  }
  const directory::account& acct = **found;
  switch (acct.state) {
    case directory::account_state::disabled:
      s.reply(smtp::reply(550, "5.2.1").add_line("Mailbox disabled"));
      co_return;
    case directory::account_state::moving:
      // Mail waits at the sender while the account moves between stores.
      s.reply(smtp::reply(450, "4.2.1").add_line("Mailbox is being moved, try again later"));
      co_return;
    case directory::account_state::active:
    case directory::account_state::locked:  // a locked account still receives mail
      break;
  }
  if (acct.owning_store != s.cfg.store.name && !s.cfg.smtp.accept_other_stores) {
    s.conn.log().warning("<{}> belongs to store {}, not {}", address, acct.owning_store,
                         s.cfg.store.name);
    s.reply(
        smtp::reply(451, "4.3.0").add_line("Mailbox is served by another store, try again later"));
    co_return;
  }
  s.tx->recipients.push_back(recipient{address, acct.id, quota_for(s, acct), c.params});
  s.reply(smtp::status::recipient_ok);
}

}  // namespace hamail::backend::smtp_session_detail

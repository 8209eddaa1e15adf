// RCPT TO (RFC 5321 §4.1.1.3): the recipient is resolved through the directory
// to the account that owns it, and must be placed on this store.

#include <algorithm>
#include <cctype>

#include "hamail/net/run_blocking.hpp"
#include "smtp/session.hpp"

namespace hamail::backend::smtp_session_detail {

namespace {

store::quota_limits quota_for(const session& s, const directory::account& a) {
  store::quota_limits q;
  q.bytes = a.quota_bytes != 0 ? a.quota_bytes : s.cfg.quota.default_bytes;
  q.messages = a.quota_messages != 0 ? a.quota_messages : s.cfg.quota.default_messages;
  return q;
}

/// True for "postmaster@<any domain>" (RFC 5321 §4.5.1: every domain has one).
bool is_postmaster_address(std::string_view address) {
  const auto at = address.rfind('@');
  if (at != 10) return false;
  constexpr std::string_view name = "postmaster";
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(address[i])) != name[i]) return false;
  }
  return true;
}

/// The quota check RCPT can make before the message is known: refuses when the
/// account is already full, or when the size the client declared (SIZE=) cannot
/// fit. Advisory: the commit checks again with the real size. Returns the reply
/// to refuse with, or nullopt to accept.
awaitable<std::optional<smtp::reply>> check_quota(session& s, const std::string& account,
                                                  const store::quota_limits& q) {
  if (q.unlimited()) co_return std::nullopt;
  const std::uint64_t declared = s.tx->mail.params.size.value_or(0);
  if (q.bytes != 0 && declared > q.bytes) {
    co_return smtp::reply(smtp::status::over_quota_perm, "Message exceeds the mailbox's quota");
  }
  auto read = [&s, &account] { return s.ctx.store.quota_usage(account); };
  auto usage = co_await net::run_blocking(s.ctx.blocking, std::move(read));
  if (!usage) {
    s.conn.log().debug("quota usage of {} unknown: {}", account, usage.err().describe());
    co_return std::nullopt;
  }
  if (!usage->has_value()) co_return std::nullopt;
  const auto& u = **usage;
  const bool full = (q.messages != 0 && u.messages + 1 > q.messages) ||
                    (q.bytes != 0 && u.bytes + std::max<std::uint64_t>(declared, 1) > q.bytes);
  if (!full) co_return std::nullopt;
  co_return smtp::reply(s.cfg.quota.permanent ? smtp::status::over_quota_perm
                                              : smtp::status::over_quota_temp);
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
    // RFC 5321 §4.5.1: always accepted; [smtp] postmaster is never empty.
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
  if (found && !found->has_value() && is_postmaster_address(address) &&
      directory::normalize_address(address) !=
          directory::normalize_address(s.cfg.smtp.postmaster)) {
    // postmaster@ a domain the directory has no entry for: the store's postmaster.
    found = co_await s.ctx.directory.find_by_address(s.cfg.smtp.postmaster);
  }
  if (!found) {
    s.conn.log().warning("directory lookup for <{}> failed: {}", address, found.err().describe());
    s.reply(
        smtp::reply(451, "4.4.3").add_line("Directory temporarily unavailable, try again later"));
    co_return;
  }
  if (!found->has_value()) {
    if (c.recipient.kind == smtp::path_kind::postmaster || is_postmaster_address(address)) {
      s.conn.log().error(
          "<{}>: the postmaster address {} is not in the directory; set [smtp] "
          "postmaster",
          address, s.cfg.smtp.postmaster);
    }
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
  const auto quota = quota_for(s, acct);
  if (auto refusal = co_await check_quota(s, acct.id, quota)) {
    s.conn.log().info("<{}> refused at RCPT: {} over quota", address, acct.id);
    s.reply(*refusal);
    co_return;
  }
  s.tx->recipients.push_back(recipient{address, acct.id, quota, c.params});
  s.reply(smtp::status::recipient_ok);
}

}  // namespace hamail::backend::smtp_session_detail

// RCPT TO (RFC 5321 §4.1.1.3): the session's checks, then the handler decides
// (hamail-backend: the account must be placed on this store; hamail-proxy: the
// owning store or the smarthost must take it). look_up_recipient is the
// directory lookup both use.

#include <algorithm>
#include <cctype>

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

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
  if (s.tx->recipients.size() >= s.cfg.max_recipients) {
    s.reply(smtp::status::too_many_recipients);
    co_return;
  }

  std::string address;
  if (c.recipient.kind == smtp::path_kind::postmaster) {
    // RFC 5321 §4.5.1: always accepted; [smtp] postmaster is never empty.
    address = s.cfg.postmaster;
  } else {
    address = c.recipient.box.address();
  }

  auto accepted = co_await s.handler.add_recipient(s, address, c);
  if (accepted) {
    accepted->dsn = c.params;
    s.tx->recipients.push_back(std::move(*accepted));
  }
}

awaitable<recipient_lookup> look_up_recipient(session& s, const std::string& address) {
  auto found = co_await s.svc.login.directory.find_by_address(address);
  if (found && !found->has_value() && !s.cfg.recipient_delimiter.empty()) {
    if (auto base = directory::strip_subaddress(address, s.cfg.recipient_delimiter)) {
      found = co_await s.svc.login.directory.find_by_address(*base);
    }
  }
  if (found && !found->has_value() && is_postmaster_address(address) &&
      directory::normalize_address(address) != directory::normalize_address(s.cfg.postmaster)) {
    // postmaster@ a domain the directory has no entry for: the [smtp] postmaster.
    found = co_await s.svc.login.directory.find_by_address(s.cfg.postmaster);
  }
  recipient_lookup out;
  if (!found) {
    s.conn.log().warning("directory lookup for <{}> failed: {}", address, found.err().describe());
    out.refusal =
        smtp::reply(451, "4.4.3").add_line("Directory temporarily unavailable, try again later");
    co_return out;
  }
  if (!found->has_value()) {
    if (is_postmaster_address(address) ||
        directory::normalize_address(address) == directory::normalize_address(s.cfg.postmaster)) {
      s.conn.log().error(
          "<{}>: the postmaster address {} is not in the directory; set [smtp] postmaster", address,
          s.cfg.postmaster);
    }
    co_return out;
  }
  switch ((*found)->state) {
    case directory::account_state::disabled:
      out.refusal = smtp::reply(550, "5.2.1").add_line("Mailbox disabled");
      co_return out;
    case directory::account_state::moving:
      // Mail waits at the sender while the account moves between stores.
      out.refusal = smtp::reply(450, "4.2.1").add_line("Mailbox is being moved, try again later");
      co_return out;
    case directory::account_state::active:
    case directory::account_state::locked:  // a locked account still receives mail
      break;
  }
  out.account = std::move(**found);
  co_return out;
}

void refuse_unknown_recipient(session& s, const std::string& address) {
  s.conn.log().info("unknown recipient <{}>", address);
  s.reply(smtp::status::unknown_user);
  s.count_error();
}

}  // namespace hamail::smtpd

// MAIL FROM (RFC 5321 §4.1.1.2) with SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH.

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

/// True when `grant` lets its account send as `sender` (normalised).
bool grant_covers(const sender_grant& grant, const std::string& sender) {
  for (const auto& allowed : grant.senders) {
    if (allowed == "*" || allowed == sender) return true;
    if (allowed.front() == '@' && sender.size() > allowed.size() && sender.ends_with(allowed))
      return true;
  }
  return false;
}

/// Whether the authenticated account may use `sender` as MAIL FROM: one of its
/// addresses or aliases (sub-addresses included), as the directory gives them,
/// or a sender [[smtp.allowed_senders]] grants it. An error when the directory
/// cannot answer.
awaitable<result<bool>> may_send_as(session& s, const std::string& sender) {
  for (const auto& g : s.cfg.allowed_senders) {
    if ((g.account == "*" || g.account == s.authenticated) && grant_covers(g, sender))
      co_return true;
  }
  auto found = co_await s.svc.login.directory.find_by_address(sender);
  if (found && !found->has_value() && !s.cfg.recipient_delimiter.empty()) {
    if (auto base = directory::strip_subaddress(sender, s.cfg.recipient_delimiter)) {
      found = co_await s.svc.login.directory.find_by_address(*base);
    }
  }
  if (!found) co_return std::move(found).err();
  co_return found->has_value() && (*found)->id == s.authenticated;
}

}  // namespace

awaitable<void> cmd_mail(session& s, const smtp::mail_command& c) {
  if (s.helo.empty()) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "Send HELO/EHLO first"));
    co_return;
  }
  if (s.tx) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "Nested MAIL command"));
    co_return;
  }
  if (s.kind == flavour::submission && s.authenticated.empty()) {
    s.reply(smtp::status::auth_required);
    co_return;
  }
  if (!c.params.unknown.empty()) {
    s.reply(smtp::reply(smtp::status::unsupported_parameter,
                        "Unsupported parameter " + c.params.unknown.front().keyword));
    s.count_error();
    co_return;
  }
  // ESMTP parameters need EHLO (RFC 5321 §4.1.1.2).
  const bool has_params = c.params.size || c.params.body || c.params.smtputf8 || c.params.ret ||
                          c.params.envid || c.params.auth;
  if (has_params && !s.esmtp) {
    s.reply(smtp::reply(smtp::status::unsupported_parameter, "Parameters need EHLO"));
    co_return;
  }
  if (c.params.size && *c.params.size > s.cfg.max_message_size) {
    s.reply(smtp::status::too_big);
    co_return;
  }
  // Submission ties the envelope sender to the login (RFC 6409 §6.1): an
  // account sends as its own addresses only, unless the operator allowed more.
  // The null sender stays allowed (delivery reports, auto-replies).
  if (!s.authenticated.empty() && s.kind != flavour::lmtp && s.cfg.sender_check &&
      c.sender.kind != smtp::path_kind::null) {
    const std::string sender = directory::normalize_address(c.sender.box.address());
    auto allowed = co_await may_send_as(s, sender);
    if (!allowed) {
      s.conn.log().warning("sender check for <{}>: directory unavailable: {}", sender,
                           allowed.err().describe());
      s.reply(
          smtp::reply(451, "4.4.3").add_line("Directory temporarily unavailable, try again later"));
      co_return;
    }
    if (!*allowed) {
      s.conn.log().notice("MAIL FROM:<{}> refused: not an address of {}", sender, s.authenticated);
      s.reply(smtp::reply(553, "5.7.1")
                  .add_line("Sender address rejected: not owned by the authenticated user"));
      s.count_error();
      co_return;
    }
  }
  s.tx.emplace();
  s.tx->mail = c;
  s.parser().set_utf8_transaction(c.params.smtputf8);
  s.reply(smtp::status::sender_ok);
  co_return;
}

}  // namespace hamail::smtpd

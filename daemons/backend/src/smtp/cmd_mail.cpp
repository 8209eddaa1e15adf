// MAIL FROM (RFC 5321 §4.1.1.2) with SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH.

#include "smtp/session.hpp"

namespace hamail::backend::smtp_session_detail {

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
  if (c.params.size && *c.params.size > s.cfg.smtp.max_message_size) {
    s.reply(smtp::status::too_big);
    co_return;
  }
  s.tx.emplace();
  s.tx->mail = c;
  s.parser().set_utf8_transaction(c.params.smtputf8);
  s.reply(smtp::status::sender_ok);
  co_return;
}

}  // namespace hamail::backend::smtp_session_detail

// RSET, NOOP, QUIT, VRFY, EXPN, HELP: commands with no state of their own.

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

awaitable<void> cmd_rset(session& s, const smtp::rset_command&) {
  s.reset_transaction();
  s.reply(smtp::status::reset_ok);
  co_return;
}

awaitable<void> cmd_noop(session& s, const smtp::noop_command&) {
  s.reply(smtp::status::noop_ok);
  co_return;
}

awaitable<void> cmd_quit(session& s, const smtp::quit_command&) {
  s.reply(smtp::reply(smtp::status::closing, s.svc.hostname + " closing connection"));
  s.end = ending::quit;
  co_return;
}

awaitable<void> cmd_vrfy(session& s, const smtp::vrfy_command&) {
  // Never confirm addresses to an anonymous peer (RFC 5321 §7.3); 252 says "try it".
  s.reply(smtp::status::cannot_verify);
  co_return;
}

awaitable<void> cmd_expn(session& s, const smtp::expn_command&) {
  s.reply(smtp::status::not_implemented);
  co_return;
}

awaitable<void> cmd_help(session& s, const smtp::help_command&) {
  s.reply(smtp::status::help);
  co_return;
}

}  // namespace hamail::smtpd

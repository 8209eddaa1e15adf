// The one place that wires each SMTP/LMTP command to its handler, and says
// which listener flavours accept it.

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

}  // namespace

awaitable<void> session::dispatch(const smtp::command& cmd) {
  const bool lmtp = kind == flavour::lmtp;
  // LMTP has LHLO instead of HELO/EHLO (RFC 2033 §4.1); SMTP has no LHLO.
  const bool wrong_greeting = (lmtp && (std::holds_alternative<smtp::helo_command>(cmd) ||
                                        std::holds_alternative<smtp::ehlo_command>(cmd))) ||
                              (!lmtp && std::holds_alternative<smtp::lhlo_command>(cmd));
  if (wrong_greeting) {
    reply(smtp::reply(smtp::status::unknown_command,
                      lmtp ? "This is LMTP: use LHLO" : "Command unrecognized"));
    count_error();
    co_return;
  }
  co_await std::visit(
      overloaded{
          [this](const smtp::helo_command& c) { return cmd_helo(*this, c); },
          [this](const smtp::ehlo_command& c) { return cmd_ehlo(*this, c); },
          [this](const smtp::lhlo_command& c) { return cmd_lhlo(*this, c); },
          [this](const smtp::mail_command& c) { return cmd_mail(*this, c); },
          [this](const smtp::rcpt_command& c) { return cmd_rcpt(*this, c); },
          [this](const smtp::data_command& c) { return cmd_data(*this, c); },
          [this](const smtp::bdat_command& c) { return cmd_bdat(*this, c); },
          [this](const smtp::rset_command& c) { return cmd_rset(*this, c); },
          [this](const smtp::noop_command& c) { return cmd_noop(*this, c); },
          [this](const smtp::quit_command& c) { return cmd_quit(*this, c); },
          [this](const smtp::vrfy_command& c) { return cmd_vrfy(*this, c); },
          [this](const smtp::expn_command& c) { return cmd_expn(*this, c); },
          [this](const smtp::help_command& c) { return cmd_help(*this, c); },
          [this](const smtp::starttls_command& c) { return cmd_starttls(*this, c); },
          [this](const smtp::auth_command& c) { return cmd_auth(*this, c); },
          [this](const smtp::xclient_command& c) { return cmd_xclient(*this, c); },
      },
      cmd);
}

std::vector<std::string> extensions(const session& s) {
  std::vector<std::string> ext;
  ext.push_back("SIZE " + std::to_string(s.cfg.max_message_size));
  ext.push_back("PIPELINING");
  ext.push_back("8BITMIME");
  ext.push_back("ENHANCEDSTATUSCODES");
  ext.push_back("SMTPUTF8");
  ext.push_back("CHUNKING");
  ext.push_back("BINARYMIME");
  ext.push_back("DSN");
  if (!s.conn.is_tls() && s.conn.tls_context()) ext.push_back("STARTTLS");
  // Mechanisms that send the password are offered only where it is protected.
  if (s.authenticated.empty() && (s.conn.is_tls() || s.cfg.auth_without_tls)) {
    ext.push_back("AUTH PLAIN LOGIN");
  }
  // XCLIENT only to the proxies allowed to use it: others need not know.
  if (s.trusted_proxy) ext.push_back("XCLIENT " + std::string(xclient_attributes));
  return ext;
}

}  // namespace hamail::smtpd

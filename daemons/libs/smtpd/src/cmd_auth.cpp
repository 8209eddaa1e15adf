// AUTH PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) per RFC 4954,
// checked against the account's userPassword from the directory.

#include "hamail/auth/login.hpp"
#include "hamail/core/base64.hpp"
#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

/// The client's next SASL response, decoded; nullopt when cancelled, malformed
/// or the session ended (the reply is queued).
awaitable<std::optional<std::string>> response(session& s, std::string_view challenge) {
  s.reply(smtp::reply(334).add_line(base64_encode(challenge)));
  if (!co_await s.flush()) co_return std::nullopt;
  auto line = co_await s.read_line();
  if (!line) co_return std::nullopt;
  if (*line == "*") {
    s.reply(smtp::status::auth_cancelled);
    co_return std::nullopt;
  }
  auto decoded = base64_decode(*line);
  if (!decoded) s.reply(smtp::status::bad_base64);
  co_return decoded;
}

/// The services a login check uses.
const auth::login_services& login_services_of(session& s) { return s.svc.login; }

/// Answers a failed login: 454 and the end of the session once the client's
/// address has failed too often, 535 otherwise.
void answer_failure(session& s, auth::login_status st) {
  if (st == auth::login_status::address_refused) {
    s.reply(smtp::reply(454, "4.7.0").add_line("Too many failed logins, try again later"));
    s.end = ending::quit;
    return;
  }
  s.reply(smtp::status::auth_failed);
  s.count_error();
}

}  // namespace

awaitable<void> cmd_auth(session& s, const smtp::auth_command& c) {
  if (s.helo.empty() || !s.esmtp) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "Send EHLO first"));
    co_return;
  }
  if (!s.authenticated.empty()) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "Already authenticated"));
    co_return;
  }
  if (s.tx) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "AUTH not allowed during a mail transaction"));
    co_return;
  }
  if (!s.conn.is_tls() && !s.cfg.auth_without_tls) {
    s.reply(smtp::status::encryption_required);
    co_return;
  }

  std::string login, password;
  if (c.mechanism == "PLAIN") {
    std::optional<std::string> msg;
    if (c.initial_response) {
      msg = *c.initial_response == "=" ? std::optional<std::string>("")
                                       : base64_decode(*c.initial_response);
      if (!msg) {
        s.reply(smtp::status::bad_base64);
        co_return;
      }
    } else {
      msg = co_await response(s, "");
      if (!msg) co_return;
    }
    auto plain = auth::parse_sasl_plain(*msg);
    if (!plain) {
      s.reply(smtp::reply(smtp::status::syntax, "Malformed PLAIN response"));
      s.count_error();
      co_return;
    }
    login = std::move(plain->login);
    password = std::move(plain->password);
    if (!plain->authzid.empty()) {
      // hamail has no proxy authorisation: acting as another user is refused.
      auto failed = auth::record_failed_login(login_services_of(s), s.conn, login);
      answer_failure(s, co_await std::move(failed));
      co_return;
    }
  } else if (c.mechanism == "LOGIN") {
    std::optional<std::string> user;
    if (c.initial_response) {
      user = base64_decode(*c.initial_response);
      if (!user) {
        s.reply(smtp::status::bad_base64);
        co_return;
      }
    } else {
      user = co_await response(s, "Username:");
      if (!user) co_return;
    }
    auto pass = co_await response(s, "Password:");
    if (!pass) co_return;
    login = std::move(*user);
    password = std::move(*pass);
  } else {
    s.reply(smtp::status::auth_mechanism_unknown);
    co_return;
  }

  auto check =
      auth::check_login(login_services_of(s), s.conn, login, std::move(password), c.mechanism);
  const auth::login_outcome outcome = co_await std::move(check);
  switch (outcome.status) {
    case auth::login_status::ok:
      s.authenticated = outcome.account.id;
      s.reply(smtp::status::auth_ok);
      break;
    case auth::login_status::failed:
    case auth::login_status::address_refused:
      answer_failure(s, outcome.status);
      break;
    case auth::login_status::temporary_failure:
      s.reply(smtp::status::auth_temp_failure);
      break;
    case auth::login_status::busy:
      s.reply(smtp::reply(454, "4.7.0").add_line("Too many logins in progress, try again later"));
      break;
    case auth::login_status::locked:
      s.reply(
          smtp::reply(535, "5.7.8")
              .add_line("Account is " + std::string(directory::to_string(outcome.account.state))));
      break;
    case auth::login_status::moving:
      s.reply(smtp::reply(454, "4.7.0").add_line("Account is being moved, try again later"));
      break;
  }
}

}  // namespace hamail::smtpd

// AUTH PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) per RFC 4954,
// checked against the account's userPassword from the directory.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/base64.hpp"
#include "password_checker.hpp"
#include "smtp/session.hpp"

namespace hamail::backend::smtp_session_detail {

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

/// Records a failed login and answers 535 after the throttle's delay (longer
/// with every failure for the same account), or 454 once the client's address
/// has failed too often.
awaitable<void> fail(session& s, const std::string& login) {
  const auto d = s.ctx.throttle.after_failure(s.conn.remote_address(), login);
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d.delay);
  co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  if (d.refused) {
    s.conn.log().warning("too many failed logins from [{}]", s.conn.remote_address());
    s.reply(smtp::reply(454, "4.7.0").add_line("Too many failed logins, try again later"));
    s.end = ending::quit;
    co_return;
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
  if (!s.conn.is_tls() && !s.cfg.smtp.auth_without_tls) {
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
    // authzid NUL authcid NUL passwd
    const auto first = msg->find('\0');
    const auto second = first == std::string::npos ? first : msg->find('\0', first + 1);
    if (second == std::string::npos) {
      s.reply(smtp::reply(smtp::status::syntax, "Malformed PLAIN response"));
      s.count_error();
      co_return;
    }
    const std::string authzid = msg->substr(0, first);
    login = msg->substr(first + 1, second - first - 1);
    password = msg->substr(second + 1);
    if (!authzid.empty() && authzid != login) {
      // hamail has no proxy authorisation: acting as another user is refused.
      co_await fail(s, login);
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

  if (s.ctx.throttle.before_attempt(s.conn.remote_address()).refused) {
    s.conn.log().warning("AUTH from [{}] refused: too many failed logins", s.conn.remote_address());
    s.reply(smtp::reply(454, "4.7.0").add_line("Too many failed logins, try again later"));
    s.end = ending::quit;
    co_return;
  }
  auto found = co_await s.ctx.directory.find_by_login(login);
  if (!found) {
    s.conn.log().warning("AUTH for {}: directory unavailable: {}", login, found.err().describe());
    s.reply(smtp::status::auth_temp_failure);
    co_return;
  }
  const bool local_check = s.ctx.bind_auth == nullptr;
  if (local_check && !s.ctx.passwords.try_claim()) {
    // Every hashing thread is busy and the queue is full: ask the client to retry
    // rather than queue without bound.
    s.conn.log().warning("AUTH for {}: password checks saturated", login);
    s.reply(smtp::reply(454, "4.7.0").add_line("Too many logins in progress, try again later"));
    co_return;
  }
  if (!found->has_value()) {
    // An unknown login costs the same hash as a known one, so the time the answer
    // takes does not tell which accounts exist.
    if (local_check) {
      auto dummy = s.ctx.passwords.verify_unknown(std::move(password));
      (void)co_await std::move(dummy);
    }
    s.conn.log().notice("AUTH {} failed: unknown login {}", c.mechanism, login);
    co_await fail(s, login);
    co_return;
  }
  const directory::account acct = **found;
  result<bool> match = false;
  if (!local_check) {
    // LDAP bind as the account: slapd checks the password (and its password policy).
    match = co_await s.ctx.bind_auth->bind_as(acct.dn, password);
  } else {
    auto check = s.ctx.passwords.verify(acct.password_hash, std::move(password));
    match = co_await std::move(check);
  }
  if (!match) {
    s.conn.log().error("AUTH for {}: password check failed: {}", login, match.err().describe());
    s.reply(match.err().is_temporary() ? smtp::reply(smtp::status::auth_temp_failure)
                                       : smtp::reply(smtp::status::auth_failed));
    co_return;
  }
  if (!*match) {
    s.conn.log().notice("AUTH {} failed for {}", c.mechanism, login);
    co_await fail(s, login);
    co_return;
  }
  if (acct.state == directory::account_state::locked ||
      acct.state == directory::account_state::disabled) {
    s.conn.log().notice("AUTH refused for {}: account {}", login, directory::to_string(acct.state));
    s.reply(smtp::reply(535, "5.7.8")
                .add_line("Account is " + std::string(directory::to_string(acct.state))));
    co_return;
  }
  if (acct.state == directory::account_state::moving) {
    s.reply(smtp::reply(454, "4.7.0").add_line("Account is being moved, try again later"));
    co_return;
  }
  s.ctx.throttle.after_success(s.conn.remote_address(), login);
  s.authenticated = acct.id;
  s.conn.log().info("AUTH {} succeeded for {}", c.mechanism, acct.id);
  s.reply(smtp::status::auth_ok);
}

}  // namespace hamail::backend::smtp_session_detail

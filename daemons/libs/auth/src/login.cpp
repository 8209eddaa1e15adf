#include "hamail/auth/login.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/auth/password_checker.hpp"

namespace hamail::auth {

boost::asio::awaitable<login_status> record_failed_login(login_services svc, net::connection& conn,
                                                         std::string login) {
  const auto d = svc.throttle.after_failure(conn.remote_address(), login);
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d.delay);
  co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  if (d.refused) {
    conn.log().warning("too many failed logins from [{}]", conn.remote_address());
    co_return login_status::address_refused;
  }
  co_return login_status::failed;
}

boost::asio::awaitable<login_outcome> check_login(login_services svc, net::connection& conn,
                                                  std::string login, std::string password,
                                                  std::string_view mechanism) {
  login_outcome out;
  if (svc.throttle.before_attempt(conn.remote_address()).refused) {
    conn.log().warning("login from [{}] refused: too many failed logins", conn.remote_address());
    out.status = login_status::address_refused;
    co_return out;
  }
  auto found = co_await svc.directory.find_by_login(login);
  if (!found) {
    conn.log().warning("login for {}: directory unavailable: {}", login, found.err().describe());
    out.status = login_status::temporary_failure;
    co_return out;
  }
  const bool local_check = svc.bind_auth == nullptr;
  if (local_check && !svc.passwords.try_claim()) {
    // Every hashing thread is busy and the queue is full: ask the client to retry
    // rather than queue without bound.
    conn.log().warning("login for {}: password checks saturated", login);
    out.status = login_status::busy;
    co_return out;
  }
  if (!found->has_value()) {
    // An unknown login costs the same hash as a known one, so the time the answer
    // takes does not tell which accounts exist.
    if (local_check) {
      auto dummy = svc.passwords.verify_unknown(std::move(password));
      (void)co_await std::move(dummy);
    }
    conn.log().notice("{} login failed: unknown login {}", mechanism, login);
    out.status = co_await record_failed_login(svc, conn, login);
    co_return out;
  }
  out.account = **found;
  result<bool> match = false;
  if (!local_check) {
    // LDAP bind as the account: slapd checks the password (and its password policy).
    match = co_await svc.bind_auth->bind_as(out.account.dn, password);
  } else {
    auto check = svc.passwords.verify(out.account.password_hash, std::move(password));
    match = co_await std::move(check);
  }
  if (!match) {
    conn.log().error("login for {}: password check failed: {}", login, match.err().describe());
    out.status =
        match.err().is_temporary() ? login_status::temporary_failure : login_status::failed;
    co_return out;
  }
  if (!*match) {
    conn.log().notice("{} login failed for {}", mechanism, login);
    out.status = co_await record_failed_login(svc, conn, login);
    co_return out;
  }
  if (out.account.state == directory::account_state::locked ||
      out.account.state == directory::account_state::disabled) {
    conn.log().notice("login refused for {}: account {}", login,
                      directory::to_string(out.account.state));
    out.status = login_status::locked;
    co_return out;
  }
  if (out.account.state == directory::account_state::moving) {
    out.status = login_status::moving;
    co_return out;
  }
  svc.throttle.after_success(conn.remote_address(), login);
  conn.log().info("{} login succeeded for {}", mechanism, out.account.id);
  out.status = login_status::ok;
  co_return out;
}

std::optional<sasl_plain> parse_sasl_plain(std::string_view message) {
  const auto first = message.find('\0');
  const auto second = first == std::string_view::npos ? first : message.find('\0', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  sasl_plain out;
  out.authzid = message.substr(0, first);
  out.login = message.substr(first + 1, second - first - 1);
  out.password = message.substr(second + 1);
  if (out.authzid == out.login) out.authzid.clear();
  return out;
}

boost::asio::awaitable<proxy_outcome> act_as(directory::directory& dir, net::connection& conn,
                                             bool trusted,
                                             const std::vector<std::string>& proxy_logins,
                                             const directory::account& proxy, std::string authzid) {
  proxy_outcome out;
  if (!trusted ||
      std::find(proxy_logins.begin(), proxy_logins.end(), proxy.login) == proxy_logins.end()) {
    conn.log().warning("{} may not act as {} (not a proxy login from a trusted address)",
                       proxy.login, authzid);
    co_return out;
  }
  auto found = co_await dir.find_by_login(authzid);
  if (!found) {
    out.status = proxy_status::temporary_failure;
    co_return out;
  }
  if (!found->has_value()) {
    out.status = proxy_status::unknown_account;
    co_return out;
  }
  out.account = std::move(**found);
  switch (out.account.state) {
    case directory::account_state::active:
      out.status = proxy_status::ok;
      conn.log().info("proxy {} acts as {}", proxy.login, out.account.id);
      break;
    case directory::account_state::moving:
      out.status = proxy_status::moving;
      break;
    case directory::account_state::locked:
    case directory::account_state::disabled:
      out.status = proxy_status::locked;
      break;
  }
  co_return out;
}

}  // namespace hamail::auth

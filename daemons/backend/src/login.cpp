#include "login.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "password_checker.hpp"

namespace hamail::backend {

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

}  // namespace hamail::backend

// LOGIN (RFC 3501 §6.2.3), and the end of every login: the answer for each
// outcome of the shared login check (login.hpp).

#include <algorithm>

#include "hamail/auth/login.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

/// The account a trusted proxy acts as; nullopt after answering why not.
awaitable<std::optional<directory::account>> proxied_account(session& s, const imap::command& c,
                                                             const directory::account& proxy,
                                                             std::string authzid) {
  auto as = auth::act_as(s.ctx.directory, s.conn, s.trusted_proxy, s.cfg.imap.proxy_logins, proxy,
                         std::move(authzid));
  auth::proxy_outcome o = co_await std::move(as);
  switch (o.status) {
    case auth::proxy_status::ok:
      co_return std::move(o.account);
    case auth::proxy_status::not_allowed:
      s.no(c, "Not authorized to act as another user", "AUTHORIZATIONFAILED");
      break;
    case auth::proxy_status::unknown_account:
      s.no(c, "Authentication failed", "AUTHENTICATIONFAILED");
      break;
    case auth::proxy_status::temporary_failure:
      s.no(c, "Authentication temporarily unavailable, try again later", "UNAVAILABLE");
      break;
    case auth::proxy_status::moving:
      s.no(c, "Account is being moved, try again later", "UNAVAILABLE");
      break;
    case auth::proxy_status::locked:
      s.no(c, "Account is " + std::string(directory::to_string(o.account.state)), "CONTACTADMIN");
      break;
  }
  co_return std::nullopt;
}

}  // namespace

awaitable<void> finish_login(session& s, const imap::command& c, std::string login,
                             std::string password, std::string_view mechanism,
                             std::string authzid) {
  auth::login_services svc{s.ctx.directory, s.ctx.throttle, s.ctx.passwords, s.ctx.bind_auth};
  auto check = auth::check_login(svc, s.conn, std::move(login), std::move(password), mechanism);
  auth::login_outcome outcome = co_await std::move(check);
  switch (outcome.status) {
    case auth::login_status::ok:
      break;
    case auth::login_status::failed:
      s.no(c, "Authentication failed", "AUTHENTICATIONFAILED");
      s.count_error();
      co_return;
    case auth::login_status::address_refused:
      s.no(c, "Too many failed logins, try again later", "UNAVAILABLE");
      s.bye("Too many failed logins");
      co_return;
    case auth::login_status::temporary_failure:
      s.no(c, "Authentication temporarily unavailable, try again later", "UNAVAILABLE");
      co_return;
    case auth::login_status::busy:
      s.no(c, "Too many logins in progress, try again later", "UNAVAILABLE");
      co_return;
    case auth::login_status::locked:
      s.no(c, "Account is " + std::string(directory::to_string(outcome.account.state)),
           "CONTACTADMIN");
      co_return;
    case auth::login_status::moving:
      s.no(c, "Account is being moved, try again later", "UNAVAILABLE");
      co_return;
  }
  if (!authzid.empty()) {
    auto as = proxied_account(s, c, outcome.account, std::move(authzid));
    auto acting = co_await std::move(as);
    if (!acting) co_return;
    outcome.account = std::move(*acting);
  }
  if (!outcome.account.owning_store.empty() && outcome.account.owning_store != s.cfg.store.name) {
    s.conn.log().warning("login for {}: account is on store {}, not {}", outcome.account.id,
                         outcome.account.owning_store, s.cfg.store.name);
    s.no(c, "Account is served by another store", "UNAVAILABLE");
    co_return;
  }
  if (s.ctx.gate != nullptr) {
    auto admitted = s.ctx.gate->enter(outcome.account.id, &s.conn);
    switch (admitted.refused) {
      case fence_state::kind_t::none:
        s.fence_token = std::move(admitted.token);
        break;
      case fence_state::kind_t::locked:
        s.conn.log().info("login for {}: the account is being moved", outcome.account.id);
        s.no(c, "Account is being moved, try again later", "UNAVAILABLE");
        co_return;
      case fence_state::kind_t::moved:
        // The proxies look the account up again on this text (imap_frontend.cpp).
        s.conn.log().info("login for {}: the account has moved to store {}", outcome.account.id,
                          admitted.store);
        s.no(c, "Account is served by another store", "UNAVAILABLE");
        co_return;
    }
  }
  co_await s.logged_in(std::move(outcome.account));
  s.ok(c, "Logged in", "CAPABILITY " + capabilities(s));
}

awaitable<void> cmd_login(session& s, const imap::command& c) {
  if (c.args.size() != 2 || !c.args[0].is_astring() || !c.args[1].is_astring()) {
    s.bad(c, "LOGIN takes a user name and a password");
    co_return;
  }
  if (!s.password_login_allowed()) {
    s.no(c, "Use STARTTLS first", "PRIVACYREQUIRED");
    co_return;
  }
  auto done = finish_login(s, c, c.args[0].text, c.args[1].text, "LOGIN", {});
  co_await std::move(done);
}

}  // namespace hamail::backend::imap_session_detail

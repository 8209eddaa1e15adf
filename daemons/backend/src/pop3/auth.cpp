// The AUTHORIZATION state: USER/PASS (RFC 1939 §7), AUTH PLAIN and LOGIN with
// initial response (RFC 5034), STLS (RFC 2595 §4), XCLIENT from a trusted
// proxy, and the end of every login: the answer for each outcome of the shared
// login check (login.hpp), then the maildrop is opened.

#include <boost/asio/ip/address.hpp>

#include "hamail/auth/login.hpp"
#include "hamail/core/base64.hpp"
#include "pop3/session.hpp"

namespace hamail::backend::pop3_session_detail {

namespace {

using pop3::resp_code;

/// Opens the INBOX and takes its snapshot, on the blocking pool.
struct open_maildrop {
  store::mail_store* st;
  std::string account;
  result<std::pair<std::shared_ptr<store::mailbox>, store::mailbox_snapshot>> operator()() const {
    auto box = st->open_mailbox(account, "INBOX");
    if (!box) return std::move(box).err();
    auto snap = (*box)->snapshot();
    if (!snap) return std::move(snap).err();
    return std::pair(std::move(*box), std::move(*snap));
  }
};

/// Enters the TRANSACTION state as `a`: maildrop lock, login delay, snapshot.
awaitable<void> enter_transaction(session& s, directory::account a) {
  if (!a.owning_store.empty() && a.owning_store != s.ctx.config.store.name) {
    s.conn.log().warning("login for {}: account is on store {}, not {}", a.id, a.owning_store,
                         s.ctx.config.store.name);
    s.reply(pop3::err("Account is served by another store", resp_code::sys_temp));
    co_return;
  }
  // Registered before the maildrop is read: a move's fence waits for the whole login.
  gate_token token;
  if (s.ctx.gate != nullptr) {
    auto admitted = s.ctx.gate->enter(a.id, &s.conn);
    switch (admitted.refused) {
      case fence_state::kind_t::none:
        token = std::move(admitted.token);
        break;
      case fence_state::kind_t::locked:
        s.conn.log().info("login for {}: the account is being moved", a.id);
        s.reply(pop3::err("Account is being moved, try again later", resp_code::sys_temp));
        co_return;
      case fence_state::kind_t::moved:
        // The proxies look the account up again on this text (pop3_frontend.cpp).
        s.conn.log().info("login for {}: the account has moved to store {}", a.id, admitted.store);
        s.reply(pop3::err("Account is served by another store", resp_code::sys_temp));
        co_return;
    }
  }
  const auto wait =
      s.ctx.accounts.record_login(a.id, s.cfg.login_delay, pop3_accounts::clock::now());
  if (wait.count() > 0) {
    s.reply(pop3::err("Logged in too recently, wait " + std::to_string(wait.count()) + "s",
                      resp_code::login_delay));
    co_return;
  }
  if (s.cfg.lock_mailbox) {
    if (!s.ctx.accounts.try_lock(a.id)) {
      s.conn.log().notice("{}: maildrop in use by another POP3 session", a.id);
      s.reply(pop3::err("Mailbox is locked by another POP3 session", resp_code::in_use));
      co_return;
    }
    s.holds_lock = true;
    s.account.id = a.id;  // for the unlock, even if the rest fails
  }
  open_maildrop job{&s.ctx.store, a.id};
  auto opened = co_await s.blocking(std::move(job));
  if (!opened) {
    s.conn.log().error("{}: cannot open INBOX: {}", a.id, opened.err().describe());
    if (s.holds_lock) {
      s.ctx.accounts.unlock(a.id);
      s.holds_lock = false;
    }
    s.reply(pop3::err("Mailbox unavailable, try again later", resp_code::sys_temp));
    co_return;
  }
  s.fence_token = std::move(token);
  s.inbox = std::move(opened->first);
  s.drop.emplace(opened->second);
  s.account = std::move(a);
  s.st = pop3::session_state::transaction;
  s.errors = 0;
  s.pending_user.clear();
  s.conn.set_idle_timeout(s.cfg.idle_timeout);
  s.conn.log().info("{} has {} message(s) ({} octets)", s.account.id, s.drop->live_count(),
                    s.drop->live_octets());
  s.reply(pop3::ok("Logged in, " + std::to_string(s.drop->live_count()) + " messages (" +
                   std::to_string(s.drop->live_octets()) + " octets)"));
}

/// Answers a failed login that the throttle has seen.
void answer_failure(session& s, auth::login_status st) {
  if (st == auth::login_status::address_refused) {
    s.reply(pop3::err("Too many failed logins, try again later", resp_code::sys_temp));
    s.end = ending::closed;
    return;
  }
  s.reply(pop3::err("Authentication failed", resp_code::auth));
  s.count_error();
}

/// Checks the credentials and, when they hold, enters the TRANSACTION state.
awaitable<void> finish_login(session& s, std::string login, std::string password,
                             std::string_view mechanism, std::string authzid) {
  auth::login_services svc{s.ctx.directory, s.ctx.throttle, s.ctx.passwords, s.ctx.bind_auth};
  auto check = auth::check_login(svc, s.conn, std::move(login), std::move(password), mechanism);
  auth::login_outcome outcome = co_await std::move(check);
  switch (outcome.status) {
    case auth::login_status::ok:
      break;
    case auth::login_status::failed:
    case auth::login_status::address_refused:
      answer_failure(s, outcome.status);
      co_return;
    case auth::login_status::temporary_failure:
      s.reply(pop3::err("Authentication temporarily unavailable, try again later",
                        resp_code::sys_temp));
      co_return;
    case auth::login_status::busy:
      s.reply(pop3::err("Too many logins in progress, try again later", resp_code::sys_temp));
      co_return;
    case auth::login_status::locked:
      s.reply(pop3::err("Account is " + std::string(directory::to_string(outcome.account.state)),
                        resp_code::sys_perm));
      co_return;
    case auth::login_status::moving:
      s.reply(pop3::err("Account is being moved, try again later", resp_code::sys_temp));
      co_return;
  }
  if (!authzid.empty()) {
    auto as = auth::act_as(s.ctx.directory, s.conn, s.trusted_proxy, s.cfg.proxy_logins,
                           outcome.account, std::move(authzid));
    auth::proxy_outcome o = co_await std::move(as);
    switch (o.status) {
      case auth::proxy_status::ok:
        outcome.account = std::move(o.account);
        break;
      case auth::proxy_status::not_allowed:
      case auth::proxy_status::unknown_account:
        s.reply(pop3::err("Not authorized to act as another user", resp_code::auth));
        s.count_error();
        co_return;
      case auth::proxy_status::temporary_failure:
      case auth::proxy_status::moving:
        s.reply(pop3::err("Account temporarily unavailable, try again later", resp_code::sys_temp));
        co_return;
      case auth::proxy_status::locked:
        s.reply(pop3::err("Account is " + std::string(directory::to_string(o.account.state)),
                          resp_code::sys_perm));
        co_return;
    }
  }
  co_await enter_transaction(s, std::move(outcome.account));
}

/// The refusal of a password login on a plain connection (Dovecot's wording).
void refuse_plaintext(session& s) {
  s.reply(pop3::err("Plaintext authentication disallowed on non-secure connections; use STLS",
                    resp_code::auth));
  s.count_error();
}

/// Sends a challenge and reads the client's answer, decoded; nullopt after
/// answering a cancel ("*"), bad base64 or the end of the session.
awaitable<std::optional<std::string>> exchange(session& s, std::string_view challenge) {
  s.reply(pop3::challenge(base64_encode(challenge)));
  auto line = co_await s.read_response();
  if (!line) co_return std::nullopt;
  if (*line == "*") {
    s.reply(pop3::err("Authentication cancelled"));
    co_return std::nullopt;
  }
  auto decoded = base64_decode(*line);
  if (!decoded) s.refuse("Invalid base64 data");
  co_return decoded;
}

}  // namespace

awaitable<void> cmd_user(session& s, const pop3::request& r) {
  if (!s.password_login_allowed()) {
    refuse_plaintext(s);
    co_return;
  }
  s.pending_user = r.text;
  s.reply(pop3::ok());
}

awaitable<void> cmd_pass(session& s, const pop3::request& r) {
  if (!s.password_login_allowed()) {
    refuse_plaintext(s);
    co_return;
  }
  if (s.pending_user.empty()) {
    s.refuse("No user name given, use USER first");
    co_return;
  }
  // RFC 1939 §7: a failed PASS returns to the start of the AUTHORIZATION state.
  std::string user;
  user.swap(s.pending_user);
  auto done = finish_login(s, std::move(user), r.text, "USER", {});
  co_await std::move(done);
}

awaitable<void> cmd_auth(session& s, const pop3::request& r) {
  if (r.text.empty()) {
    // No mechanism: the list, as Dovecot and Cyrus answer (RFC 5034 leaves it open).
    s.reply(pop3::ok("Methods supported") + "PLAIN\r\nLOGIN\r\n.\r\n");
    co_return;
  }
  if (r.text != "PLAIN" && r.text != "LOGIN") {
    s.refuse("Unsupported authentication mechanism");
    co_return;
  }
  if (!s.password_login_allowed()) {
    refuse_plaintext(s);
    co_return;
  }
  std::optional<std::string> initial;
  if (r.initial_response) {
    initial = *r.initial_response == "=" ? std::optional<std::string>("")
                                         : base64_decode(*r.initial_response);
    if (!initial) {
      s.refuse("Invalid base64 data");
      co_return;
    }
  }
  std::string login, password, authzid;
  if (r.text == "PLAIN") {
    auto msg = initial;
    if (!msg) {
      msg = co_await exchange(s, "");
      if (!msg) co_return;
    }
    auto plain = auth::parse_sasl_plain(*msg);
    if (!plain) {
      s.refuse("Malformed PLAIN response");
      co_return;
    }
    login = std::move(plain->login);
    password = std::move(plain->password);
    authzid = std::move(plain->authzid);
  } else {
    auto user = initial;
    if (!user) {
      user = co_await exchange(s, "Username:");
      if (!user) co_return;
    }
    auto pass = co_await exchange(s, "Password:");
    if (!pass) co_return;
    login = std::move(*user);
    password = std::move(*pass);
  }
  s.pending_user.clear();
  auto done = finish_login(s, std::move(login), std::move(password), r.text, std::move(authzid));
  co_await std::move(done);
}

awaitable<void> cmd_stls(session& s, const pop3::request&) {
  if (s.conn.is_tls()) {
    s.refuse("TLS is already active");
    co_return;
  }
  auto tls = s.conn.tls_context();
  if (!tls) {
    s.refuse("TLS is not available");
    co_return;
  }
  s.reply(pop3::ok("Begin TLS negotiation now"));
  if (!co_await s.flush()) co_return;
  // Whatever the client pipelined after STLS was sent in the clear and is never
  // taken as sent over TLS (CVE-2011-0411); nor is a USER given before it.
  s.discard_input();
  s.pending_user.clear();
  auto r = co_await s.conn.start_tls(tls);
  if (!r) {
    s.conn.log().notice("STLS failed: {}", r.err().describe());
    s.end = ending::closed;
    co_return;
  }
  s.conn.log().info("STLS: {} {}", s.conn.tls_protocol(), s.conn.tls_cipher());
}

awaitable<void> cmd_xclient(session& s, const pop3::request& r) {
  if (!s.trusted_proxy) {
    s.conn.log().warning("XCLIENT refused: [{}] is not a trusted proxy", s.conn.remote_address());
    s.refuse("XCLIENT is only for trusted proxies");
    co_return;
  }
  for (const auto& [name, value] : r.attributes) {
    if (name == "ADDR") {
      boost::system::error_code ec;
      auto addr = boost::asio::ip::make_address(value, ec);
      if (ec) {
        s.refuse("Invalid XCLIENT ADDR");
        co_return;
      }
      s.client_address = net::address_text(addr);
      s.conn.log().info("client address [{}] (from proxy)", s.client_address);
    } else if (name == "PORT") {
      s.conn.log().info("client port {} (from proxy)", value.substr(0, 8));
    } else if (name == "SESSION") {
      s.conn.log().info("proxy session {}", value.substr(0, 64));
    }
    // TTL, LOGIN and other attributes are accepted and ignored.
  }
  s.reply(pop3::ok());
}

}  // namespace hamail::backend::pop3_session_detail

// AUTHENTICATE PLAIN (RFC 4616) and LOGIN, with SASL-IR (RFC 4959).

#include <algorithm>

#include "hamail/auth/login.hpp"
#include "hamail/core/ascii.hpp"
#include "hamail/core/base64.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> finish_login(session& s, const imap::command& c, std::string login,
                             std::string password, std::string_view mechanism, std::string authzid);

namespace {

/// Sends a challenge and reads the client's response, decoded; nullopt after
/// answering a cancel ("*"), bad base64 or the end of the session.
awaitable<std::optional<std::string>> response(session& s, const imap::command& c,
                                               std::string_view challenge) {
  s.raw("+ " + base64_encode(challenge) + "\r\n");
  auto line = co_await s.read_line(c);
  if (!line) co_return std::nullopt;
  if (*line == "*") {
    s.bad(c, "Authentication cancelled");
    co_return std::nullopt;
  }
  auto decoded = base64_decode(*line);
  if (!decoded) s.bad(c, "Invalid base64");
  co_return decoded;
}

}  // namespace

awaitable<void> cmd_authenticate(session& s, const imap::command& c) {
  if (c.args.empty() || c.args.size() > 2 || c.args[0].kind != imap::value_kind::atom ||
      (c.args.size() == 2 && c.args[1].kind != imap::value_kind::atom &&
       c.args[1].kind != imap::value_kind::number)) {
    s.bad(c, "AUTHENTICATE takes a mechanism and an optional initial response");
    co_return;
  }
  const auto mechanism = ascii_upper_copy(c.args[0].text);
  if (mechanism != "PLAIN" && mechanism != "LOGIN") {
    s.no(c, "Unsupported authentication mechanism", "CANNOT");
    co_return;
  }
  if (!s.password_login_allowed()) {
    s.no(c, "Use STARTTLS first", "PRIVACYREQUIRED");
    co_return;
  }
  std::optional<std::string> initial;
  if (c.args.size() == 2) {
    // SASL-IR: "=" is an empty initial response.
    initial =
        c.args[1].text == "=" ? std::optional<std::string>("") : base64_decode(c.args[1].text);
    if (!initial) {
      s.bad(c, "Invalid base64");
      co_return;
    }
  }
  std::string login, password, authzid;
  if (mechanism == "PLAIN") {
    auto msg = initial;
    if (!msg) {
      msg = co_await response(s, c, "");
      if (!msg) co_return;
    }
    auto plain = auth::parse_sasl_plain(*msg);
    if (!plain) {
      s.bad(c, "Malformed PLAIN response");
      co_return;
    }
    authzid = std::move(plain->authzid);
    login = std::move(plain->login);
    password = std::move(plain->password);
    const auto& proxies = s.cfg.imap.proxy_logins;
    if (!authzid.empty() &&
        (!s.trusted_proxy || std::find(proxies.begin(), proxies.end(), login) == proxies.end())) {
      // Acting as another user is only for the proxies' own logins from a
      // trusted proxy address; anyone else is refused like a wrong password.
      s.conn.log().notice("AUTHENTICATE PLAIN: authorization identity {} refused for {}", authzid,
                          login);
      auth::login_services svc{s.ctx.directory, s.ctx.throttle, s.ctx.passwords, s.ctx.bind_auth};
      auto failed = auth::record_failed_login(svc, s.conn, login);
      if (co_await std::move(failed) == auth::login_status::address_refused) {
        s.no(c, "Too many failed logins, try again later", "UNAVAILABLE");
        s.bye("Too many failed logins");
      } else {
        s.no(c, "Authentication failed", "AUTHENTICATIONFAILED");
        s.count_error();
      }
      co_return;
    }
  } else {
    auto user = initial;
    if (!user) {
      user = co_await response(s, c, "Username:");
      if (!user) co_return;
    }
    auto pass = co_await response(s, c, "Password:");
    if (!pass) co_return;
    login = std::move(*user);
    password = std::move(*pass);
  }
  auto done =
      finish_login(s, c, std::move(login), std::move(password), mechanism, std::move(authzid));
  co_await std::move(done);
}

}  // namespace hamail::backend::imap_session_detail

// The IMAP frontend: the pre-login phase handled here (CAPABILITY, NOOP,
// LOGOUT, ID, STARTTLS, LOGIN, AUTHENTICATE PLAIN/LOGIN with SASL-IR), the
// user's credentials checked against the directory, then a login to the
// owning store's backend as the proxy for the user, and a byte relay.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "frontend.hpp"
#include "hamail/core/ascii.hpp"
#include "hamail/core/base64.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/protocol/imap/writer.hpp"
#include "login_answer.hpp"

namespace hamail::proxy {

namespace asio = boost::asio;

namespace {

constexpr std::size_t read_chunk = 4096;
bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

/// Reads backend lines until the one tagged `tag`; returns its rest after
/// "<tag> " (e.g. "OK [CAPABILITY ...] Logged in").
awaitable<result<std::string>> tagged_reply(backend_link& link, std::string_view tag,
                                            clock::time_point deadline) {
  for (;;) {
    auto reading = link.read_line(deadline);
    auto line = co_await std::move(reading);
    if (!line) co_return std::move(line).err();
    if (line->size() > tag.size() && starts_with(*line, tag) && (*line)[tag.size()] == ' ') {
      co_return line->substr(tag.size() + 1);
    }
    if (starts_with(*line, "* BYE")) {
      co_return error::temporary(errc::unavailable, "backend closing",
                                 fmt::format("{}: {}", link.peer(), *line));
    }
  }
}

attempt_outcome retry(std::string detail) {
  return attempt_outcome{attempt_status::retry, "login", {}, std::move(detail)};
}

/// What the backend is told about the login.
struct imap_login_request {
  const client_identity* who = nullptr;
  std::string authzid;  ///< the user, as the backend finds the account
};

/// The backend side of an IMAP login: greeting, STARTTLS when configured, ID
/// with the client's identity and AUTHENTICATE PLAIN as the proxy for the user
/// (the two pipelined).
awaitable<attempt_outcome> imap_backend_login(proxy_context& ctx, const imap_login_request& req,
                                              backend_link& link, const backend_target& target,
                                              clock::time_point deadline) {
  const auto& b = ctx.config.backend;
  auto greeting_read = link.read_line(deadline);
  auto greeting = co_await std::move(greeting_read);
  if (!greeting) co_return retry(greeting.err().detail);
  if (!starts_with(*greeting, "* OK")) {
    co_return retry(fmt::format("{} greeted: {}", link.peer(), *greeting));
  }
  if (b.tls == tls_mode::starttls) {
    auto w = link.write("P1 STARTTLS\r\n", deadline);
    if (auto r = co_await std::move(w); !r) co_return retry(r.err().detail);
    auto answer = tagged_reply(link, "P1", deadline);
    auto reply = co_await std::move(answer);
    if (!reply) co_return retry(reply.err().detail);
    if (!starts_with(*reply, "OK")) {
      co_return retry(fmt::format("{} refused STARTTLS: {}", link.peer(), *reply));
    }
    auto handshake = backend_start_tls(ctx, link, target, deadline);
    if (auto r = co_await std::move(handshake); !r) co_return retry(r.err().detail);
  }
  const auto& who = *req.who;
  std::string cmds = "P2 ID (\"x-originating-ip\" ";
  imap::append_string(cmds, who.address);
  cmds += " \"x-originating-port\" \"" + std::to_string(who.port) + "\" \"x-session-id\" ";
  imap::append_string(cmds, who.session_id);
  cmds += " \"x-proxy-ttl\" \"" + std::to_string(who.ttl - 1) + "\")\r\n";
  std::string plain = req.authzid;
  plain += '\0';
  plain += b.login;
  plain += '\0';
  plain += b.password;
  cmds += "P3 AUTHENTICATE PLAIN " + base64_encode(plain) + "\r\n";
  auto w = link.write(cmds, deadline);
  if (auto r = co_await std::move(w); !r) co_return retry(r.err().detail);
  auto id_answer = tagged_reply(link, "P2", deadline);
  if (auto r = co_await std::move(id_answer); !r) co_return retry(r.err().detail);
  auto login_answer = tagged_reply(link, "P3", deadline);
  auto reply = co_await std::move(login_answer);
  if (!reply) co_return retry(reply.err().detail);
  switch (classify_imap_login(*reply)) {
    case login_answer::ok:
      co_return attempt_outcome{attempt_status::ok, "login", reply->substr(3), {}};
    case login_answer::wrong_store:
      co_return attempt_outcome{attempt_status::wrong_store, "login", {}, *reply};
    case login_answer::being_moved:
      // A move's final phase holds the account on its store for a moment: wait in the
      // proxy (retry_for) as for an unreachable store, rather than fail the client.
      co_return retry(fmt::format("{}: account is being moved: {}", link.peer(), *reply));
    case login_answer::temporary:
      co_return retry(fmt::format("{}: {}", link.peer(), *reply));
    case login_answer::proxy_refused:
      log::error("backend {} refused the proxy login {} for {}: {}", link.peer(), b.login,
                 req.authzid, *reply);
      co_return retry(fmt::format("{}: {}", link.peer(), *reply));
    case login_answer::refused:
      break;
  }
  co_return attempt_outcome{attempt_status::refused, "login", *reply,
                            fmt::format("{}: {}", link.peer(), *reply)};
}

/// One client connection in the pre-login phase, then relayed.
class imap_login_session {
 public:
  imap_login_session(proxy_context& ctx, net::connection& conn)
      : ctx_(ctx),
        cfg_(ctx.config.imap),
        conn_(conn),
        parser_(imap::command_limits::before_login()) {
    who_.address = conn.remote_address();
    who_.port = conn.remote_port();
    who_.session_id = conn.session_id();
    who_.ttl = ctx.config.backend.max_hops;
    const auto& trusted = ctx.config.instance.trusted_proxies;
    upstream_trusted_ = std::find(trusted.begin(), trusted.end(), who_.address) != trusted.end();
    conn.set_idle_timeout(cfg_.idle_timeout_before_login);
  }

  awaitable<void> run() {
    conn_.log().info("connect from [{}]:{} to {} (imap proxy)", conn_.remote_address(),
                     conn_.remote_port(), conn_.info().listener);
    untagged("OK [CAPABILITY " + capabilities() + "] " + ctx_.config.instance.hostname +
             " hamail proxy ready");
    while (!done_) {
      auto step = parser_.feed(std::string_view(in_).substr(in_pos_));
      in_pos_ += step.consumed;
      if (step.status == imap::parse_status::need_more) {
        if (!co_await fill(net::read_mode::idle)) break;
        continue;
      }
      if (step.status == imap::parse_status::need_continuation) {
        out_ += "+ Ready for literal data\r\n";
        if (!co_await fill(net::read_mode::in_command)) break;
        continue;
      }
      if (step.status == imap::parse_status::error) {
        parse_error(*step.error);
        continue;
      }
      if (!step.cmd) continue;
      co_await dispatch(*step.cmd);
    }
    if (!closed_) co_await flush();
  }

 private:
  void untagged(std::string_view text) {
    out_ += "* ";
    out_ += text;
    out_ += "\r\n";
  }
  void tagged(const imap::command& c, std::string_view status, std::string_view code,
              std::string_view text) {
    out_ += c.tag.empty() ? std::string_view("*") : std::string_view(c.tag);
    out_ += ' ';
    out_ += status;
    out_ += ' ';
    if (!code.empty()) {
      out_ += '[';
      out_ += code;
      out_ += "] ";
    }
    out_ += text;
    out_ += "\r\n";
  }
  void ok(const imap::command& c, std::string_view text) { tagged(c, "OK", {}, text); }
  void no(const imap::command& c, std::string_view text, std::string_view code = {}) {
    tagged(c, "NO", code, text);
  }
  void bad(const imap::command& c, std::string_view text) {
    tagged(c, "BAD", {}, text);
    count_error();
  }
  void bye(std::string_view text) {
    untagged("BYE " + std::string(text));
    done_ = true;
  }
  void count_error() {
    if (++errors_ >= cfg_.max_errors_before_login) {
      conn_.log().notice("too many errors before login ({}), closing", errors_);
      bye("Too many invalid commands");
    }
  }
  bool password_login_allowed() const { return conn_.is_tls() || cfg_.login_without_tls; }

  std::string capabilities() const {
    std::string caps = "IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ID";
    if (!conn_.is_tls() && conn_.tls_context()) caps += " STARTTLS";
    caps += password_login_allowed() ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED";
    return caps;
  }

  awaitable<bool> flush() {
    if (out_.empty()) co_return true;
    std::string data;
    data.swap(out_);
    auto r = co_await conn_.write(data);
    if (!r) {
      closed_ = true;
      done_ = true;
      co_return false;
    }
    co_return true;
  }

  awaitable<bool> fill(net::read_mode mode) {
    if (!co_await flush()) co_return false;
    if (in_pos_ > 0) {
      in_.erase(0, in_pos_);
      in_pos_ = 0;
    }
    const std::size_t old = in_.size();
    in_.resize(old + read_chunk);
    auto r = co_await conn_.read_some(asio::buffer(in_.data() + old, read_chunk), mode);
    if (!r) {
      in_.resize(old);
      if (r.err().code == errc::timed_out) {
        bye("Autologout; idle for too long");
      } else if (r.err().code == errc::shutting_down) {
        bye("Server shutting down, reconnect later");
      } else {
        closed_ = true;
        done_ = true;
      }
      co_return false;
    }
    in_.resize(old + *r);
    co_return true;
  }

  awaitable<std::optional<std::string>> read_line(const imap::command& c) {
    parser_.expect_line();
    for (;;) {
      auto step = parser_.feed(std::string_view(in_).substr(in_pos_));
      in_pos_ += step.consumed;
      if (step.status == imap::parse_status::complete && step.line) co_return std::move(*step.line);
      if (step.status == imap::parse_status::error) {
        if (step.error && step.error->action == imap::error_action::close) {
          bye("Line too long");
        } else {
          bad(c, "Line too long");
        }
        co_return std::nullopt;
      }
      if (!co_await fill(net::read_mode::idle)) co_return std::nullopt;
    }
  }

  void parse_error(const imap::command_error& e) {
    const std::string detail(e.detail.empty() ? "Invalid command" : e.detail);
    if (e.action == imap::error_action::close) {
      conn_.log().notice("protocol error, closing: {}", imap::to_string(e.code));
      bye(detail);
      return;
    }
    imap::command c;
    c.tag = e.tag;
    bad(c, detail);
  }

  awaitable<void> dispatch(const imap::command& c) {
    if (c.uid) {
      bad(c, "Log in first");
      co_return;
    }
    if (c.name == "CAPABILITY") {
      untagged("CAPABILITY " + capabilities());
      ok(c, "Capability completed");
    } else if (c.name == "NOOP") {
      ok(c, "NOOP completed");
    } else if (c.name == "LOGOUT") {
      untagged("BYE Logging out");
      ok(c, "Logout completed");
      done_ = true;
    } else if (c.name == "ID") {
      cmd_id(c);
    } else if (c.name == "STARTTLS") {
      co_await cmd_starttls(c);
    } else if (c.name == "LOGIN") {
      if (c.args.size() != 2 || !c.args[0].is_astring() || !c.args[1].is_astring()) {
        bad(c, "LOGIN takes a user name and a password");
      } else if (!password_login_allowed()) {
        no(c, "Use STARTTLS first", "PRIVACYREQUIRED");
      } else {
        auto login = login_as(c, c.args[0].text, c.args[1].text, "LOGIN");
        co_await std::move(login);
      }
    } else if (c.name == "AUTHENTICATE") {
      co_await cmd_authenticate(c);
    } else if (c.name == "ENABLE" || c.name == "SELECT" || c.name == "EXAMINE" ||
               c.name == "LIST" || c.name == "STATUS" || c.name == "APPEND" ||
               c.name == "NAMESPACE" || c.name == "IDLE" || c.name == "COMPRESS") {
      bad(c, "Log in first");
    } else {
      bad(c, "Unknown command");
    }
  }

  void cmd_id(const imap::command& c) {
    if (c.args.size() != 1 ||
        (c.args[0].kind != imap::value_kind::list && c.args[0].kind != imap::value_kind::nil)) {
      bad(c, "ID takes a list or NIL");
      return;
    }
    const auto& items = c.args[0].items;
    if (items.size() % 2 != 0 || items.size() > 60) {
      bad(c, "ID list must hold up to 30 field-value pairs");
      return;
    }
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      const auto& k = items[i];
      const auto& v = items[i + 1];
      if (!upstream_trusted_ || v.kind == imap::value_kind::nil) continue;
      // An upstream proxy (trusted_proxies) tells who its client is.
      if (ascii_iequals(k.text, "x-originating-ip")) {
        boost::system::error_code ec;
        const auto addr = asio::ip::make_address(v.text, ec);
        if (!ec) who_.address = net::address_text(addr);
      } else if (ascii_iequals(k.text, "x-originating-port")) {
        unsigned port = 0;
        if (std::sscanf(v.text.c_str(), "%u", &port) == 1 && port <= 65535) {
          who_.port = static_cast<std::uint16_t>(port);
        }
      } else if (ascii_iequals(k.text, "x-session-id")) {
        who_.session_id = v.text.substr(0, 64) + "/" + conn_.session_id();
      } else if (ascii_iequals(k.text, "x-proxy-ttl")) {
        unsigned ttl = 0;
        if (std::sscanf(v.text.c_str(), "%u", &ttl) == 1) who_.ttl = std::min(who_.ttl, ttl);
      }
    }
    untagged("ID (\"name\" \"hamail-proxy\" \"vendor\" \"hamail\")");
    ok(c, "ID completed");
  }

  awaitable<void> cmd_starttls(const imap::command& c) {
    if (!c.args.empty()) {
      bad(c, "STARTTLS takes no arguments");
      co_return;
    }
    if (conn_.is_tls()) {
      bad(c, "TLS is already active");
      co_return;
    }
    auto tls = conn_.tls_context();
    if (!tls) {
      no(c, "TLS is not available");
      co_return;
    }
    ok(c, "Begin TLS negotiation now");
    if (!co_await flush()) co_return;
    // Whatever the client pipelined after STARTTLS was sent in the clear and is
    // never taken as sent over TLS (CVE-2011-0411).
    in_.clear();
    in_pos_ = 0;
    parser_.reset();
    auto r = co_await conn_.start_tls(tls);
    if (!r) {
      conn_.log().notice("STARTTLS failed: {}", r.err().describe());
      closed_ = true;
      done_ = true;
    }
  }

  /// Sends a SASL challenge and reads the answer, decoded; nullopt after
  /// answering a cancel or bad base64, or at the end of the session.
  awaitable<std::optional<std::string>> sasl_response(const imap::command& c,
                                                      std::string_view challenge) {
    out_ += "+ " + base64_encode(challenge) + "\r\n";
    auto line = co_await read_line(c);
    if (!line) co_return std::nullopt;
    if (*line == "*") {
      tagged(c, "BAD", {}, "Authentication cancelled");
      co_return std::nullopt;
    }
    auto decoded = base64_decode(*line);
    if (!decoded) bad(c, "Invalid base64");
    co_return decoded;
  }

  awaitable<void> cmd_authenticate(const imap::command& c) {
    if (c.args.empty() || c.args.size() > 2 || c.args[0].kind != imap::value_kind::atom ||
        (c.args.size() == 2 && c.args[1].kind != imap::value_kind::atom &&
         c.args[1].kind != imap::value_kind::number)) {
      bad(c, "AUTHENTICATE takes a mechanism and an optional initial response");
      co_return;
    }
    const auto mechanism = ascii_upper_copy(c.args[0].text);
    if (mechanism != "PLAIN" && mechanism != "LOGIN") {
      no(c, "Unsupported authentication mechanism", "CANNOT");
      co_return;
    }
    if (!password_login_allowed()) {
      no(c, "Use STARTTLS first", "PRIVACYREQUIRED");
      co_return;
    }
    std::optional<std::string> initial;
    if (c.args.size() == 2) {
      initial =
          c.args[1].text == "=" ? std::optional<std::string>("") : base64_decode(c.args[1].text);
      if (!initial) {
        bad(c, "Invalid base64");
        co_return;
      }
    }
    std::string login, password;
    if (mechanism == "PLAIN") {
      auto msg = initial;
      if (!msg) {
        msg = co_await sasl_response(c, "");
        if (!msg) co_return;
      }
      auto plain = auth::parse_sasl_plain(*msg);
      if (!plain) {
        bad(c, "Malformed PLAIN response");
        co_return;
      }
      if (!plain->authzid.empty()) {
        // Acting as another user is for proxies talking to backends, not for clients here.
        auto failed = auth::record_failed_login(ctx_.logins, conn_, plain->login);
        const auto st = co_await std::move(failed);
        no(c, "Not authorized to act as another user", "AUTHORIZATIONFAILED");
        if (st == auth::login_status::address_refused) bye("Too many failed logins");
        co_return;
      }
      login = std::move(plain->login);
      password = std::move(plain->password);
    } else {
      auto user = initial;
      if (!user) {
        user = co_await sasl_response(c, "Username:");
        if (!user) co_return;
      }
      auto pass = co_await sasl_response(c, "Password:");
      if (!pass) co_return;
      login = std::move(*user);
      password = std::move(*pass);
    }
    auto done = login_as(c, std::move(login), std::move(password), mechanism);
    co_await std::move(done);
  }

  /// Checks the credentials, logs in to the owning store's backend and relays.
  awaitable<void> login_as(const imap::command& c, std::string login, std::string password,
                           std::string_view mechanism) {
    auto check = auth::check_login(ctx_.logins, conn_, login, std::move(password), mechanism);
    auth::login_outcome outcome = co_await std::move(check);
    count_login(outcome.status);
    switch (outcome.status) {
      case auth::login_status::ok:
        break;
      case auth::login_status::failed:
        no(c, "Authentication failed", "AUTHENTICATIONFAILED");
        count_error();
        co_return;
      case auth::login_status::address_refused:
        no(c, "Too many failed logins, try again later", "UNAVAILABLE");
        bye("Too many failed logins");
        co_return;
      case auth::login_status::temporary_failure:
      case auth::login_status::busy:
        no(c, "Authentication temporarily unavailable, try again later", "UNAVAILABLE");
        co_return;
      case auth::login_status::locked:
        no(c, "Account is " + std::string(directory::to_string(outcome.account.state)),
           "CONTACTADMIN");
        co_return;
      case auth::login_status::moving:
        no(c, "Account is being moved, try again later", "UNAVAILABLE");
        co_return;
    }
    if (who_.ttl <= 1) {
      conn_.log().error("proxy loop for {}: no hops left", outcome.account.id);
      count(service::imap, "unavailable");
      no(c, "Proxy loop detected", "UNAVAILABLE");
      co_return;
    }
    // Tell the client nothing until the backend answers; flush what is pending.
    if (!co_await flush()) co_return;
    imap_login_request req{&who_, outcome.account.login.empty() ? login : outcome.account.login};
    login_dialogue dialogue = [this, &req](backend_link& link, const backend_target& target,
                                           clock::time_point deadline) {
      return imap_backend_login(ctx_, req, link, target, deadline);
    };
    auto opening = open_backend(ctx_, conn_, login, outcome.account, service::imap, dialogue);
    backend_session backend = co_await std::move(opening);
    if (!backend.link) {
      count(service::imap,
            backend.outcome.status == attempt_status::refused ? "refused" : "unavailable");
      if (backend.outcome.status == attempt_status::refused) {
        // The backend's own answer ("NO [CONTACTADMIN] ..."), under the client's tag.
        out_ += c.tag + " " + backend.outcome.reply + "\r\n";
      } else {
        no(c, "Mail store temporarily unavailable, try again later", "UNAVAILABLE");
      }
      co_return;
    }
    count(service::imap, "ok");
    conn_.log().info("login {} -> store {} ({}) via {}", outcome.account.id,
                     outcome.account.owning_store, backend.link->peer(), mechanism);
    out_ += c.tag + " " + "OK " + backend.outcome.reply + "\r\n";
    if (!co_await flush()) co_return;
    conn_.set_idle_timeout(ctx_.config.backend.relay_idle_timeout);
    // Commands the client pipelined after its login go to the backend first.
    std::string to_backend = in_.substr(in_pos_);
    std::string to_client = backend.link->take_buffered();
    // Nothing of the login phase stays allocated while the session is relayed.
    std::string().swap(in_);
    std::string().swap(out_);
    in_pos_ = 0;
    parser_.reset();
    goodbye_watch bye_seen("* BYE", false);
    done_ = true;
    closed_ = true;  // the relay and carry_session() say what is left to say
    static constexpr goodbyes say{"* BYE Mail store connection lost, reconnect\r\n",
                                  "* BYE Autologout; idle for too long\r\n"};
    auto carrying = carry_session(ctx_, conn_, backend, outcome.account, to_backend, to_client,
                                  bye_seen, false, say);
    co_await std::move(carrying);
  }

  void count(service svc, std::string_view result) {
    if (ctx_.stats) ctx_.stats->login(svc, result);
  }
  void count_login(auth::login_status st) { count_check(ctx_, service::imap, st); }

  proxy_context& ctx_;
  const login_phase_settings& cfg_;
  net::connection& conn_;
  imap::command_parser parser_;
  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
  std::size_t errors_ = 0;
  bool done_ = false;
  bool closed_ = false;
  bool upstream_trusted_ = false;
  client_identity who_;
};

class imap_frontend final : public net::protocol {
 public:
  explicit imap_frontend(proxy_context& ctx) : ctx_(ctx) {}
  awaitable<void> run(net::connection& conn) override {
    imap_login_session s(ctx_, conn);
    co_await s.run();
  }
  std::string busy_reply() const override {
    return "* BYE Too many connections, try again later\r\n";
  }
  std::string shutdown_reply() const override {
    return "* BYE Server shutting down, reconnect later\r\n";
  }

 private:
  proxy_context& ctx_;
};

}  // namespace

std::shared_ptr<net::protocol> make_imap_frontend(proxy_context& ctx) {
  return std::make_shared<imap_frontend>(ctx);
}

}  // namespace hamail::proxy

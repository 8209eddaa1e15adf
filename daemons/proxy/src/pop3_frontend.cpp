// The POP3 frontend: the AUTHORIZATION state handled here (CAPA, STLS, USER,
// PASS, AUTH PLAIN/LOGIN with initial response, QUIT; XCLIENT from trusted
// upstream proxies), the credentials checked against the directory, then a
// login to the owning store's backend as the proxy for the user, and a relay.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "frontend.hpp"
#include "hamail/core/base64.hpp"
#include "hamail/protocol/pop3/command_parser.hpp"
#include "hamail/protocol/pop3/response.hpp"
#include "login_answer.hpp"

namespace hamail::proxy {

namespace asio = boost::asio;
using pop3::resp_code;

namespace {

constexpr std::size_t read_chunk = 4096;

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

attempt_outcome retry(std::string detail) {
  return attempt_outcome{attempt_status::retry, "login", {}, std::move(detail)};
}

/// What the backend is told about the login.
struct pop3_login_request {
  const client_identity* who = nullptr;
  std::string authzid;
};

/// Reads one status line of the backend ("+OK ..." or "-ERR ...").
awaitable<result<std::string>> status_line(backend_link& link, clock::time_point deadline) {
  auto reading = link.read_line(deadline);
  auto line = co_await std::move(reading);
  if (!line) co_return std::move(line).err();
  if (!starts_with(*line, "+OK") && !starts_with(*line, "-ERR")) {
    co_return error::temporary(
        errc::invalid_input, "backend protocol error",
        fmt::format("{}: unexpected line {}", link.peer(), line->substr(0, 80)));
  }
  co_return std::move(*line);
}

/// The backend side of a POP3 login: greeting, STLS when configured, XCLIENT
/// with the client's identity and AUTH PLAIN as the proxy for the user (the
/// two pipelined).
awaitable<attempt_outcome> pop3_backend_login(proxy_context& ctx, const pop3_login_request& req,
                                              backend_link& link, const backend_target& target,
                                              clock::time_point deadline) {
  const auto& b = ctx.config.backend;
  auto greeting_read = status_line(link, deadline);
  auto greeting = co_await std::move(greeting_read);
  if (!greeting) co_return retry(greeting.err().detail);
  if (!starts_with(*greeting, "+OK")) {
    co_return retry(fmt::format("{} greeted: {}", link.peer(), *greeting));
  }
  if (b.tls == tls_mode::starttls) {
    auto w = link.write("STLS\r\n", deadline);
    if (auto r = co_await std::move(w); !r) co_return retry(r.err().detail);
    auto answer = status_line(link, deadline);
    auto reply = co_await std::move(answer);
    if (!reply) co_return retry(reply.err().detail);
    if (!starts_with(*reply, "+OK")) {
      co_return retry(fmt::format("{} refused STLS: {}", link.peer(), *reply));
    }
    auto handshake = backend_start_tls(ctx, link, target, deadline);
    if (auto r = co_await std::move(handshake); !r) co_return retry(r.err().detail);
  }
  const auto& who = *req.who;
  std::string plain = req.authzid;
  plain += '\0';
  plain += b.login;
  plain += '\0';
  plain += b.password;
  // XCLIENT values are atoms: the session id is made of [A-Za-z0-9/-].
  const std::string cmds =
      fmt::format("XCLIENT ADDR={} PORT={} SESSION={} TTL={}\r\nAUTH PLAIN {}\r\n", who.address,
                  who.port, who.session_id, who.ttl - 1, base64_encode(plain));
  auto w = link.write(cmds, deadline);
  if (auto r = co_await std::move(w); !r) co_return retry(r.err().detail);
  auto xclient_answer = status_line(link, deadline);
  auto xclient = co_await std::move(xclient_answer);
  if (!xclient) co_return retry(xclient.err().detail);
  if (!starts_with(*xclient, "+OK")) {
    log::error("backend {} refused XCLIENT from this proxy (is it in [pop3] trusted_proxies?): {}",
               link.peer(), *xclient);
  }
  auto login_answer = status_line(link, deadline);
  auto reply = co_await std::move(login_answer);
  if (!reply) co_return retry(reply.err().detail);
  switch (classify_pop3_login(*reply)) {
    case login_answer::ok:
      co_return attempt_outcome{attempt_status::ok, "login", *reply, {}};
    case login_answer::wrong_store:
      co_return attempt_outcome{attempt_status::wrong_store, "login", {}, *reply};
    case login_answer::refused:
      co_return attempt_outcome{attempt_status::refused, "login", *reply, *reply};
    case login_answer::being_moved:
      // A move's final phase holds the account on its store for a moment: wait in the
      // proxy (retry_for) as for an unreachable store, rather than fail the client.
      co_return retry(fmt::format("{}: account is being moved: {}", link.peer(), *reply));
    case login_answer::proxy_refused:
      log::error("backend {} refused the proxy login {} for {}: {}", link.peer(), b.login,
                 req.authzid, *reply);
      break;
    case login_answer::temporary:
      break;
  }
  co_return retry(fmt::format("{}: {}", link.peer(), *reply));
}

class pop3_login_session {
 public:
  pop3_login_session(proxy_context& ctx, net::connection& conn)
      : ctx_(ctx), cfg_(ctx.config.pop3), conn_(conn) {
    who_.address = conn.remote_address();
    who_.port = conn.remote_port();
    who_.session_id = conn.session_id();
    who_.ttl = ctx.config.backend.max_hops;
    const auto& trusted = ctx.config.instance.trusted_proxies;
    upstream_trusted_ = std::find(trusted.begin(), trusted.end(), who_.address) != trusted.end();
    conn.set_idle_timeout(cfg_.idle_timeout_before_login);
  }

  awaitable<void> run() {
    conn_.log().info("connect from [{}]:{} to {} (pop3 proxy)", conn_.remote_address(),
                     conn_.remote_port(), conn_.info().listener);
    out_ += pop3::ok(ctx_.config.instance.hostname + " hamail proxy POP3 ready");
    while (!done_) {
      auto step = parser_.feed(std::string_view(in_).substr(in_pos_));
      in_pos_ += step.consumed;
      if (step.status == pop3::parse_status::need_more) {
        if (!co_await fill()) break;
        continue;
      }
      if (step.status == pop3::parse_status::error) {
        out_ += step.error ? pop3::err(*step.error) : pop3::err("Invalid command");
        count_error();
        continue;
      }
      if (!step.cmd) continue;
      const auto checked = pop3::validate(*step.cmd, pop3::session_state::authorization);
      if (checked.error) {
        out_ += pop3::err(*checked.error);
        count_error();
        continue;
      }
      co_await dispatch(*checked.req);
    }
    if (!closed_) co_await flush();
  }

 private:
  void refuse(std::string_view text) {
    out_ += pop3::err(text);
    count_error();
  }
  void count_error() {
    if (++errors_ >= cfg_.max_errors_before_login) {
      conn_.log().notice("too many errors before login ({}), closing", errors_);
      out_ += pop3::err("Too many invalid commands");
      done_ = true;
    }
  }
  bool password_login_allowed() const { return conn_.is_tls() || cfg_.login_without_tls; }

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

  awaitable<bool> fill() {
    if (!co_await flush()) co_return false;
    if (in_pos_ > 0) {
      in_.erase(0, in_pos_);
      in_pos_ = 0;
    }
    const std::size_t old = in_.size();
    in_.resize(old + read_chunk);
    auto r =
        co_await conn_.read_some(asio::buffer(in_.data() + old, read_chunk), net::read_mode::idle);
    if (!r) {
      in_.resize(old);
      if (r.err().code == errc::timed_out) {
        out_ += pop3::err("Disconnected for inactivity");
      } else if (r.err().code == errc::shutting_down) {
        out_ += pop3::err("Server shutting down, reconnect later", resp_code::sys_temp);
      } else {
        closed_ = true;
      }
      done_ = true;
      co_return false;
    }
    in_.resize(old + *r);
    co_return true;
  }

  awaitable<std::optional<std::string>> read_response() {
    parser_.set_mode(pop3::input_mode::auth_continuation);
    for (;;) {
      auto step = parser_.feed(std::string_view(in_).substr(in_pos_));
      in_pos_ += step.consumed;
      if (step.status == pop3::parse_status::complete && step.response) {
        parser_.set_mode(pop3::input_mode::command);
        co_return std::string(*step.response);
      }
      if (step.status == pop3::parse_status::error) {
        parser_.set_mode(pop3::input_mode::command);
        out_ += step.error ? pop3::err(*step.error) : pop3::err("Invalid response");
        count_error();
        co_return std::nullopt;
      }
      if (!co_await fill()) co_return std::nullopt;
    }
  }

  awaitable<void> dispatch(const pop3::request& r) {
    switch (r.what) {
      case pop3::verb::capa:
        cmd_capa();
        break;
      case pop3::verb::quit:
        out_ += pop3::ok("Logging out");
        done_ = true;
        break;
      case pop3::verb::stls:
        co_await cmd_stls();
        break;
      case pop3::verb::user:
        if (!password_login_allowed()) {
          refuse_plaintext();
        } else {
          pending_user_ = r.text;
          out_ += pop3::ok();
        }
        break;
      case pop3::verb::pass:
        if (!password_login_allowed()) {
          refuse_plaintext();
        } else if (pending_user_.empty()) {
          refuse("No user name given, use USER first");
        } else {
          std::string user;
          user.swap(pending_user_);
          auto login = login_as(std::move(user), r.text, "USER");
          co_await std::move(login);
        }
        break;
      case pop3::verb::auth:
        co_await cmd_auth(r);
        break;
      case pop3::verb::xclient:
        cmd_xclient(r);
        break;
      default:
        refuse("Not valid before login");
        break;
    }
  }

  void refuse_plaintext() {
    out_ += pop3::err("Plaintext authentication disallowed on non-secure connections; use STLS",
                      resp_code::auth);
    count_error();
  }

  void cmd_capa() {
    std::string text = pop3::ok("Capability list follows");
    text += "TOP\r\nUIDL\r\n";
    if (password_login_allowed()) text += "USER\r\n";
    text += "PIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n";
    if (password_login_allowed()) text += "SASL PLAIN LOGIN\r\n";
    if (!conn_.is_tls() && conn_.tls_context()) text += "STLS\r\n";
    text += "IMPLEMENTATION hamail-proxy\r\n.\r\n";
    out_ += text;
  }

  void cmd_xclient(const pop3::request& r) {
    if (!upstream_trusted_) {
      conn_.log().warning("XCLIENT refused: [{}] is not a trusted proxy", conn_.remote_address());
      refuse("XCLIENT is only for trusted proxies");
      return;
    }
    for (const auto& [name, value] : r.attributes) {
      if (name == "ADDR") {
        boost::system::error_code ec;
        const auto addr = asio::ip::make_address(value, ec);
        if (ec) {
          refuse("Invalid XCLIENT ADDR");
          return;
        }
        who_.address = net::address_text(addr);
      } else if (name == "PORT") {
        unsigned port = 0;
        if (std::sscanf(value.c_str(), "%u", &port) == 1 && port <= 65535) {
          who_.port = static_cast<std::uint16_t>(port);
        }
      } else if (name == "SESSION") {
        who_.session_id = value.substr(0, 64) + "/" + conn_.session_id();
      } else if (name == "TTL") {
        unsigned ttl = 0;
        if (std::sscanf(value.c_str(), "%u", &ttl) == 1) who_.ttl = std::min(who_.ttl, ttl);
      }
    }
    out_ += pop3::ok();
  }

  awaitable<void> cmd_stls() {
    if (conn_.is_tls()) {
      refuse("TLS is already active");
      co_return;
    }
    auto tls = conn_.tls_context();
    if (!tls) {
      refuse("TLS is not available");
      co_return;
    }
    out_ += pop3::ok("Begin TLS negotiation now");
    if (!co_await flush()) co_return;
    // Nothing pipelined after STLS counts, nor a USER given before it (CVE-2011-0411).
    in_.clear();
    in_pos_ = 0;
    parser_.reset();
    pending_user_.clear();
    auto r = co_await conn_.start_tls(tls);
    if (!r) {
      conn_.log().notice("STLS failed: {}", r.err().describe());
      closed_ = true;
      done_ = true;
    }
  }

  awaitable<std::optional<std::string>> exchange(std::string_view challenge) {
    out_ += pop3::challenge(base64_encode(challenge));
    auto line = co_await read_response();
    if (!line) co_return std::nullopt;
    if (*line == "*") {
      out_ += pop3::err("Authentication cancelled");
      co_return std::nullopt;
    }
    auto decoded = base64_decode(*line);
    if (!decoded) refuse("Invalid base64 data");
    co_return decoded;
  }

  awaitable<void> cmd_auth(const pop3::request& r) {
    if (r.text.empty()) {
      out_ += pop3::ok("Methods supported") + "PLAIN\r\nLOGIN\r\n.\r\n";
      co_return;
    }
    if (r.text != "PLAIN" && r.text != "LOGIN") {
      refuse("Unsupported authentication mechanism");
      co_return;
    }
    if (!password_login_allowed()) {
      refuse_plaintext();
      co_return;
    }
    std::optional<std::string> initial;
    if (r.initial_response) {
      initial = *r.initial_response == "=" ? std::optional<std::string>("")
                                           : base64_decode(*r.initial_response);
      if (!initial) {
        refuse("Invalid base64 data");
        co_return;
      }
    }
    std::string login, password;
    if (r.text == "PLAIN") {
      auto msg = initial;
      if (!msg) {
        msg = co_await exchange("");
        if (!msg) co_return;
      }
      auto plain = auth::parse_sasl_plain(*msg);
      if (!plain) {
        refuse("Malformed PLAIN response");
        co_return;
      }
      if (!plain->authzid.empty()) {
        auto failed = auth::record_failed_login(ctx_.logins, conn_, plain->login);
        const auto st = co_await std::move(failed);
        out_ += pop3::err("Not authorized to act as another user", resp_code::auth);
        if (st == auth::login_status::address_refused) done_ = true;
        co_return;
      }
      login = std::move(plain->login);
      password = std::move(plain->password);
    } else {
      auto user = initial;
      if (!user) {
        user = co_await exchange("Username:");
        if (!user) co_return;
      }
      auto pass = co_await exchange("Password:");
      if (!pass) co_return;
      login = std::move(*user);
      password = std::move(*pass);
    }
    pending_user_.clear();
    auto done = login_as(std::move(login), std::move(password), r.text);
    co_await std::move(done);
  }

  awaitable<void> login_as(std::string login, std::string password, std::string_view mechanism) {
    auto check = auth::check_login(ctx_.logins, conn_, login, std::move(password), mechanism);
    auth::login_outcome outcome = co_await std::move(check);
    count_login(outcome.status);
    switch (outcome.status) {
      case auth::login_status::ok:
        break;
      case auth::login_status::failed:
        out_ += pop3::err("Authentication failed", resp_code::auth);
        count_error();
        co_return;
      case auth::login_status::address_refused:
        out_ += pop3::err("Too many failed logins, try again later", resp_code::sys_temp);
        done_ = true;
        co_return;
      case auth::login_status::temporary_failure:
      case auth::login_status::busy:
        out_ += pop3::err("Authentication temporarily unavailable, try again later",
                          resp_code::sys_temp);
        co_return;
      case auth::login_status::locked:
        out_ += pop3::err("Account is " + std::string(directory::to_string(outcome.account.state)),
                          resp_code::sys_perm);
        co_return;
      case auth::login_status::moving:
        out_ += pop3::err("Account is being moved, try again later", resp_code::sys_temp);
        co_return;
    }
    if (who_.ttl <= 1) {
      conn_.log().error("proxy loop for {}: no hops left", outcome.account.id);
      count(service::pop3, "unavailable");
      out_ += pop3::err("Proxy loop detected", resp_code::sys_temp);
      co_return;
    }
    if (!co_await flush()) co_return;
    pop3_login_request req{&who_, outcome.account.login.empty() ? login : outcome.account.login};
    login_dialogue dialogue = [this, &req](backend_link& link, const backend_target& target,
                                           clock::time_point deadline) {
      return pop3_backend_login(ctx_, req, link, target, deadline);
    };
    auto opening = open_backend(ctx_, conn_, login, outcome.account, service::pop3, dialogue);
    backend_session backend = co_await std::move(opening);
    if (!backend.link) {
      count(service::pop3,
            backend.outcome.status == attempt_status::refused ? "refused" : "unavailable");
      if (backend.outcome.status == attempt_status::refused) {
        out_ += backend.outcome.reply + "\r\n";
      } else {
        out_ +=
            pop3::err("Mail store temporarily unavailable, try again later", resp_code::sys_temp);
      }
      co_return;
    }
    count(service::pop3, "ok");
    conn_.log().info("login {} -> store {} ({}) via {}", outcome.account.id,
                     outcome.account.owning_store, backend.link->peer(), mechanism);
    out_ += backend.outcome.reply + "\r\n";
    if (!co_await flush()) co_return;
    conn_.set_idle_timeout(ctx_.config.backend.relay_idle_timeout);
    std::string to_backend = in_.substr(in_pos_);
    std::string to_client = backend.link->take_buffered();
    // Nothing of the login phase stays allocated while the session is relayed.
    std::string().swap(in_);
    std::string().swap(out_);
    in_pos_ = 0;
    parser_.reset();
    goodbye_watch quit_sent("QUIT", true);
    done_ = true;
    closed_ = true;
    static const std::string lost =
        pop3::err("Mail store connection lost, reconnect", resp_code::sys_temp);
    const goodbyes say{lost, {}};
    auto carrying = carry_session(ctx_, conn_, backend, outcome.account, to_backend, to_client,
                                  quit_sent, true, say);
    co_await std::move(carrying);
  }

  void count(service svc, std::string_view result) {
    if (ctx_.stats) ctx_.stats->login(svc, result);
  }
  void count_login(auth::login_status st) { count_check(ctx_, service::pop3, st); }

  proxy_context& ctx_;
  const login_phase_settings& cfg_;
  net::connection& conn_;
  pop3::command_parser parser_;
  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
  std::string pending_user_;
  std::size_t errors_ = 0;
  bool done_ = false;
  bool closed_ = false;
  bool upstream_trusted_ = false;
  client_identity who_;
};

class pop3_frontend final : public net::protocol {
 public:
  explicit pop3_frontend(proxy_context& ctx) : ctx_(ctx) {}
  awaitable<void> run(net::connection& conn) override {
    pop3_login_session s(ctx_, conn);
    co_await s.run();
  }
  std::string busy_reply() const override {
    return pop3::err("Too many connections, try again later", resp_code::sys_temp);
  }
  std::string shutdown_reply() const override {
    return pop3::err("Server shutting down, reconnect later", resp_code::sys_temp);
  }

 private:
  proxy_context& ctx_;
};

}  // namespace

std::shared_ptr<net::protocol> make_pop3_frontend(proxy_context& ctx) {
  return std::make_shared<pop3_frontend>(ctx);
}

std::shared_ptr<net::protocol> make_imap_frontend(proxy_context& ctx);

net::protocol_factories frontend_protocols(proxy_context& ctx) {
  net::protocol_factories f;
  f["imap"] = [&ctx](const listener_settings&) { return make_imap_frontend(ctx); };
  f["pop3"] = [&ctx](const listener_settings&) { return make_pop3_frontend(ctx); };
  return f;
}

}  // namespace hamail::proxy

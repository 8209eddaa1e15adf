#include "pop3/session.hpp"

#include <algorithm>

namespace hamail::backend::pop3_session_detail {

namespace {

constexpr std::size_t read_chunk = 4096;

}  // namespace

session::session(pop3_context& c, net::connection& cn) : ctx(c), cfg(c.config.pop3), conn(cn) {
  client_address = conn.remote_address();
  trusted_proxy = std::find(cfg.trusted_proxies.begin(), cfg.trusted_proxies.end(),
                            client_address) != cfg.trusted_proxies.end();
  conn.set_idle_timeout(cfg.idle_timeout_before_login);
}

session::~session() {
  if (holds_lock) ctx.accounts.unlock(account.id);
}

void session::refuse(std::string_view text, pop3::resp_code code) {
  out_ += pop3::err(text, code);
  count_error();
}

void session::count_error() {
  const auto limit = st == pop3::session_state::authorization
                         ? std::min(cfg.max_errors_before_login, cfg.max_errors)
                         : cfg.max_errors;
  if (++errors >= limit) {
    conn.log().notice("too many errors ({}), closing", errors);
    out_ += pop3::err("Too many invalid commands, closing connection");
    end = ending::closed;
  }
}

awaitable<bool> session::flush() {
  if (out_.empty()) co_return true;
  std::string data;
  data.swap(out_);
  auto r = co_await conn.write(data);
  // Keep a small buffer for the next response; drop a big RETR's.
  if (data.capacity() <= 16 * 1024 && out_.empty()) {
    data.clear();
    out_.swap(data);
  }
  if (!r) {
    conn.log().debug("write failed: {}", r.err().describe());
    end = ending::closed;
    co_return false;
  }
  co_return true;
}

awaitable<bool> session::fill() {
  if (!co_await flush()) co_return false;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > 0) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  const std::size_t old = in_.size();
  in_.resize(old + read_chunk);
  auto r = co_await conn.read_some(boost::asio::buffer(in_.data() + old, read_chunk),
                                   net::read_mode::idle);
  if (!r) {
    in_.resize(old);
    switch (r.err().code) {
      case errc::timed_out:
        // RFC 1939 §3: an autologout ends the session without entering UPDATE.
        conn.log().info("timeout: {}", r.err().detail);
        out_ += pop3::err("Disconnected for inactivity");
        break;
      case errc::shutting_down:
        // A move's fence ends the account's sessions the way a drain does (ADR 0005).
        out_ += pop3::err(fence_token.ended_by_fence() ? "Account is being moved, try again later"
                                                       : "Server shutting down, reconnect later",
                          pop3::resp_code::sys_temp);
        break;
      default:
        conn.log().debug("read ended: {}", r.err().describe());
        break;
    }
    end = ending::closed;
    co_return false;
  }
  in_.resize(old + *r);
  co_return true;
}

awaitable<std::optional<std::string>> session::read_response() {
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

void session::discard_input() {
  in_.clear();
  in_pos_ = 0;
  parser_.reset();
}

bool session::password_login_allowed() const { return conn.is_tls() || cfg.login_without_tls; }

std::string session::capa() const {
  pop3::capabilities c;
  const bool before_login = st == pop3::session_state::authorization;
  c.user = before_login && password_login_allowed();
  if (before_login && password_login_allowed()) c.sasl = {"PLAIN", "LOGIN"};
  c.stls = before_login && !conn.is_tls() && conn.tls_context() != nullptr;
  c.expire = cfg.expire;
  c.login_delay = std::to_string(cfg.login_delay.count());
  c.implementation = "hamail";
  return pop3::capa(c);
}

awaitable<void> session::dispatch(const pop3::request& r) {
  switch (r.what) {
    case pop3::verb::capa:
      reply(capa());
      break;
    case pop3::verb::noop:
      reply(pop3::ok());
      break;
    case pop3::verb::user:
      co_await cmd_user(*this, r);
      break;
    case pop3::verb::pass:
      co_await cmd_pass(*this, r);
      break;
    case pop3::verb::auth:
      co_await cmd_auth(*this, r);
      break;
    case pop3::verb::stls:
      co_await cmd_stls(*this, r);
      break;
    case pop3::verb::xclient:
      co_await cmd_xclient(*this, r);
      break;
    case pop3::verb::stat:
      co_await cmd_stat(*this, r);
      break;
    case pop3::verb::list:
    case pop3::verb::uidl:
      co_await cmd_list(*this, r);
      break;
    case pop3::verb::retr:
    case pop3::verb::top:
      co_await cmd_retr(*this, r);
      break;
    case pop3::verb::dele:
      co_await cmd_dele(*this, r);
      break;
    case pop3::verb::rset:
      co_await cmd_rset(*this, r);
      break;
    case pop3::verb::quit:
      co_await cmd_quit(*this, r);
      break;
    case pop3::verb::apop:
      refuse("APOP not supported");
      break;
  }
}

awaitable<void> session::run() {
  conn.log().info("connect from [{}]:{} to {} ({})", conn.remote_address(), conn.remote_port(),
                  conn.info().listener, conn.info().protocol);
  reply(pop3::ok(ctx.config.store.hostname + " hamail POP3 ready"));
  while (end == ending::none) {
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
    const auto checked = pop3::validate(*step.cmd, st);
    if (checked.error) {
      out_ += pop3::err(*checked.error);
      count_error();
      continue;
    }
    co_await dispatch(*checked.req);
    // Large responses go out as they are made; small ones wait for the next
    // read, so pipelined commands share one write (RFC 2449 PIPELINING).
    if (out_.size() >= 64 * 1024 && !co_await flush()) break;
  }
  if (end != ending::closed || !out_.empty()) co_await flush();
  conn.log().info("disconnect{}{}: {} error(s)", account.id.empty() ? "" : " ", account.id, errors);
}

}  // namespace hamail::backend::pop3_session_detail

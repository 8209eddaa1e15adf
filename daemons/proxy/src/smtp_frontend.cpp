// The SMTP frontend of hamail-proxy: port 25 (mail for the local domains) and
// submission (587 with STARTTLS + AUTH, 465 with implicit TLS). The protocol is
// the shared SMTP session (libs/smtpd); this file is its mail_handler.
//
// Each RCPT is answered live: the recipient is looked up in the directory, a
// connection to its store's LMTP listener (or to the smarthost, for other
// domains from authenticated clients) is opened for the transaction, and the
// recipient is passed on there; the client gets that server's own answer
// (quota, moving account, unknown user). The body is spooled to an unnamed
// file, then sent to every store and the smarthost in parallel; a client hears
// 250 only once every one of them said 2xx for every recipient, i.e. after
// the stores' fsync. hamail keeps no outbound queue: a store or a smarthost
// that cannot be reached gives the client a 4xx and its MTA retries.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "frontend.hpp"
#include "hamail/net/run_blocking.hpp"
#include "hamail/protocol/smtp/xtext.hpp"
#include "hamail/relay/smtp_client.hpp"
#include "hamail/smtpd/session.hpp"

namespace hamail::proxy {

namespace {

namespace asio = boost::asio;
using smtpd::session;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------- the spool

/// The message body in an unnamed file of [proxy] spool_dir, written on the
/// spool pool so the event loop never waits for the disk. Nothing is fsync'd:
/// the stores make the message durable before anyone answers 250.
class spool_body final : public smtpd::message_body {
 public:
  static constexpr std::size_t chunk_size = 128 * 1024;

  spool_body(asio::thread_pool& pool, int fd) : pool_(pool), fd_(fd) {}
  ~spool_body() override { ::close(fd_); }
  spool_body(const spool_body&) = delete;
  spool_body& operator=(const spool_body&) = delete;

  /// Opens an unnamed file in `dir` (a named one, unlinked at once, where the
  /// filesystem has no O_TMPFILE).
  static result<std::unique_ptr<spool_body>> open(asio::thread_pool& pool,
                                                  const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
      std::string name = (dir / "spool.XXXXXX").string();
      fd = ::mkostemp(name.data(), O_CLOEXEC);
      if (fd >= 0) ::unlink(name.c_str());
    }
    if (fd < 0) {
      return error::temporary(
          errc::io_error, "spool unavailable",
          "cannot create a spool file in " + dir.string() + ": " + std::strerror(errno));
    }
    return std::make_unique<spool_body>(pool, fd);
  }

  void write(std::string_view chunk) override {
    if (!saw_nul_ && chunk.find('\0') != std::string_view::npos) saw_nul_ = true;
    held_.append(chunk);
  }
  bool needs_flush() const noexcept override { return held_.size() >= chunk_size; }
  bool saw_nul() const noexcept override { return saw_nul_; }

  asio::awaitable<void> flush() override {
    if (held_.empty() || error_) {
      held_.clear();
      co_return;
    }
    std::string data;
    data.swap(held_);
    const int fd = fd_;
    auto written = co_await net::run_blocking(pool_, [fd, &data]() -> result<void> {
      std::size_t done = 0;
      while (done < data.size()) {
        const auto n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
          if (errno == EINTR) continue;
          return error::temporary(errc::io_error, "spool write failed", std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
      }
      return ok();
    });
    if (!written) error_ = written.err();
  }

  /// Writes the rest and opens the file for the deliveries to read.
  asio::awaitable<result<std::shared_ptr<relay::file_body>>> finish() {
    co_await flush();
    if (error_) co_return *error_;
    co_return relay::file_body::open("/proc/self/fd/" + std::to_string(fd_));
  }

 private:
  asio::thread_pool& pool_;
  int fd_;
  std::string held_;
  std::optional<error> error_;
  bool saw_nul_ = false;
};

// ---------------------------------------------------------------- envelope text

std::string mail_parameters_text(const smtp::mail_parameters& p) {
  std::string out;
  const auto add = [&out](std::string_view word) {
    if (!out.empty()) out += ' ';
    out += word;
  };
  if (p.body) {
    switch (*p.body) {
      case smtp::body_type::seven_bit:
        add("BODY=7BIT");
        break;
      case smtp::body_type::eight_bit_mime:
        add("BODY=8BITMIME");
        break;
      case smtp::body_type::binary_mime:
        add("BODY=BINARYMIME");
        break;
    }
  }
  if (p.smtputf8) add("SMTPUTF8");
  if (p.ret) add(*p.ret == smtp::dsn_return::full ? "RET=FULL" : "RET=HDRS");
  if (p.envid) add("ENVID=" + smtp::encode_xtext(*p.envid));
  return out;
}

std::string rcpt_parameters_text(const smtp::rcpt_parameters& p) {
  std::string out;
  if (p.notify) {
    std::string n;
    if (p.notify->never) n = "NEVER";
    if (p.notify->success) n += "SUCCESS,";
    if (p.notify->failure) n += "FAILURE,";
    if (p.notify->delay) n += "DELAY,";
    if (!n.empty() && n.back() == ',') n.pop_back();
    out = "NOTIFY=" + n;
  }
  if (p.orcpt) {
    if (!out.empty()) out += ' ';
    out += "ORCPT=" + p.orcpt->raw;
  }
  return out;
}

/// A reply from a store or the smarthost, passed on to the client.
smtp::reply passed_on(const smtp::server_reply& r) {
  smtp::reply out(r.code, r.enhanced);
  if (r.lines.empty()) out.add_line("");
  for (const auto& line : r.lines) out.add_line(line);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---------------------------------------------------------------- the handler

/// One server the transaction's recipients go to: a store's LMTP or the smarthost.
struct upstream {
  std::string name;  ///< the store's name, or "smarthost"
  std::unique_ptr<relay::smtp_client> client;
  bool open = false;         ///< MAIL accepted in this transaction
  bool lost = false;         ///< the connection failed after recipients were accepted on it
  std::size_t accepted = 0;  ///< recipients accepted in this transaction
  std::vector<relay::recipient_result> done;  ///< finish()'s results
  /// The XCLIENT attributes the connection was opened with (stores only): a
  /// kept connection is used again only while the client is still the same
  /// (EHLO and AUTH may change between transactions).
  std::vector<std::pair<std::string, std::string>> named;
};

/// The XCLIENT attributes telling a store who the client is (Postfix
/// XCLIENT_README; the store believes them only from its [smtp] trusted_proxies).
std::vector<std::pair<std::string, std::string>> client_attributes(const session& s) {
  std::string addr = s.client.address;
  if (addr.find(':') != std::string::npos) addr = "IPV6:" + addr;  // Postfix's IPv6 form
  std::vector<std::pair<std::string, std::string>> a = {
      {"ADDR", addr},
      {"PORT", std::to_string(s.client.port)},
      {"HELO", s.helo.empty() ? "[UNAVAILABLE]" : s.helo},
      {"PROTO", s.esmtp ? "ESMTP" : "SMTP"},
      {"SESSION", s.conn.session_id()},
  };
  if (!s.authenticated.empty()) a.emplace_back("LOGIN", s.authenticated);
  return a;
}

class proxy_mail_handler final : public smtpd::mail_handler {
 public:
  proxy_mail_handler(proxy_context& ctx, asio::thread_pool& spool_pool)
      : ctx_(ctx), spool_pool_(spool_pool) {}

  asio::awaitable<std::optional<smtpd::recipient>> add_recipient(
      session& s, const std::string& address, const smtp::rcpt_command& c) override {
    auto found = co_await smtpd::look_up_recipient(s, address);
    if (found.refusal) {
      s.reply(*found.refusal);
      co_return std::nullopt;
    }
    std::string target;
    std::string account;
    if (found.account) {
      target = found.account->owning_store;
      account = found.account->id;
      if (target.empty()) {
        s.conn.log().warning("<{}>: account {} is placed on no store", address, account);
        s.reply(smtp::reply(451, "4.3.0").add_line("Mailbox not available, try again later"));
        co_return std::nullopt;
      }
    } else if (is_local_domain(address)) {
      smtpd::refuse_unknown_recipient(s, address);
      co_return std::nullopt;
    } else if (s.authenticated.empty()) {
      s.conn.log().notice("relaying to <{}> refused: not authenticated", address);
      s.reply(smtp::reply(554, "5.7.1").add_line("Relay access denied"));
      s.count_error();
      co_return std::nullopt;
    } else if (ctx_.config.smtp_routing.smarthost.empty()) {
      s.conn.log().notice("relaying to <{}> refused: no smarthost configured", address);
      s.reply(smtp::reply(554, "5.7.1").add_line("Relaying to other domains is not offered here"));
      co_return std::nullopt;
    } else {
      target = "smarthost";
    }

    upstream* up = co_await open_upstream(s, target);
    if (up == nullptr) co_return std::nullopt;  // answered
    const std::string params = rcpt_parameters_text(c.params);
    auto r = co_await up->client->add_recipient(relay::recipient(address, params));
    if (!r) {
      s.conn.log().warning("<{}>: {} failed at RCPT: {}", address, up->name, r.err().describe());
      drop(*up);
      s.reply(smtp::reply(451, "4.4.2").add_line("Mail system temporarily unavailable"));
      co_return std::nullopt;
    }
    if (r->code == 421) {  // the server is closing: a lost connection, not a verdict
      s.conn.log().warning("<{}>: {} closed at RCPT: {}", address, up->name, r->describe());
      drop(*up);
      s.reply(smtp::reply(451, "4.4.2").add_line("Mail system temporarily unavailable"));
      co_return std::nullopt;
    }
    if (!r->positive()) {
      s.conn.log().info("<{}> refused by {}: {}", address, up->name, r->describe());
      if (r->temporary() && !account.empty() && ctx_.cache) ctx_.cache->invalidate(address);
      s.reply(passed_on(*r));
      co_return std::nullopt;
    }
    where_.emplace_back(static_cast<std::size_t>(up - upstreams_.data()), up->accepted++);
    s.reply(smtp::status::recipient_ok);
    co_return smtpd::recipient{address, account, {}};
  }

  asio::awaitable<result<std::unique_ptr<smtpd::message_body>>> open_body(session&) override {
    auto body = spool_body::open(spool_pool_, ctx_.config.instance.spool_dir);
    if (!body) co_return std::move(body).err();
    co_return std::unique_ptr<smtpd::message_body>(std::move(*body));
  }

  asio::awaitable<void> deliver(session& s, smtpd::message_body& received,
                                const std::string& id) override {
    auto& spool = static_cast<spool_body&>(received);  // open_body made it
    auto source = co_await spool.finish();
    if (!source) {
      s.conn.log().error("message {} not spooled: {}", id, source.err().describe());
      s.refuse_message(smtp::reply(smtp::status::local_error));
      co_return;
    }
    co_await send_everywhere(**source);
    answer(s, id);
  }

  void reset() override {
    where_.clear();
    for (auto& u : upstreams_) {
      u.open = false;
      u.lost = false;
      u.accepted = 0;
      u.done.clear();
    }
  }

 private:
  bool is_local_domain(const std::string& address) const {
    const auto at = address.rfind('@');
    if (at == std::string::npos) return false;
    const auto domain = lower(std::string_view(address).substr(at + 1));
    const auto& domains = ctx_.config.smtp_routing.local_domains;
    return std::find(domains.begin(), domains.end(), domain) != domains.end();
  }

  /// Closes the upstream's connection. When it had accepted recipients, they
  /// are lost for this transaction (they get a temporary failure at the end)
  /// and so is the upstream: a new connection would number its recipients anew.
  void drop(upstream& up) {
    if (up.client) up.client->close();
    up.client.reset();
    up.open = false;
    if (up.accepted > 0) up.lost = true;
  }

  /// The upstream for `target` with MAIL accepted; nullptr when the client
  /// was answered instead (unreachable: 451; MAIL refused: that reply).
  asio::awaitable<upstream*> open_upstream(session& s, const std::string& target) {
    auto it = std::find_if(upstreams_.begin(), upstreams_.end(),
                           [&](const upstream& u) { return u.name == target; });
    if (it == upstreams_.end()) {
      upstreams_.push_back(upstream{target, nullptr});
      it = std::prev(upstreams_.end());
    }
    upstream& up = *it;
    if (up.client && !up.client->usable()) drop(up);
    if (up.client && target != "smarthost" && up.named != client_attributes(s)) {
      (void)co_await up.client->quit();  // the client changed (EHLO, AUTH): name it anew
      drop(up);
    }
    if (up.lost) {
      s.reply(smtp::reply(451, "4.4.2").add_line("Mail system temporarily unavailable"));
      co_return nullptr;
    }
    if (!up.client) {
      auto connected = co_await connect(s, target);
      if (!connected) {
        s.conn.log().warning("{} unreachable: {}", target, connected.err().describe());
        if (target != "smarthost") ctx_.routes.forget(target);
        if (ctx_.stats) ctx_.stats->backend_failure("connect");
        s.reply(smtp::reply(451, "4.4.1")
                    .add_line(target == "smarthost"
                                  ? "Relay host unreachable, try again later"
                                  : "Mailbox temporarily unavailable, try again later"));
        co_return nullptr;
      }
      up.client = std::move(*connected);
      if (target != "smarthost") up.named = client_attributes(s);
    }
    if (!up.open) {
      const auto& mail = s.tx->mail;
      const std::string from =
          mail.sender.kind == smtp::path_kind::null ? std::string() : mail.sender.box.address();
      auto r = co_await up.client->begin(from, mail_parameters_text(mail.params), mail.params.size);
      if (!r) {
        s.conn.log().warning("{} failed at MAIL: {}", target, r.err().describe());
        drop(up);
        s.reply(smtp::reply(451, "4.4.2").add_line("Mail system temporarily unavailable"));
        co_return nullptr;
      }
      if (r->code == 421) {
        s.conn.log().warning("{} closed at MAIL: {}", target, r->describe());
        drop(up);
        s.reply(smtp::reply(451, "4.4.2").add_line("Mail system temporarily unavailable"));
        co_return nullptr;
      }
      if (!r->positive()) {
        s.conn.log().info("MAIL refused by {}: {}", target, r->describe());
        s.reply(passed_on(*r));
        co_return nullptr;
      }
      up.open = true;
    }
    co_return &up;
  }

  asio::awaitable<result<std::unique_ptr<relay::smtp_client>>> connect(session& s,
                                                                       const std::string& target) {
    const auto& routing = ctx_.config.smtp_routing;
    const auto& backend = ctx_.config.backend;
    relay::client_options o;
    o.connect_timeout = backend.connect_timeout;
    o.greeting_timeout = backend.login_timeout;
    o.command_timeout = backend.login_timeout;
    o.data_timeout = ctx_.config.smtp.data_timeout;
    std::string host;
    std::uint16_t port = 0;
    if (target == "smarthost") {
      o.mode = relay::protocol_mode::smtp;
      host = routing.smarthost_host;
      port = routing.smarthost_port;
      o.starttls = routing.smarthost_tls == "required" ? relay::starttls_policy::required
                   : routing.smarthost_tls == "opportunistic"
                       ? relay::starttls_policy::opportunistic
                       : relay::starttls_policy::never;
      o.tls_context = ctx_.smarthost_tls;
      o.tls_host = host;
    } else {
      auto routed = co_await ctx_.routes.target(target, service::lmtp);
      if (!routed) co_return std::move(routed).err();
      host = routed->host;
      port = routed->port;
      o.mode = relay::protocol_mode::lmtp;
      // The store learns the real client (its log, Received) by XCLIENT; the
      // smarthost is not told: it sees this proxy as the sender's relay.
      o.xclient = client_attributes(s);
      // LMTP has no implicit-TLS port: any [backend] tls means STARTTLS, required.
      if (backend.tls != tls_mode::none) {
        o.starttls = relay::starttls_policy::required;
        o.tls_context = ctx_.backend_tls;
        if (backend.verify_name) o.tls_host = routed->tls_name;
      }
    }
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(ex);
    auto [ec, endpoints] = co_await resolver.async_resolve(host, std::to_string(port), use_tuple);
    if (ec || endpoints.empty()) {
      co_return error::temporary(errc::unavailable, "cannot resolve",
                                 host + ": " + (ec ? ec.message() : "no address"));
    }
    auto client = co_await relay::smtp_client::connect(ex, endpoints.begin()->endpoint(), o);
    if (!client) co_return std::move(client).err();
    auto hello = co_await (*client)->hello(ctx_.config.instance.hostname);
    if (!hello) co_return std::move(hello).err();
    if (!o.xclient.empty() && !(*client)->client_named()) {
      s.conn.log().warning(
          "{} ({}) does not offer XCLIENT: it logs this proxy as the client (is this proxy in "
          "its [smtp] trusted_proxies?)",
          target, host);
    }
    s.conn.log().debug("{}: connected to {}:{}", target, host, port);
    co_return std::move(*client);
  }

  /// Sends the body to every upstream with accepted recipients, in parallel.
  asio::awaitable<void> send_everywhere(const relay::body_source& body) {
    auto ex = co_await asio::this_coro::executor;
    std::size_t pending = 0;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (auto& u : upstreams_) {
      if (!u.open || u.accepted == 0) continue;
      ++pending;
      asio::co_spawn(
          ex,
          [&u, &body, &pending, &all_done]() -> asio::awaitable<void> {
            u.done = co_await u.client->finish(body);
            if (--pending == 0) all_done.cancel();
          },
          asio::detached);
    }
    if (pending > 0) co_await all_done.async_wait(use_tuple);
  }

  /// The result of recipient `i` of the transaction.
  const relay::recipient_result* result_of(std::size_t i) const {
    const auto [u, k] = where_[i];
    const auto& done = upstreams_[u].done;
    return k < done.size() ? &done[k] : nullptr;
  }

  /// Answers the client: LMTP one reply per recipient; SMTP one for all:
  ///  - every recipient delivered: 250;
  ///  - some temporary failure: that 4xx, so the client's MTA retries; the
  ///    stores that already took it will get it again on that retry (logged:
  ///    a duplicate is better than a loss, RFC 5321 §6.1, and the proxy has no
  ///    queue to retry from);
  ///  - only permanent failures and nothing delivered: that 5xx;
  ///  - only permanent failures and some delivered: 250, because a 5xx would
  ///    bounce the ones who got it; the failed ones are logged (no DSN: no queue).
  void answer(session& s, const std::string& id) {
    const auto& rcpts = s.tx->recipients;
    std::vector<smtp::reply> per(rcpts.size(), smtp::reply(smtp::status::local_error));
    const relay::recipient_result* temporary = nullptr;
    const relay::recipient_result* permanent = nullptr;
    std::size_t delivered = 0;
    // A recipient without a result was not delivered: that is a temporary failure.
    relay::recipient_result missing;
    missing.local_error =
        error::temporary(errc::internal, "no delivery result", "no result for the recipient");
    for (std::size_t i = 0; i < rcpts.size(); ++i) {
      const auto* r = result_of(i);
      const auto& via = upstreams_[where_[i].first].name;
      if (r == nullptr) {
        s.conn.log().error("{}: <{}> no result from {}", id, rcpts[i].address, via);
        r = &missing;
      }
      per[i] = r->local_error ? passed_on(relay::local_failure_reply(*r->local_error))
                              : passed_on(r->reply);
      if (ctx_.stats)
        ctx_.stats->smtp_recipient(r->delivered()   ? "delivered"
                                   : r->permanent() ? "refused"
                                                    : "deferred");
      if (r->delivered()) {
        ++delivered;
        s.conn.log().info("{}: <{}> delivered by {}: {}", id, rcpts[i].address, via,
                          r->reply.describe());
      } else if (r->permanent()) {
        if (permanent == nullptr) permanent = r;
        s.conn.log().warning("{}: <{}> refused by {}: {}", id, rcpts[i].address, via,
                             r->reply.describe());
      } else {
        if (temporary == nullptr) temporary = r;
        s.conn.log().warning("{}: <{}> not delivered by {}: {}", id, rcpts[i].address, via,
                             r->local_error ? r->local_error->describe() : r->reply.describe());
      }
    }
    if (s.kind == smtpd::flavour::lmtp) {
      for (auto& r : per) s.reply(r);
      count_message(delivered == rcpts.size() ? "accepted" : "deferred");
      return;
    }
    if (delivered == rcpts.size() || (temporary == nullptr && delivered > 0)) {
      s.reply(smtp::reply(smtp::status::message_accepted, "Ok: queued as " + id));
      count_message("accepted");
      return;
    }
    if (temporary != nullptr) {
      if (delivered > 0) {
        s.conn.log().warning("{}: {} of {} recipient(s) already delivered will get the retry too",
                             id, delivered, rcpts.size());
      }
      s.reply(temporary->local_error
                  ? passed_on(relay::local_failure_reply(*temporary->local_error))
                  : passed_on(temporary->reply));
      count_message("deferred");
      return;
    }
    if (permanent != nullptr) {
      s.reply(passed_on(permanent->reply));
      count_message("refused");
      return;
    }
    s.reply(smtp::reply(smtp::status::local_error));
    count_message("deferred");
  }

  void count_message(std::string_view result) {
    if (ctx_.stats) ctx_.stats->smtp_message(result);
  }

  proxy_context& ctx_;
  asio::thread_pool& spool_pool_;
  std::vector<upstream> upstreams_;
  std::vector<std::pair<std::size_t, std::size_t>> where_;  // recipient -> (upstream, position)
};

}  // namespace

net::protocol_factories smtp_frontend_protocols(proxy_context& ctx) {
  smtpd::services svc{ctx.config.smtp, ctx.config.instance.hostname,
                      "hamail proxy " + ctx.config.instance.name, ctx.logins,
                      /*final_delivery=*/false};
  auto make = [&ctx](smtpd::flavour) -> std::unique_ptr<smtpd::mail_handler> {
    return std::make_unique<proxy_mail_handler>(ctx, *ctx.spool_pool);
  };
  return smtpd::protocols(std::move(svc), std::move(make), {"smtp", "submission", "lmtp"});
}

}  // namespace hamail::proxy

// The login to a store's backend with retries, and the relay after it.

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <optional>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "frontend.hpp"

namespace hamail::proxy {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator||;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(use_tuple);
}

/// One attempt: connect, TLS when configured implicit, then the dialogue.
awaitable<backend_session> attempt(proxy_context& ctx, const backend_target& target,
                                   const login_dialogue& dialogue) {
  const auto& b = ctx.config.backend;
  backend_session out;
  auto ex = co_await asio::this_coro::executor;
  const auto connected_by = clock::now() + b.connect_timeout;
  auto connecting = backend_link::connect(ex, target, connected_by);
  auto link = co_await std::move(connecting);
  if (!link) {
    out.outcome = {attempt_status::retry, "connect", {}, link.err().detail};
    co_return out;
  }
  const auto login_by = clock::now() + b.login_timeout;
  if (b.tls == tls_mode::implicit) {
    auto handshake = backend_start_tls(ctx, **link, target, login_by);
    if (auto r = co_await std::move(handshake); !r) {
      out.outcome = {attempt_status::retry, "tls", {}, r.err().detail};
      co_return out;
    }
  }
  auto talk = dialogue(**link, target, login_by);
  out.outcome = co_await std::move(talk);
  if (out.outcome.status == attempt_status::ok) out.link = std::move(*link);
  co_return out;
}

}  // namespace

awaitable<result<void>> backend_start_tls(proxy_context& ctx, backend_link& link,
                                          const backend_target& target,
                                          clock::time_point deadline) {
  static const std::string no_name;
  const auto& name = ctx.config.backend.verify_name ? target.tls_name : no_name;
  auto handshake = link.start_tls(ctx.backend_tls, name, deadline);
  co_return co_await std::move(handshake);
}

awaitable<backend_session> open_backend(proxy_context& ctx, net::connection& conn,
                                        const std::string& login, directory::account& account,
                                        service svc, const login_dialogue& dialogue) {
  const auto& b = ctx.config.backend;
  const auto give_up = clock::now() + b.retry_for;
  auto delay = b.retry_delay;
  backend_session last;
  for (unsigned n = 1;; ++n) {
    if (n > 1 && ctx.stats) ctx.stats->retries.inc();
    const auto started = clock::now();
    auto routing = ctx.routes.target(account.owning_store, svc);
    auto target = co_await std::move(routing);
    if (!target) {
      last.outcome = {attempt_status::retry, "route", {}, target.err().detail};
    } else {
      auto trying = attempt(ctx, *target, dialogue);
      last = co_await std::move(trying);
      if (last.outcome.status == attempt_status::ok) {
        if (n > 1) conn.log().info("backend {} answered at attempt {}", target->store, n);
        if (ctx.stats) {
          (svc == service::pop3 ? ctx.stats->pop3_backend_login : ctx.stats->imap_backend_login)
              .observe(clock::now() - started);
        }
        co_return last;
      }
      if (last.outcome.status == attempt_status::refused) co_return last;
      ctx.routes.forget(target->store);
      if (last.outcome.status == attempt_status::wrong_store) {
        // The account moved: its record (cached here) is stale.
        conn.log().notice("backend of store {} says {} is not its account; looking it up again",
                          target->store, account.id);
        if (ctx.cache) ctx.cache->invalidate(login);
        auto lookup = ctx.logins.directory.find_by_login(login);
        auto fresh = co_await std::move(lookup);
        if (fresh && *fresh && (*fresh)->id == account.id) {
          const bool moved = (*fresh)->owning_store != account.owning_store;
          account = std::move(**fresh);
          if (account.state == directory::account_state::moving) {
            last.outcome = {attempt_status::retry, {}, "account is being moved"};
          } else if (moved) {
            continue;  // straight to the new store
          }
        }
      }
    }
    if (ctx.stats) {
      ctx.stats->backend_failure(last.outcome.status == attempt_status::wrong_store
                                     ? std::string_view("wrong_store")
                                     : last.outcome.failure);
    }
    conn.log().info("backend attempt {} for {} failed: {}", n, account.id, last.outcome.detail);
    if (clock::now() + delay > give_up) break;
    co_await sleep_for(delay);
    delay = std::min(delay * 2, b.retry_max_delay);
  }
  conn.log().warning("store {} unavailable for {} after {} ms: {}", account.owning_store,
                     account.id, b.retry_for.count(), last.outcome.detail);
  last.link.reset();
  last.outcome.status = attempt_status::retry;
  co_return last;
}

void goodbye_watch::feed(std::string_view piece) noexcept {
  std::size_t i = 0;
  while (i < piece.size() && !seen_) {
    if (!at_line_start_) {
      // Skip to the next line at memchr speed: most relayed octets are mid-line.
      const void* lf = std::memchr(piece.data() + i, '\n', piece.size() - i);
      if (lf == nullptr) return;
      i = static_cast<std::size_t>(static_cast<const char*>(lf) - piece.data()) + 1;
      at_line_start_ = true;
      matched_ = 0;
      continue;
    }
    const char ch = piece[i++];
    if (ch == '\n') {
      matched_ = 0;
      continue;
    }
    const char want = prefix_[matched_];
    const bool same = ignore_case_ ? std::toupper(static_cast<unsigned char>(ch)) ==
                                         std::toupper(static_cast<unsigned char>(want))
                                   : ch == want;
    if (!same) {
      at_line_start_ = false;
      continue;
    }
    if (++matched_ == prefix_.size()) seen_ = true;
  }
}

namespace {

/// A read buffer that follows the traffic: it doubles while reads fill it
/// (bulk transfers, up to `max`) and drops back to `min` after a short read,
/// so an idle session holds `min` octets per direction.
class adaptive_buffer {
 public:
  adaptive_buffer(std::size_t min, std::size_t max) : min_(min), max_(max), size_(min) {}
  asio::mutable_buffer get() {
    if (!data_ || allocated_ != size_) {
      data_ = std::make_unique<char[]>(size_);
      allocated_ = size_;
    }
    return asio::buffer(data_.get(), size_);
  }
  std::string_view filled(std::size_t n) {
    const std::string_view piece(data_.get(), n);
    if (n == size_ && size_ < max_) {
      size_ *= 2;
    } else if (n < size_ / 4) {
      size_ = min_;
    }
    return piece;
  }

 private:
  std::size_t min_, max_, size_;
  std::size_t allocated_ = 0;
  std::unique_ptr<char[]> data_;
};

// Client commands are short: 1 KiB, growing for APPEND literals. Answers are
// not: starting the backend's side at 1 KiB split a 4 KiB FETCH into three
// reads and three writes to the client (and three wake-ups of it), which cost
// more CPU than the proxy's whole user space; 8 KiB takes most answers in one.
constexpr std::size_t min_client_chunk = 1024;
constexpr std::size_t min_backend_chunk = 8 * 1024;
constexpr std::size_t max_client_chunk = 16 * 1024;
constexpr std::size_t max_backend_chunk = 64 * 1024;

/// What either side sent beyond the login, before the relay proper: to the
/// backend first, then to the client; freed afterwards. Empty when both went.
awaitable<std::optional<relay_end>> send_first(net::connection& client, net::byte_stream& backend,
                                               std::string& to_backend, std::string& to_client,
                                               goodbye_watch* client_watch,
                                               goodbye_watch* backend_watch) {
  if (!to_backend.empty()) {
    if (client_watch) client_watch->feed(to_backend);
    auto w = co_await backend.async_write(asio::buffer(to_backend));
    if (!w) co_return relay_end::backend_closed;
  }
  std::string().swap(to_backend);
  if (!to_client.empty()) {
    if (backend_watch) backend_watch->feed(to_client);
    auto w = co_await client.write(to_client);
    if (!w) co_return relay_end::client_closed;
  }
  std::string().swap(to_client);
  co_return std::nullopt;
}

awaitable<relay_end> client_to_backend(net::connection& client, net::byte_stream& backend,
                                       std::chrono::milliseconds idle, goodbye_watch* watch) {
  adaptive_buffer buf(min_client_chunk, max_client_chunk);
  for (;;) {
    // in_command: a drain does not cut a proxied session mid-command; the
    // drain deadline closes it with the shutdown reply.
    auto r = co_await client.read_some(buf.get(), net::read_mode::in_command, clock::now() + idle);
    if (!r) co_return r.err().code == errc::timed_out ? relay_end::idle : relay_end::client_closed;
    const auto piece = buf.filled(*r);
    if (watch) watch->feed(piece);
    auto w = co_await backend.async_write(asio::buffer(piece));
    if (!w) co_return relay_end::backend_closed;
  }
}

awaitable<relay_end> backend_to_client(net::connection& client, net::byte_stream& backend,
                                       goodbye_watch* watch) {
  adaptive_buffer buf(min_backend_chunk, max_backend_chunk);
  for (;;) {
    auto r = co_await backend.async_read_some(buf.get());
    if (!r) co_return relay_end::backend_closed;
    const auto piece = buf.filled(*r);
    if (watch) watch->feed(piece);
    auto w = co_await client.write(piece);
    if (!w) co_return relay_end::client_closed;
  }
}

// ---------------------------------------------------------------------------
// The fast path, when both sides are plain TCP (docs/performance.md, "Relay
// fast path"). Per chunk it costs a readiness wait, one recv() and one send():
// no coroutine frame, no parallel group and no timer per read or write. One
// timer per relay keeps the idle timeout and the session deadline, and the
// read buffer is shared by every relay of the thread.

using tcp = asio::ip::tcp;

/// The most a fast relay moves in one read.
constexpr std::size_t fast_chunk = 64 * 1024;

/// The read buffer of every fast relay on this thread: a direction reads into
/// it, feeds its watch and writes it out without suspending in between (what
/// the socket does not take at once is copied out first), so one serves all.
char* scratch() {
  thread_local const std::unique_ptr<char[]> buffer(new char[fast_chunk]);
  return buffer.get();
}

/// When the client last sent something: the relay's idle timer reads it.
struct relay_activity {
  clock::time_point client_read;
};

/// One direction of the fast path: waits until `from` is readable, reads what
/// is there and sends it to `to` at once (non-blocking). Only what `to` does
/// not take is copied and written asynchronously (the client's write(), with
/// its write timeout, or the backend stream's), and the direction reads again
/// once that write finished: the same backpressure as the generic path.
awaitable<relay_end> fast_direction(net::connection& client, net::byte_stream& backend,
                                    tcp::socket& from, tcp::socket& to, bool upstream,
                                    relay_activity& activity, goodbye_watch* watch) {
  const auto from_closed = upstream ? relay_end::client_closed : relay_end::backend_closed;
  const auto to_closed = upstream ? relay_end::backend_closed : relay_end::client_closed;
  std::string rest;
  for (;;) {
    // A forced close cancels this wait on the client's socket (connection::force_close).
    auto [waited] = co_await from.async_wait(tcp::socket::wait_read, use_tuple);
    if (waited) co_return from_closed;
    for (;;) {
      // The client's connection may have been forced closed while this direction slept.
      if (!client.usable()) co_return relay_end::client_closed;
      char* const data = scratch();
      boost::system::error_code ec;
      const std::size_t n = from.read_some(asio::buffer(data, fast_chunk), ec);
      if (ec == asio::error::would_block) break;  // woken with nothing left to read
      if (ec) co_return from_closed;
      if (upstream) activity.client_read = clock::now();
      const std::string_view piece(data, n);
      if (watch) watch->feed(piece);
      const std::size_t sent = to.write_some(asio::buffer(piece), ec);
      if (ec && ec != asio::error::would_block) co_return to_closed;
      if (ec || sent < n) {
        rest.assign(piece.substr(ec ? 0 : sent));
        if (upstream) {
          auto w = co_await backend.async_write(asio::buffer(rest));
          if (!w) co_return to_closed;
        } else {
          auto w = co_await client.write(rest);
          if (!w) co_return to_closed;
        }
        std::string().swap(rest);
        continue;  // a peer that outran the other side has more waiting
      }
      // A read that did not fill the buffer took all there was.
      if (n < fast_chunk) break;
    }
  }
}

/// The fast path's one timer: ends the relay once the client sent nothing for
/// `idle` or at the connection's session deadline, whichever comes first,
/// waking only at deadlines (reads just record their time).
awaitable<relay_end> relay_timer(net::connection& client, const relay_activity& activity,
                                 std::chrono::milliseconds idle) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto session_end = client.session_deadline();
  for (;;) {
    const auto idle_end = activity.client_read + idle;
    const auto until = std::min(idle_end, session_end);
    if (clock::now() >= until) {
      if (until == session_end) {
        client.log().info("session timeout: the session lasted {} ms",
                          client.limits().session.count());
      } else {
        client.log().info("read timeout: no complete input from client in time");
      }
      co_return relay_end::idle;
    }
    timer.expires_at(until);
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec) co_return relay_end::client_closed;  // cancelled: the relay ended elsewhere
  }
}

awaitable<relay_end> fast_relay(net::connection& client, tcp::socket& client_socket,
                                net::byte_stream& backend, tcp::socket& backend_socket,
                                std::chrono::milliseconds idle, goodbye_watch* client_watch,
                                goodbye_watch* backend_watch) {
  relay_activity activity{clock::now()};
  auto up =
      fast_direction(client, backend, client_socket, backend_socket, true, activity, client_watch);
  auto down = fast_direction(client, backend, backend_socket, client_socket, false, activity,
                             backend_watch);
  auto timer = relay_timer(client, activity, idle);
  // Whichever ends first ends the relay; the others are cancelled and awaited.
  auto ended = co_await (std::move(up) || std::move(down) || std::move(timer));
  co_return std::visit([](relay_end e) { return e; }, ended);
}

}  // namespace

tcp::socket* fast_relay_socket(net::connection& client, net::byte_stream& backend) {
  auto* plain_backend = dynamic_cast<net::tcp_stream*>(&backend);
  if (plain_backend == nullptr || client.plain_socket() == nullptr) return nullptr;
  return &plain_backend->socket();
}

awaitable<relay_end> relay(net::connection& client, net::byte_stream& backend,
                           std::chrono::milliseconds idle, std::string& to_backend,
                           std::string& to_client, goodbye_watch* client_watch,
                           goodbye_watch* backend_watch) {
  auto sending = send_first(client, backend, to_backend, to_client, client_watch, backend_watch);
  if (auto ended = co_await std::move(sending)) co_return *ended;
  if (auto* backend_socket = fast_relay_socket(client, backend)) {
    auto* client_socket = client.plain_socket();
    boost::system::error_code a, b;
    client_socket->non_blocking(true, a);
    backend_socket->non_blocking(true, b);
    if (!a && !b) {
      auto relaying = fast_relay(client, *client_socket, backend, *backend_socket, idle,
                                 client_watch, backend_watch);
      co_return co_await std::move(relaying);
    }
  }
  // TLS or COMPRESS on either side: through the streams.
  auto up = client_to_backend(client, backend, idle, client_watch);
  auto down = backend_to_client(client, backend, backend_watch);
  // Whichever direction ends first ends the relay; the other is cancelled.
  auto ended = co_await (std::move(up) || std::move(down));
  co_return std::visit([](relay_end e) { return e; }, ended);
}

proxy_metrics::proxy_metrics(metrics::registry& r)
    : proxy_metrics(r,
                    r.histograms("hamail_proxy_backend_login_seconds",
                                 "From connecting to a store's backend to being logged in there.",
                                 {"protocol"})) {}

proxy_metrics::proxy_metrics(metrics::registry& r, metrics::family<metrics::histogram>& login)
    : retries(r.add_counter("hamail_proxy_backend_retries",
                            "Backend login attempts after the first, for any session.")),
      lost(r.add_counter("hamail_proxy_backend_lost",
                         "Relayed sessions ended because their backend connection dropped.")),
      imap_backend_login(login.with({"imap"})),
      pop3_backend_login(login.with({"pop3"})),
      logins_(r.counters("hamail_proxy_logins", "Client logins by protocol and result.",
                         {"protocol", "result"})),
      failures_(r.counters("hamail_proxy_backend_failures",
                           "Failed backend login attempts by the step that failed.", {"kind"})),
      smtp_messages_(r.counters("hamail_proxy_smtp_messages",
                                "SMTP messages answered after their data, by result.", {"result"})),
      smtp_recipients_(r.counters("hamail_proxy_smtp_recipients",
                                  "Recipients of those messages, by what became of them.",
                                  {"result"})) {}

void proxy_metrics::login(service svc, std::string_view result) {
  logins_.with({svc == service::pop3 ? "pop3" : "imap", std::string(result)}).inc();
}

void proxy_metrics::backend_failure(std::string_view kind) {
  failures_.with({std::string(kind)}).inc();
}

void proxy_metrics::smtp_message(std::string_view result) {
  smtp_messages_.with({std::string(result)}).inc();
}

void proxy_metrics::smtp_recipient(std::string_view result) {
  smtp_recipients_.with({std::string(result)}).inc();
}

awaitable<void> carry_session(proxy_context& ctx, net::connection& client, backend_session& backend,
                              const directory::account& account, std::string& to_backend,
                              std::string& to_client, goodbye_watch& ended_normally,
                              bool watch_client, const goodbyes& say) {
  const auto& b = ctx.config.backend;
  auto relaying =
      relay(client, backend.link->stream(), b.relay_idle_timeout, to_backend, to_client,
            watch_client ? &ended_normally : nullptr, watch_client ? nullptr : &ended_normally);
  const relay_end end = co_await std::move(relaying);
  if (end == relay_end::backend_closed && !ended_normally.seen()) {
    if (ctx.stats) ctx.stats->lost.inc();
    const auto wait = spread(ctx, b.disconnect_delay);
    client.log().notice(
        "backend {} of store {} closed the session of {}; telling the client in {} ms",
        backend.link->peer(), account.owning_store, account.id, wait.count());
    backend.link.reset();
    co_await sleep_for(wait);
    (void)co_await client.write(say.lost);
  } else if (end == relay_end::idle && !say.idle.empty()) {
    (void)co_await client.write(say.idle);
  }
  client.log().info("disconnect {}: {}", account.id,
                    end == relay_end::client_closed    ? "client closed"
                    : end == relay_end::backend_closed ? "backend closed"
                                                       : "idle");
}

void count_check(proxy_context& ctx, service svc, auth::login_status st) {
  if (!ctx.stats) return;
  switch (st) {
    case auth::login_status::ok:
      break;
    case auth::login_status::failed:
    case auth::login_status::address_refused:
      ctx.stats->login(svc, "failed");
      break;
    case auth::login_status::locked:
      ctx.stats->login(svc, "refused");
      break;
    case auth::login_status::temporary_failure:
    case auth::login_status::busy:
    case auth::login_status::moving:
      ctx.stats->login(svc, "unavailable");
      break;
  }
}

std::chrono::milliseconds spread(proxy_context& ctx, std::chrono::milliseconds limit) {
  if (limit.count() <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<std::int64_t> d(0, limit.count());
  return std::chrono::milliseconds(d(ctx.random));
}

}  // namespace hamail::proxy

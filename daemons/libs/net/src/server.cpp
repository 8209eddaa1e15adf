#include "hamail/net/server.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <list>
#include <optional>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/log.hpp"
#include "hamail/core/shutdown_gate.hpp"
#include "hamail/net/limits.hpp"
#include "hamail/protocol/proxy/header_parser.hpp"
#include "hamail/tls/context_store.hpp"

namespace hamail::net {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(use_awaitable);

std::string endpoint_text(const tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

std::string_view tls_mode_name(tls_mode m) {
  switch (m) {
    case tls_mode::none:
      return "none";
    case tls_mode::starttls:
      return "starttls";
    case tls_mode::implicit:
      return "implicit";
  }
  return "unknown";
}

error listen_config_error(const std::string& listener, std::string text) {
  return error::permanent(errc::config_error, "listener configuration error",
                          fmt::format("listener '{}': {}", listener, std::move(text)));
}

}  // namespace

namespace detail {

/// One bound listener, with its own connection counts: a flood on one
/// listener never takes another's slots.
struct listener_slot {
  listener_settings settings;
  std::string name;
  std::shared_ptr<protocol> proto;
  std::optional<tcp::acceptor> acceptor;
  tcp::endpoint endpoint;
  std::size_t max_connections = 0;         // settings' or [limits]'
  std::size_t max_connections_per_ip = 0;  // settings' or [limits]'
  std::chrono::milliseconds session_timeout{0};
  std::size_t active = 0;                         // admitted sessions
  std::map<std::string, std::size_t> per_client;  // by client_key()
};

/// One admitted session, as drain and force see it.
struct session_entry {
  std::shared_ptr<connection> conn;
  protocol* proto;
};

/// Everything the server's coroutines share; kept alive by each of them.
struct server_state : std::enable_shared_from_this<server_state> {
  server_state(asio::io_context& context, std::vector<listener_settings> l, limits_settings lim,
               tls::context_store* store, protocol_factories f, server_options o)
      : io(context),
        configured(std::move(l)),
        limits(lim),
        tls(store),
        factories(std::move(f)),
        options(o),
        drain_timer(context),
        done_event(context) {}

  result<void> listen();
  void start_accepting();
  void admit(std::size_t index, tcp::socket socket);
  void drain(clock::time_point when);
  void force_all();
  void task_started() { ++tasks; }
  void task_ended() {
    --tasks;
    check_done();
  }
  void check_done() {
    if (!draining || tasks != 0 || finished) return;
    finished = true;
    log::notice("server drained: every connection has ended");
    done_event.cancel();
    drain_timer.cancel();
  }
  timeouts session_timeouts(const listener_slot& slot) const {
    return timeouts{limits.idle_timeout, options.write_timeout, options.handshake_timeout,
                    options.goodbye_timeout, slot.session_timeout};
  }

  asio::io_context& io;
  std::vector<listener_settings> configured;
  limits_settings limits;
  tls::context_store* tls;
  protocol_factories factories;
  server_options options;

  std::vector<listener_slot> listeners;
  shutdown_gate gate;
  std::list<session_entry> sessions;
  std::size_t tasks = 0;  // coroutines in flight: accept loops, sessions, rejects, forced closes
  std::size_t accepted = 0;
  std::size_t rejected = 0;
  bool listening = false;
  bool running = false;
  bool draining = false;
  bool forced = false;
  bool finished = false;
  clock::time_point deadline = clock::time_point::max();
  asio::steady_timer drain_timer;
  asio::steady_timer done_event;  // an event: cancelled when finished
};

}  // namespace detail

namespace {

using detail::server_state;

/// Counts a coroutine in flight; run() completes only when none is left.
class task_guard {
 public:
  explicit task_guard(std::shared_ptr<server_state> s) : state_(std::move(s)) {
    state_->task_started();
  }
  task_guard(task_guard&&) noexcept = default;
  task_guard& operator=(task_guard&&) = delete;
  ~task_guard() {
    if (state_) state_->task_ended();
  }

 private:
  std::shared_ptr<server_state> state_;
};

/// An admitted session's place in the limits: session list, its listener's
/// counts, gate.
class session_slot {
 public:
  session_slot(std::shared_ptr<server_state> s, std::list<detail::session_entry>::iterator it,
               std::size_t listener, std::string client, shutdown_gate::ticket ticket)
      : state_(std::move(s)),
        it_(it),
        listener_(listener),
        client_(std::move(client)),
        ticket_(std::move(ticket)) {}
  session_slot(session_slot&&) noexcept = default;
  session_slot& operator=(session_slot&&) = delete;
  ~session_slot() {
    if (!state_) return;
    state_->sessions.erase(it_);
    auto& slot = state_->listeners[listener_];
    --slot.active;
    auto found = slot.per_client.find(client_);
    if (found != slot.per_client.end() && --found->second == 0) slot.per_client.erase(found);
  }

 private:
  std::shared_ptr<server_state> state_;
  std::list<detail::session_entry>::iterator it_;
  std::size_t listener_;
  std::string client_;
  std::optional<shutdown_gate::ticket> ticket_;
};

/// What a session coroutine owns. Members go in reverse order: the connection
/// first, then the slot, and the task last, so run() sees the slot freed.
struct session_context {
  task_guard task;
  session_slot slot;
  std::shared_ptr<protocol> proto;
  std::shared_ptr<connection> conn;
  bool proxy_header = false;  ///< the peer is a load balancer that sends a PROXY header first
};

void log_exception(std::exception_ptr e, std::string_view what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("{} ended by an exception: {}", what, ex.what());
  } catch (...) {
    log::error("{} ended by an unknown exception", what);
  }
}

/// Reads exactly `n` octets into `out` before `deadline`.
asio::awaitable<result<void>> read_exactly(connection& conn, char* out, std::size_t n,
                                           clock::time_point deadline) {
  while (n > 0) {
    auto r = co_await conn.read_some(asio::buffer(out, n), read_mode::in_command, deadline);
    if (!r) co_return std::move(r).err();
    out += *r;
    n -= *r;
  }
  co_return result<void>{};
}

tcp::endpoint endpoint_of(const proxy_protocol::endpoint& e, proxy_protocol::family f) {
  if (f == proxy_protocol::family::inet) {
    asio::ip::address_v4::bytes_type b;
    std::copy_n(e.address.begin(), 4, b.begin());
    return {asio::ip::address_v4(b), e.port};
  }
  asio::ip::address_v6::bytes_type b;
  std::copy_n(e.address.begin(), 16, b.begin());
  return {asio::ip::address_v6(b), e.port};
}

/// Reads the PROXY header a load balancer sends before anything else, reading
/// never past its end (the bytes after it are the client's, a TLS ClientHello
/// maybe), within the handshake timeout; applies its addresses to `conn`.
asio::awaitable<result<void>> read_proxy_header(connection& conn) {
  const auto deadline = clock::now() + conn.limits().handshake;
  proxy_protocol::header_parser parser;
  // 15 octets: the shortest header ("PROXY UNKNOWN\r\n"); then exactly what is missing.
  std::string got(15, '\0');
  auto first = co_await read_exactly(conn, got.data(), got.size(), deadline);
  if (!first) co_return std::move(first).err();
  auto step = parser.feed(got);
  while (step.status == proxy_protocol::parse_status::need_more) {
    std::size_t want = 1;  // v1: a line, octet by octet (at most 107)
    if (got.compare(0, 12, proxy_protocol::v2_signature) == 0) {
      want = got.size() < 16
                 ? 16 - got.size()
                 : 16 +
                       (static_cast<std::size_t>(static_cast<unsigned char>(got[14])) << 8 |
                        static_cast<unsigned char>(got[15])) -
                       got.size();
    }
    const auto old = got.size();
    got.resize(old + want);
    auto more = co_await read_exactly(conn, got.data() + old, want, deadline);
    if (!more) co_return std::move(more).err();
    step = parser.feed(std::string_view(got).substr(old));
  }
  if (step.status == proxy_protocol::parse_status::error) {
    co_return proxy_protocol::to_error(*step.error);
  }
  const auto& h = *step.hdr;
  if (h.cmd == proxy_protocol::command::proxy &&
      (h.fam == proxy_protocol::family::inet || h.fam == proxy_protocol::family::inet6)) {
    conn.set_relayed_endpoints(endpoint_of(h.source, h.fam), endpoint_of(h.destination, h.fam));
  }
  co_return result<void>{};
}

asio::awaitable<void> serve(session_context ctx) {
  connection& conn = *ctx.conn;
  if (ctx.proxy_header) {
    auto r = co_await read_proxy_header(conn);
    if (!r) {
      conn.log().notice("disconnect: no valid PROXY header from balancer {}: {}",
                        endpoint_text(conn.info().remote), r.err().describe());
      co_return;
    }
  }
  if (conn.info().balancer) {
    conn.log().info("connect from {} to {} via balancer {} (listener {}, {})",
                    endpoint_text(conn.info().remote), endpoint_text(conn.info().local),
                    endpoint_text(*conn.info().balancer), conn.info().listener,
                    conn.info().protocol);
  } else {
    conn.log().info("connect from {} to {} (listener {}, {})", endpoint_text(conn.info().remote),
                    endpoint_text(conn.info().local), conn.info().listener, conn.info().protocol);
  }
  if (conn.info().tls == tls_mode::implicit) {
    auto r = co_await conn.start_tls(conn.tls_context());
    if (!r) {
      conn.log().info("disconnect: no TLS session on implicit-TLS listener ({})",
                      r.err().describe());
      co_return;
    }
  }
  try {
    co_await ctx.proto->run(conn);
  } catch (const std::exception& e) {
    // Protocol code returns errors as values; an exception here is a bug, but
    // one session's bug must not take the daemon's other sessions down.
    conn.log().error("session ended by an exception: {}", e.what());
  }
  co_await conn.finish();
  conn.log().info("disconnect");
}

asio::awaitable<void> reject(task_guard task, std::shared_ptr<connection> conn, std::string reply) {
  (void)task;
  if (conn->info().tls == tls_mode::implicit) {
    // The busy reply has to travel inside TLS to be readable; the handshake is
    // bounded by the goodbye timeout (see admit()).
    auto r = co_await conn->start_tls(conn->tls_context());
    if (!r) co_return;
  }
  auto r = co_await conn->write_goodbye(reply);
  if (!r) conn->log().debug("busy reply not delivered: {}", r.err().describe());
  co_await conn->finish();
}

asio::awaitable<void> force_one(task_guard task, std::shared_ptr<connection> conn,
                                std::string reply) {
  (void)task;
  conn->log().notice("drain deadline reached: closing the session");
  co_await conn->force_close(std::move(reply));
}

asio::awaitable<void> accept_loop(task_guard task, std::shared_ptr<server_state> s,
                                  std::size_t index) {
  (void)task;
  auto& slot = s->listeners[index];
  asio::steady_timer backoff(s->io);
  for (;;) {
    auto [ec, socket] = co_await slot.acceptor->async_accept(use_tuple);
    if (s->draining || !slot.acceptor->is_open()) break;  // the socket, if any, closes here
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      // EMFILE and friends: pause rather than spin on a full descriptor table.
      log::warning("listener {}: accept failed: {}", slot.name, ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    s->admit(index, std::move(socket));
  }
}

asio::awaitable<void> drain_watch(std::shared_ptr<server_state> s) {
  for (;;) {
    if (s->finished) co_return;
    if (clock::now() >= s->deadline) break;
    s->drain_timer.expires_at(s->deadline);
    // Woken early by a nearer deadline or by the end of the drain.
    co_await s->drain_timer.async_wait(use_tuple);
  }
  s->force_all();
}

}  // namespace

namespace detail {

result<void> server_state::listen() {
  if (listening) return error::internal_error("server: listen() called twice");
  std::vector<listener_slot> bound;
  for (const auto& settings : configured) {
    listener_slot slot;
    slot.settings = settings;
    slot.name = settings.name.empty() ? settings.protocol : settings.name;

    auto factory = factories.find(settings.protocol);
    if (factory == factories.end()) {
      return listen_config_error(
          slot.name, fmt::format("protocol '{}' is not served by this daemon", settings.protocol));
    }
    if (settings.tls != tls_mode::none && tls == nullptr) {
      return listen_config_error(
          slot.name,
          fmt::format("tls = {} needs a [tls] certificate and key", tls_mode_name(settings.tls)));
    }
    error_code ec;
    const auto address = asio::ip::make_address(settings.address, ec);
    if (ec)
      return listen_config_error(slot.name,
                                 fmt::format("'{}' is not a numeric address", settings.address));
    const tcp::endpoint endpoint(address, settings.port);

    tcp::acceptor& acceptor = slot.acceptor.emplace(io);
    auto fail = [&](std::string_view step) {
      return error::temporary(errc::io_error, "cannot listen",
                              fmt::format("listener '{}': cannot {} {}: {}", slot.name, step,
                                          endpoint_text(endpoint), ec.message()));
    };
    acceptor.open(endpoint.protocol(), ec);
    if (ec) return fail("open a socket for");
    // Lets a restarted daemon bind while old connections sit in TIME_WAIT; a
    // second listener on the same address and port still fails.
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail("set SO_REUSEADDR on");
    if (address.is_v6()) {
      // "::" must not also take the IPv4 addresses another store may listen on.
      acceptor.set_option(asio::ip::v6_only(true), ec);
      if (ec) return fail("set IPV6_V6ONLY on");
    }
    acceptor.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen on");
    slot.endpoint = acceptor.local_endpoint(ec);
    if (ec) return fail("read the bound address of");

    slot.max_connections = settings.max_connections.value_or(limits.max_connections);
    slot.max_connections_per_ip =
        settings.max_connections_per_ip.value_or(limits.max_connections_per_ip);
    slot.session_timeout = settings.session_timeout.value_or(limits.session_timeout);
    slot.proto = factory->second(settings);
    if (!slot.proto) return listen_config_error(slot.name, "the protocol factory made nothing");
    bound.push_back(std::move(slot));
  }
  // Only now: on any failure above the acceptors bound so far closed with `bound`.
  listeners = std::move(bound);
  listening = true;
  for (const auto& slot : listeners) {
    log::notice("listener {}: listening on {} ({}, tls {})", slot.name,
                endpoint_text(slot.endpoint), slot.settings.protocol,
                tls_mode_name(slot.settings.tls));
  }
  return ok();
}

void server_state::start_accepting() {
  if (draining) return;
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    asio::co_spawn(io, accept_loop(task_guard(shared_from_this()), shared_from_this(), i),
                   [](std::exception_ptr e) { log_exception(e, "accept loop"); });
  }
}

void server_state::admit(std::size_t index, tcp::socket socket) {
  auto& slot = listeners[index];
  error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // the client is gone already
  const auto local = socket.local_endpoint(ec);
  if (ec) return;
  // Replies go out as soon as they are written: with Nagle, the last short
  // piece of a reply written in several pieces (a proxied one, a FETCH in
  // parts) waits for the client's delayed ACK, up to 40 ms each time.
  socket.set_option(tcp::no_delay(true), ec);

  connection_info info{remote, local, slot.name, slot.settings.protocol, slot.settings.tls, {}};
  std::string client = client_key(remote.address(), limits.ipv4_prefix, limits.ipv6_prefix);
  // A load balancer carries many clients: its connections count towards the
  // listener's limit only (the real client is known after its PROXY header).
  const auto& balancers = slot.settings.proxy_protocol_from;
  const bool from_balancer = std::find(balancers.begin(), balancers.end(),
                                       address_text(remote.address())) != balancers.end();
  const auto from_client = slot.per_client.find(client);
  const std::size_t client_count = from_client == slot.per_client.end() ? 0 : from_client->second;

  std::string over;
  if (slot.active >= slot.max_connections) {
    over = fmt::format("{} connections on this listener (limit {})", slot.active,
                       slot.max_connections);
  } else if (!from_balancer && client_count >= slot.max_connections_per_ip) {
    over = fmt::format("{} connections from {} (limit {})", client_count, client,
                       slot.max_connections_per_ip);
  }
  auto ticket = over.empty() ? gate.enter() : std::nullopt;

  if (!ticket) {
    if (over.empty()) return;  // draining: the gate is closed; the socket closes here
    ++rejected;
    timeouts t = session_timeouts(slot);
    t.handshake = options.goodbye_timeout;
    auto conn = std::make_shared<connection>(std::make_unique<tcp_stream>(std::move(socket)),
                                             std::move(info), t, tls);
    log::notice("listener {}: busy, turning away {}: {}", slot.name, endpoint_text(remote), over);
    asio::co_spawn(
        io, reject(task_guard(shared_from_this()), std::move(conn), slot.proto->busy_reply()),
        [](std::exception_ptr e) { log_exception(e, "busy reply"); });
    return;
  }

  ++accepted;
  ++slot.active;
  ++slot.per_client[client];
  auto conn = std::make_shared<connection>(std::make_unique<tcp_stream>(std::move(socket)),
                                           std::move(info), session_timeouts(slot), tls);
  sessions.push_front(session_entry{conn, slot.proto.get()});
  auto self = shared_from_this();
  session_context ctx{
      task_guard(self),
      session_slot(self, sessions.begin(), index, std::move(client), std::move(*ticket)),
      slot.proto, std::move(conn), from_balancer};
  asio::co_spawn(io, serve(std::move(ctx)),
                 [](std::exception_ptr e) { log_exception(e, "session"); });
}

void server_state::drain(clock::time_point when) {
  if (finished) return;
  if (!draining) {
    draining = true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(when - clock::now());
    log::notice("draining: {} sessions, deadline in {} ms", sessions.size(),
                std::max<std::int64_t>(0, left.count()));
    for (auto& slot : listeners) {
      error_code ignored;
      if (slot.acceptor) slot.acceptor->close(ignored);
    }
    gate.close();
    for (auto& entry : sessions) entry.conn->begin_drain();
    deadline = when;
    asio::co_spawn(io, drain_watch(shared_from_this()),
                   [](std::exception_ptr e) { log_exception(e, "drain"); });
  } else if (when < deadline) {
    deadline = when;
    drain_timer.expires_at(when);  // wakes drain_watch to re-check
  }
  check_done();
}

void server_state::force_all() {
  if (forced || finished) return;
  forced = true;
  log::warning("drain deadline reached: closing {} remaining sessions", sessions.size());
  for (auto& entry : sessions) {
    asio::co_spawn(
        io, force_one(task_guard(shared_from_this()), entry.conn, entry.proto->shutdown_reply()),
        [](std::exception_ptr e) { log_exception(e, "forced close"); });
  }
}

}  // namespace detail

server::server(asio::io_context& io, std::vector<listener_settings> listeners,
               limits_settings limits, tls::context_store* tls, protocol_factories factories,
               server_options options)
    : state_(std::make_shared<server_state>(io, std::move(listeners), limits, tls,
                                            std::move(factories), options)) {}

server::~server() {
  // Coroutines still running keep the state; make sure they end. Must run on
  // the io_context's thread (or with it stopped), like every other call.
  if (state_->listening && !state_->finished) state_->drain(clock::now());
}

result<void> server::listen() { return state_->listen(); }

std::vector<tcp::endpoint> server::bound_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& slot : state_->listeners) out.push_back(slot.endpoint);
  return out;
}

asio::awaitable<void> server::run() {
  auto s = state_;
  if (s->running) co_return;
  s->running = true;
  s->start_accepting();
  s->check_done();
  while (!s->finished) {
    s->done_event.expires_at(clock::time_point::max());
    co_await s->done_event.async_wait(use_tuple);
  }
}

void server::drain(clock::time_point deadline) { state_->drain(deadline); }

void server::drain() { state_->drain(clock::now() + state_->limits.drain_timeout); }

bool server::draining() const noexcept { return state_->draining; }

std::size_t server::active_connections() const noexcept { return state_->sessions.size(); }

std::size_t server::accepted_connections() const noexcept { return state_->accepted; }

std::size_t server::rejected_connections() const noexcept { return state_->rejected; }

}  // namespace hamail::net

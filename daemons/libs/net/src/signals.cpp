#include "hamail/net/signals.hpp"

#include <fmt/format.h>

#include <csignal>
#include <cstring>  // sigabbrev_np (glibc)

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/log.hpp"
#include "hamail/net/server.hpp"
#include "hamail/tls/context_store.hpp"

namespace hamail::net {

namespace asio = boost::asio;

namespace detail {

/// Shared with the waiting coroutine, which may outlive the handler object.
struct signal_state {
  signal_state(asio::io_context& io, server& s, tls::context_store* st, std::chrono::milliseconds t)
      : signals(io), srv(&s), store(st), drain_timeout(t) {}

  asio::signal_set signals;
  server* srv;  // null once stopped
  tls::context_store* store;
  std::chrono::milliseconds drain_timeout;
  std::function<void()> hook;
  std::size_t terminations = 0;
  std::size_t reloads = 0;
  bool started = false;
};

}  // namespace detail

namespace {

const char* signal_name(int signo) {
  const char* name = sigabbrev_np(signo);
  return name != nullptr ? name : "?";
}

asio::awaitable<void> wait_for_signals(std::shared_ptr<detail::signal_state> s);

}  // namespace

signal_handler::signal_handler(asio::io_context& io, server& srv, tls::context_store* store,
                               std::chrono::milliseconds drain_timeout)
    : state_(std::make_shared<detail::signal_state>(io, srv, store, drain_timeout)) {}

signal_handler::~signal_handler() { stop(); }

void signal_handler::on_reload(std::function<void()> hook) { state_->hook = std::move(hook); }

result<void> signal_handler::start() {
  if (state_->started) return ok();
  for (int signo : {SIGTERM, SIGINT, SIGHUP}) {
    boost::system::error_code ec;
    state_->signals.add(signo, ec);
    if (ec) {
      boost::system::error_code ignored;
      state_->signals.clear(ignored);
      return error::temporary(errc::io_error, "cannot install signal handlers",
                              fmt::format("SIG{}: {}", signal_name(signo), ec.message()));
    }
  }
  state_->started = true;
  asio::co_spawn(state_->signals.get_executor(), wait_for_signals(state_), asio::detached);
  return ok();
}

void signal_handler::stop() {
  state_->srv = nullptr;
  state_->store = nullptr;
  state_->hook = nullptr;
  boost::system::error_code ignored;
  state_->signals.cancel(ignored);
  state_->signals.clear(ignored);
}

std::size_t signal_handler::reloads() const noexcept { return state_->reloads; }

namespace {

asio::awaitable<void> wait_for_signals(std::shared_ptr<detail::signal_state> s) {
  for (;;) {
    auto [ec, signo] = co_await s->signals.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || s->srv == nullptr) co_return;
    if (signo == SIGTERM || signo == SIGINT) {
      if (s->terminations++ == 0) {
        log::notice("received SIG{}: draining, deadline in {} ms", signal_name(signo),
                    s->drain_timeout.count());
        s->srv->drain(std::chrono::steady_clock::now() + s->drain_timeout);
      } else {
        log::warning("received SIG{} again: closing every connection now", signal_name(signo));
        s->srv->drain(std::chrono::steady_clock::now());
      }
    } else if (signo == SIGHUP) {
      log::notice("received SIGHUP: reloading");
      ++s->reloads;
      // A failed reload keeps the old context and logs why; nothing else to do.
      if (s->store != nullptr) (void)s->store->reload();
      if (s->hook) s->hook();
    }
  }
}

}  // namespace

}  // namespace hamail::net

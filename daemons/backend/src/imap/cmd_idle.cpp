// IDLE (RFC 2177, RFC 9051 §6.3.13). While idling, a reader waits for DONE
// and the store's change notifications wake the session, which sends what
// changed at once: deliveries, other sessions' flag changes and expunges,
// and whatever an index reload finds.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/ascii.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

/// Shared between the IDLE command, its reader and the store's notifications.
struct idle_state {
  explicit idle_state(boost::asio::any_io_executor ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  boost::asio::steady_timer wake;
  bool woken = false;  ///< a change or the reader's end arrived since the last wait
  bool done = false;   ///< the reader finished (a line, or the session ended)
  std::optional<std::string> line;
};

awaitable<void> read_done(session& s, const imap::command& c, std::shared_ptr<idle_state> st) {
  st->line = co_await s.read_line(c);
  st->done = true;
  st->woken = true;
  st->wake.cancel();
}

}  // namespace

awaitable<void> cmd_idle(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, "IDLE takes no arguments");
    co_return;
  }
  if (s.st == state::selected) co_await s.report_changes(true);
  s.raw("+ idling\r\n");
  if (!co_await s.flush()) co_return;

  auto ex = co_await boost::asio::this_coro::executor;
  auto st = std::make_shared<idle_state>(ex);
  if (s.selected) {
    std::weak_ptr<idle_state> weak = st;
    s.selected->changes().on_change([weak, ex] {
      boost::asio::post(ex, [weak] {
        if (auto p = weak.lock()) {
          p->woken = true;
          p->wake.cancel();
        }
      });
    });
  }
  boost::asio::co_spawn(ex, read_done(s, c, st), boost::asio::detached);
  while (!st->done) {
    if (!st->woken) {
      st->wake.expires_at(std::chrono::steady_clock::time_point::max());
      co_await st->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    st->woken = false;
    if (st->done || s.end != ending::none) break;
    if (s.st == state::selected) {
      co_await s.report_changes(true);
      if (!co_await s.flush()) break;
    }
  }
  if (s.selected) s.selected->changes().on_change(nullptr);
  // The reader ends the loop only once it is done: nothing refers to `s` after this.
  while (!st->done) {
    st->wake.expires_at(std::chrono::steady_clock::time_point::max());
    co_await st->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  if (!st->line) co_return;  // the session ended, or BAD was queued
  if (!ascii_iequals(*st->line, "DONE")) {
    s.bad(c, "Expected DONE");
    co_return;
  }
  s.ok(c, "IDLE terminated");
}

}  // namespace hamail::backend::imap_session_detail

#pragma once

#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace hamail::net {

/// Runs `fn` (a blocking call: store I/O with fsync, password hashing) on
/// `pool` and resumes the awaiting coroutine on its own executor with the
/// result. The event loop thread never blocks on the disk.
///
/// Deliberately not a coroutine itself, and callers pass a named function
/// object (std::move(local)) rather than a temporary lambda: GCC 12 miscompiles
/// the lifetime of by-value coroutine parameters and of temporaries that live
/// across a co_await (double destruction seen here).
template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> run_blocking(boost::asio::thread_pool& pool,
                                                              F fn) {
  using R = std::invoke_result_t<F&>;
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(R)>(
      [&pool](auto handler, F f) {
        auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
        boost::asio::post(
            pool, [h = std::move(handler), f = std::move(f), work = std::move(work)]() mutable {
              R r = f();
              auto ex = work.get_executor();
              boost::asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable {
                std::move(h)(std::move(r));
              });
            });
      },
      boost::asio::use_awaitable, std::move(fn));
}

}  // namespace hamail::net

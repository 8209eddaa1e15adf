#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "hamail/core/result.hpp"

namespace hamail::tls {
class context_store;
}

namespace hamail::net {

class server;

namespace detail {
struct signal_state;
}

/// A daemon's signal handling on its io_context: SIGTERM or SIGINT drains the
/// server within the drain timeout (a second one closes everything at once);
/// SIGHUP reloads the TLS context store, then calls the reload hook.
///
/// Runs on the io_context's thread, like the server. While started it keeps
/// io_context::run() from returning: call stop() once server::run() completed.
class signal_handler {
 public:
  /// `store` may be null (no TLS). Nothing is installed until start().
  signal_handler(boost::asio::io_context& io, server& srv, tls::context_store* store,
                 std::chrono::milliseconds drain_timeout);
  ~signal_handler();
  signal_handler(const signal_handler&) = delete;
  signal_handler& operator=(const signal_handler&) = delete;

  /// Sets what else SIGHUP does after the TLS reload (the daemon's config reload).
  void on_reload(std::function<void()> hook);
  /// Installs the handlers and starts waiting; the error says which signal failed.
  result<void> start();
  /// Stops waiting and restores the default dispositions; safe to call twice.
  void stop();
  /// SIGHUPs handled so far.
  std::size_t reloads() const noexcept;

 private:
  std::shared_ptr<detail::signal_state> state_;
};

}  // namespace hamail::net

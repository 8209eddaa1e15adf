#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include <boost/asio/ssl/context.hpp>

#include "hamail/core/result.hpp"
#include "hamail/core/server_settings.hpp"

namespace hamail::tls {

/// Holds the server context in force and swaps it on reload (SIGHUP). A
/// connection takes a shared_ptr to the context at handshake time, so a reload
/// affects new handshakes only. Thread-safe.
class context_store {
 public:
  /// Builds the first context from `settings`; the error says why it could not.
  static result<std::unique_ptr<context_store>> open(tls_settings settings);

  context_store(const context_store&) = delete;
  context_store& operator=(const context_store&) = delete;

  /// The context new handshakes use; never null.
  std::shared_ptr<boost::asio::ssl::context> current() const;
  /// Rebuilds the context from the current settings (files re-read). On failure
  /// the old context stays in force, the error is logged and returned.
  result<void> reload();
  /// Like reload(), with new settings that are adopted only on success.
  result<void> reload(const tls_settings& settings);
  /// Counts successful loads: 1 after open(), +1 per successful reload.
  std::uint64_t generation() const;
  /// The settings the current context was built from.
  tls_settings settings() const;

 private:
  context_store(tls_settings settings, std::shared_ptr<boost::asio::ssl::context> ctx);

  mutable std::mutex mutex_;
  tls_settings settings_;
  std::shared_ptr<boost::asio::ssl::context> current_;
  std::uint64_t generation_ = 1;
};

}  // namespace hamail::tls

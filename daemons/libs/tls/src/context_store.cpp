#include "hamail/tls/context_store.hpp"

#include <utility>

#include "hamail/core/log.hpp"
#include "hamail/tls/context.hpp"

namespace hamail::tls {

result<std::unique_ptr<context_store>> context_store::open(tls_settings settings) {
  auto ctx = make_server_context(settings);
  if (!ctx) return std::move(ctx).err();
  log::info("tls: loaded certificate {} ({})", settings.cert_file, certificate_summary(**ctx));
  return std::unique_ptr<context_store>(new context_store(std::move(settings), std::move(*ctx)));
}

context_store::context_store(tls_settings settings, std::shared_ptr<boost::asio::ssl::context> ctx)
    : settings_(std::move(settings)), current_(std::move(ctx)) {}

std::shared_ptr<boost::asio::ssl::context> context_store::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

result<void> context_store::reload() { return reload(settings()); }

result<void> context_store::reload(const tls_settings& settings) {
  // Built outside the lock: reading files must not stall handshakes.
  auto ctx = make_server_context(settings);
  if (!ctx) {
    log::error("tls: reload failed, keeping the current certificate: {}", ctx.err().describe());
    return std::move(ctx).err();
  }
  const std::string summary = certificate_summary(**ctx);
  {
    std::lock_guard lock(mutex_);
    settings_ = settings;
    current_ = std::move(*ctx);
    ++generation_;
  }
  log::notice("tls: reloaded certificate {} ({})", settings.cert_file, summary);
  return ok();
}

std::uint64_t context_store::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

tls_settings context_store::settings() const {
  std::lock_guard lock(mutex_);
  return settings_;
}

}  // namespace hamail::tls

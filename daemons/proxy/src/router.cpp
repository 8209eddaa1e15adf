#include "router.hpp"

#include <fmt/format.h>

namespace hamail::proxy {

namespace {

std::uint16_t port_of(const directory::store_record& r, service svc) {
  switch (svc) {
    case service::imap:
      return r.imap_port != 0 ? r.imap_port : 143;
    case service::pop3:
      return r.pop3_port != 0 ? r.pop3_port : 110;
    case service::lmtp:
      return r.lmtp_port != 0 ? r.lmtp_port : 24;
  }
  return 0;
}

error unavailable(std::string detail) {
  return error::temporary(errc::unavailable, "store unavailable", std::move(detail));
}

}  // namespace

router::router(const backend_settings& cfg, store_lookup find_store)
    : cfg_(cfg), find_store_(std::move(find_store)) {}

boost::asio::awaitable<result<backend_target>> router::target(const std::string& store,
                                                              service svc) {
  for (const auto& s : cfg_.stores) {
    if (s.name != store) continue;
    backend_target t;
    t.store = store;
    t.host = s.address;
    t.port = svc == service::imap ? s.imap_port : svc == service::pop3 ? s.pop3_port : s.lmtp_port;
    t.tls_name = s.address;
    co_return t;
  }
  const auto now = clock::now();
  auto it = cache_.find(store);
  if (it == cache_.end() || it->second.expires <= now) {
    if (!find_store_) co_return unavailable(fmt::format("store {} is not configured", store));
    auto lookup = find_store_(store);
    auto looked = co_await std::move(lookup);
    if (!looked) co_return std::move(looked).err();
    if (!*looked) co_return unavailable(fmt::format("store {} is not in the directory", store));
    it = cache_.insert_or_assign(store, cached{std::move(**looked), now + cfg_.store_cache_ttl})
             .first;
  }
  const auto& r = it->second.record;
  if (r.state == directory::store_state::closed) {
    co_return unavailable(fmt::format("store {} is closed", store));
  }
  backend_target t;
  t.store = store;
  t.host = !r.service_address.empty() ? r.service_address : r.service_host;
  if (t.host.empty()) co_return unavailable(fmt::format("store {} has no address", store));
  t.port = port_of(r, svc);
  t.tls_name = !r.service_host.empty() ? r.service_host : r.service_address;
  co_return t;
}

void router::forget(const std::string& store) { cache_.erase(store); }

}  // namespace hamail::proxy

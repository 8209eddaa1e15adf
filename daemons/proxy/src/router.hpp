#pragma once

// Where a store's backend is reached: the stores pinned in the configuration
// first, then the directory's hamailStore entries, kept for a short TTL so a
// floating address that moved is seen soon.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "backend_link.hpp"
#include "hamail/core/result.hpp"
#include "hamail/directory/store_record.hpp"
#include "hamail/proxy/config.hpp"

namespace hamail::proxy {

/// The backend services the proxy reaches.
enum class service { imap, pop3, lmtp };

/// Finds a store's backend address. Single-threaded (the daemon's io thread).
class router {
 public:
  /// Looks stores up with `find_store` (the LDAP directory) when they are not
  /// pinned in `cfg.stores`; `find_store` may be empty (no directory stores).
  using store_lookup =
      std::function<boost::asio::awaitable<result<std::optional<directory::store_record>>>(
          const std::string&)>;

  router(const backend_settings& cfg, store_lookup find_store);

  /// The address of `store`'s `svc` backend. errc::unavailable (temporary)
  /// when the store is unknown, closed or has no address.
  boost::asio::awaitable<result<backend_target>> target(const std::string& store, service svc);
  /// Drops what is cached about `store` (its backend did not answer, or said
  /// an account is not its own).
  void forget(const std::string& store);

 private:
  struct cached {
    directory::store_record record;
    clock::time_point expires;
  };
  const backend_settings& cfg_;
  store_lookup find_store_;
  std::map<std::string, cached, std::less<>> cache_;
};

}  // namespace hamail::proxy

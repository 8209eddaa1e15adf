#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "hamail/core/result.hpp"

// The per-account fence of an account move (docs/adr/0005-account-moves.md): what the sync
// channel asks of the account gate. The gate (account_gate.hpp) implements it; the sync server
// (src/sync/) only calls it.

namespace hamail::backend {

/// What a fence says about one account on this store.
struct fence_state {
  enum class kind_t {
    none,    ///< no fence: the account is served as the directory says
    locked,  ///< a move's final phase: logins and deliveries get temporary refusals
    moved,   ///< the account is another store's: "served by another store"
  };
  kind_t kind = kind_t::none;
  std::string store;                              ///< the destination store (locked, moved)
  std::chrono::system_clock::time_point until{};  ///< end of a locked fence's lease
};

/// The operations the sync channel needs. Every change is durable (fsynced) before it returns.
/// Await them on the daemon's io_context (the thread the sessions run on): fencing drains
/// the account's connections there. Account ids and store names are validated (invalid_input);
/// two operations on one account at once: the second gets a temporary error.
class fence_control {
 public:
  virtual ~fence_control() = default;
  /// FENCE LOCKED: refuses new logins and deliveries of `account`, ends its sessions, waits
  /// (bounded) until none of its operations is in progress, then records the fence. Idempotent:
  /// on a locked account it renews the lease. Errors: temporary when the account stayed busy
  /// (the fence is then not left in place), already_exists when the account is fenced `moved`.
  virtual boost::asio::awaitable<result<void>> lock(std::string account, std::string to_store,
                                                    std::chrono::seconds lease) = 0;
  /// FENCE MOVED: the account belongs to `to_store` from now on; sessions end. Idempotent.
  virtual boost::asio::awaitable<result<void>> mark_moved(std::string account,
                                                          std::string to_store) = 0;
  /// UNFENCE: removes a locked fence (rollback). Errors: permission_denied on a moved fence.
  virtual boost::asio::awaitable<result<void>> unlock(std::string account) = 0;
  /// Removes a moved fence once the account's tree is gone (PURGE's last step).
  virtual boost::asio::awaitable<result<void>> forget(std::string account) = 0;
  /// The fence of `account` now (none when it has none).
  virtual fence_state current(std::string_view account) const = 0;
};

}  // namespace hamail::backend

#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/thread_pool.hpp>

#include "hamail/backend/account_gate.hpp"
#include "hamail/backend/config.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/directory/login_throttle.hpp"
#include "hamail/net/server.hpp"
#include "hamail/store/store.hpp"

namespace hamail::auth {
class password_checker;
}

namespace hamail::backend {

/// What the POP3 sessions of one backend know about each other's accounts:
/// which maildrops are held ([pop3] lock_mailbox) and when each account last
/// logged in ([pop3] login_delay). Thread-safe.
class pop3_accounts {
 public:
  using clock = std::chrono::steady_clock;
  /// Takes the account's maildrop; false when another session holds it.
  bool try_lock(const std::string& account);
  /// Gives the maildrop back.
  void unlock(const std::string& account);
  /// Records a login of `account` at `now` unless the last recorded one was
  /// less than `delay` earlier; returns the time left to wait then (zero: allowed).
  std::chrono::seconds record_login(const std::string& account, std::chrono::seconds delay,
                                    clock::time_point now);

 private:
  std::mutex mutex_;
  std::unordered_set<std::string> locked_;
  std::unordered_map<std::string, clock::time_point> last_login_;
};

/// What every POP3 session of one backend shares. Outlives the sessions.
struct pop3_context {
  const backend_config& config;
  store::mail_store& store;
  directory::directory& directory;
  boost::asio::thread_pool& blocking;   ///< for store calls and message files
  directory::login_throttle& throttle;  ///< failed-login limits shared by every protocol
  auth::password_checker& passwords;    ///< password checks, on their own bounded pool
  pop3_accounts& accounts;              ///< maildrop locks and login times
  /// Set when [directory] auth = "bind": logins are checked by binding as the account.
  directory::ldap_directory* bind_auth = nullptr;
  /// The fences of account moves (account_gate.hpp): every login or recipient passes it.
  /// The daemon always sets it; null only in tests that do not move accounts.
  account_gate* gate = nullptr;
};

/// The protocol factory for the listener protocol "pop3" (RFC 1939, RFC 2449,
/// RFC 5034, STLS of RFC 2595; implicit TLS when the listener says tls = "implicit").
net::protocol_factories pop3_protocols(pop3_context& ctx);

}  // namespace hamail::backend

#pragma once

#include <memory>

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

namespace imap_fetch {
class structure_cache;
}

/// What every IMAP session of one backend shares. Outlives the sessions.
struct imap_context {
  const backend_config& config;
  store::mail_store& store;
  directory::directory& directory;
  boost::asio::thread_pool& blocking;       ///< for store calls, message files, SEARCH and SORT
  directory::login_throttle& throttle;      ///< failed-login limits shared by every protocol
  auth::password_checker& passwords;        ///< password checks, on their own bounded pool
  imap_fetch::structure_cache& structures;  ///< parsed MIME structures, shared by every session
  /// Set when [directory] auth = "bind": logins are checked by binding as the account.
  directory::ldap_directory* bind_auth = nullptr;
  /// The fences of account moves (account_gate.hpp): every login or recipient passes it.
  /// The daemon always sets it; null only in tests that do not move accounts.
  account_gate* gate = nullptr;
};

/// The protocol factory for the listener protocol "imap" (RFC 3501 / RFC 9051;
/// implicit TLS when the listener says tls = "implicit").
net::protocol_factories imap_protocols(imap_context& ctx);

}  // namespace hamail::backend

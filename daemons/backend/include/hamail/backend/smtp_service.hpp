#pragma once

#include <memory>

#include <boost/asio/thread_pool.hpp>

#include "hamail/backend/account_gate.hpp"
#include "hamail/backend/config.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/directory/login_throttle.hpp"
#include "hamail/net/server.hpp"
#include "hamail/smtpd/session.hpp"
#include "hamail/store/store.hpp"

namespace hamail::auth {
class password_checker;
}

namespace hamail::backend {

/// What every SMTP/LMTP session of one backend shares. Outlives the sessions.
struct smtp_context {
  const backend_config& config;
  store::mail_store& store;
  directory::directory& directory;
  boost::asio::thread_pool& blocking;   ///< for store calls and message file I/O
  directory::login_throttle& throttle;  ///< failed-login limits shared by every session
  auth::password_checker& passwords;    ///< password checks, on their own bounded pool
  /// Set when [directory] auth = "bind": logins are checked by binding as the account.
  directory::ldap_directory* bind_auth = nullptr;
  /// The fences of account moves (account_gate.hpp): every login or recipient passes it.
  /// The daemon always sets it; null only in tests that do not move accounts.
  account_gate* gate = nullptr;
};

/// The protocol factories for the listener protocols "smtp" (MX intake),
/// "submission" (AUTH required before MAIL) and "lmtp" (RFC 2033).
net::protocol_factories smtp_protocols(smtp_context& ctx);

/// The shared SMTP session's services for this backend (src/smtp/store_handler.cpp).
smtpd::services smtp_services(smtp_context& ctx);
/// Handlers that receive into this store: recipients must be placed here.
smtpd::handler_factory smtp_handlers(smtp_context& ctx);

}  // namespace hamail::backend

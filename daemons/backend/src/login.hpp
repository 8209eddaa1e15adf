#pragma once

// The login check every protocol of hamail-backend shares (SMTP AUTH, IMAP
// LOGIN/AUTHENTICATE): throttle, directory lookup, password check on its own
// pool (or an LDAP bind as the account), account state, failure delays.

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "hamail/directory/account.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/directory/login_throttle.hpp"
#include "hamail/net/connection.hpp"

namespace hamail::backend {

class password_checker;

/// What a login check needs from the daemon.
struct login_services {
  directory::directory& directory;
  directory::login_throttle& throttle;
  password_checker& passwords;
  /// Set when [directory] auth = "bind": the password is checked by binding as the account.
  directory::ldap_directory* bind_auth = nullptr;
};

/// How a login check ended.
enum class login_status {
  ok,                 ///< the account may log in; login_outcome::account is set
  failed,             ///< wrong login or password (answered after the throttle's delay)
  address_refused,    ///< the client's address failed too often: refuse and close
  temporary_failure,  ///< directory or password check unavailable
  busy,               ///< every password-check thread is busy and the queue is full
  locked,             ///< the account may not log in (locked or disabled)
  moving,             ///< the account is being moved between stores: try later
};

/// The result of check_login().
struct login_outcome {
  login_status status = login_status::failed;
  directory::account account;  ///< for ok, locked and moving
};

/// Checks `login`/`password` for a client connected on `conn`; on a failure the
/// throttle's delay has already been waited. `mechanism` goes into the log.
boost::asio::awaitable<login_outcome> check_login(login_services svc, net::connection& conn,
                                                  std::string login, std::string password,
                                                  std::string_view mechanism);

/// Records a failed login that check_login() did not see (e.g. a refused
/// authorization identity), waits the throttle's delay and returns
/// address_refused or failed.
boost::asio::awaitable<login_status> record_failed_login(login_services svc, net::connection& conn,
                                                         std::string login);

}  // namespace hamail::backend

#pragma once

// The login check every protocol of hamail-backend and hamail-proxy shares (SMTP AUTH, IMAP
// LOGIN/AUTHENTICATE): throttle, directory lookup, password check on its own
// pool (or an LDAP bind as the account), account state, failure delays.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "hamail/directory/account.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/directory/login_throttle.hpp"
#include "hamail/net/connection.hpp"

namespace hamail::auth {

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

/// The parts of a SASL PLAIN message (RFC 4616).
struct sasl_plain {
  std::string authzid;  ///< authorization identity; empty when it is the login's own
  std::string login;    ///< authentication identity
  std::string password;
};

/// Splits "authzid NUL authcid NUL passwd"; an authzid equal to the login is
/// cleared. nullopt when the message lacks the two NULs.
std::optional<sasl_plain> parse_sasl_plain(std::string_view message);

/// How act_as() ended.
enum class proxy_status {
  ok,                 ///< proxy_outcome::account is the account to act as
  not_allowed,        ///< this login may not act as another account (from here)
  unknown_account,    ///< no account has the authorization identity as login
  temporary_failure,  ///< the directory is unavailable
  locked,             ///< the account may not log in (locked or disabled)
  moving,             ///< the account is being moved between stores: try later
};

/// The result of act_as().
struct proxy_outcome {
  proxy_status status = proxy_status::not_allowed;
  directory::account account;  ///< for ok, locked
};

/// After a successful login as `proxy`: the account it acts as when it named
/// `authzid` (SASL PLAIN's authorization identity). Only a login listed in
/// `proxy_logins` coming from a trusted proxy address (`trusted`) may do so.
boost::asio::awaitable<proxy_outcome> act_as(directory::directory& dir, net::connection& conn,
                                             bool trusted,
                                             const std::vector<std::string>& proxy_logins,
                                             const directory::account& proxy, std::string authzid);

}  // namespace hamail::auth

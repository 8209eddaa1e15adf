#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/directory/cached_directory.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/directory/ldap_escape.hpp"
#include "hamail/directory/ldap_settings.hpp"
#include "hamail/directory/store_record.hpp"

namespace hamail::directory {

namespace detail {
struct ldap_state;
}

/// The directory on OpenLDAP: accounts (`hamailAccount`) and stores (`hamailStore`)
/// found by RFC 4515-escaped searches, over a pool of libldap connections with
/// failover between servers. Lookups never block the caller's executor; the caller
/// resumes on its own executor. Destroy it before the io_contexts its callers run on.
///
/// Implementation choice: each connection belongs to one worker thread that makes
/// synchronous libldap calls with network and operation timeouts (pool_size
/// threads), rather than driving the async libldap API from Asio on the socket's
/// descriptor. libldap's TLS handshake (ldaps://, StartTLS) and bind are
/// synchronous anyway, and it buffers reads (read-ahead, TLS records) so a readable
/// descriptor and a complete message do not line up: an Asio wait on the descriptor
/// can sleep while the answer sits in libldap's buffer. Threads cost a few stacks
/// and make every libldap call bounded and simple. libldap may write to a socket
/// the server closed: the process must ignore SIGPIPE (hamail's daemons do).
class ldap_directory final : public directory {
 public:
  /// Validates `settings` (URIs, base DN, secret file), reads the bind password and
  /// starts the worker threads. Connects lazily: a directory that is down at
  /// start-up is a temporary condition of the first lookups, not an error here.
  /// Errors: errc::config_error (permanent) with a detail naming the problem.
  static result<std::unique_ptr<ldap_directory>> create(ldap_settings settings);

  /// Stops the workers: queued lookups end with errc::shutting_down; one in flight
  /// finishes first (bounded by the timeout).
  ~ldap_directory() override;
  ldap_directory(const ldap_directory&) = delete;
  ldap_directory& operator=(const ldap_directory&) = delete;

  /// `(&(objectClass=hamailAccount)(mailLocalAddress=<address>))`.
  boost::asio::awaitable<result<std::optional<account>>> find_by_address(
      std::string_view address) override;
  /// `(&(objectClass=hamailAccount)(|(uid=<login>)(mail=<login>)))`.
  boost::asio::awaitable<result<std::optional<account>>> find_by_login(
      std::string_view login) override;

  /// The store named `name` (`(&(objectClass=hamailStore)(hamailStoreName=<name>))`);
  /// empty when there is none; an error when the directory cannot answer.
  boost::asio::awaitable<result<std::optional<store_record>>> find_store(std::string_view name);

  /// Checks `password` by binding as `dn` on a fresh connection ("LDAP bind"
  /// authentication: slapd checks the password and its policy). True when the bind
  /// succeeds, false on invalid credentials (and, without asking, for an empty
  /// DN or password: that would be an unauthenticated bind); an error when no
  /// server could answer or the only servers are plaintext and remote.
  boost::asio::awaitable<result<bool>> bind_as(std::string_view dn, std::string_view password);

  /// Search requests sent to a server since creation (tests, statistics).
  std::uint64_t search_count() const noexcept;

 private:
  explicit ldap_directory(std::shared_ptr<detail::ldap_state> state);
  std::shared_ptr<detail::ldap_state> state_;
};

}  // namespace hamail::directory

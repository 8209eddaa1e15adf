#pragma once

// Where the directory places an account, for the lease review of the account gate
// (account_gate.hpp): every LDAP server asked directly and uncached, or the accounts file.

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "hamail/backend/account_gate.hpp"
#include "hamail/core/result.hpp"
#include "hamail/directory/daemon_settings.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/directory/ldap_directory.hpp"

namespace hamail::backend::account_move {

/// placement_source on the daemon's directory. With [directory] type = "ldap" it holds one
/// uncached LDAP client per URI of `uris` (one connection each, no failover), so a lease
/// review hears every server; with type = "file" it asks the accounts file. The account is
/// looked up by its id as a login (the LDAP uid); an entry with another id counts as unknown.
class directory_placement final : public placement_source {
 public:
  /// `file_lookups` answers for type "file" (the daemon's directory::lookups()); unused for
  /// LDAP. Errors: config_error when an LDAP client cannot be made.
  static result<std::unique_ptr<directory_placement>> open(
      const directory::directory_settings& settings, directory::directory& file_lookups);

  boost::asio::awaitable<std::vector<placement_answer>> ask(std::string account) override;
  /// Stops the LDAP workers (before the io_context they resume coroutines on goes).
  void reset() noexcept;

 private:
  explicit directory_placement(directory::directory& file_lookups) : file_(file_lookups) {}
  directory::directory& file_;
  std::vector<std::unique_ptr<directory::ldap_directory>> servers_;
  bool ldap_ = false;
};

}  // namespace hamail::backend::account_move

#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hamail/admin/settings.hpp"
#include "hamail/directory/ldap_connection.hpp"

namespace hamail::admin {

/// One directory entry as read (the directory library's type).
using ldap_entry = directory::ldap_entry;
/// How far below the base a search looks.
using search_scope = directory::ldap_scope;
/// One attribute change for add() and modify().
using attribute_change = directory::ldap_change;

/// hamail-admin's view of the directory library's LDAP connection: the same failover,
/// StartTLS/ldaps (TLS 1.2 at least), error classification and secret-file reading as
/// the daemons, with every failure turned into an admin_error with the exit status
/// that fits it: server gone → unreachable, no such entry → not_found, entry exists
/// → conflict, plaintext password refused → config_error, anything else → ldap_error.
class directory_connection {
 public:
  /// Keeps `settings`; connects on the first operation, so a command validates its
  /// input before the directory is contacted. Connecting tries each URI in
  /// `settings.uris` in order (failover), with StartTLS when asked, and binds
  /// (simple bind with the secret file's password, or anonymously). A password
  /// bind over an unencrypted non-loopback connection is refused unless
  /// allow_plaintext is set.
  explicit directory_connection(connection_settings settings);
  directory_connection(const directory_connection&) = delete;
  directory_connection& operator=(const directory_connection&) = delete;

  /// Connects and binds now unless connected already.
  void connect();
  /// The URI of the server in use ("" before connecting).
  const std::string& uri() const noexcept { return conn_.uri(); }

  /// Entries under `base` matching `filter` (values in it must be escaped by the
  /// caller with directory::escape_filter_value), with only `attributes`; read in pages
  /// (RFC 2696) so server size limits do not cut the answer short. A missing base
  /// gives no entries.
  std::vector<ldap_entry> search(const std::string& base, search_scope scope,
                                 const std::string& filter,
                                 const std::vector<std::string>& attributes);
  /// The entry at `dn`, or nullopt when it does not exist.
  std::optional<ldap_entry> read(const std::string& dn, const std::vector<std::string>& attributes);
  /// Creates `dn` with `attributes` in one add operation (all or nothing).
  void add(const std::string& dn, const std::vector<attribute_change>& attributes);
  /// Applies `changes` to `dn` in one modify operation (all or nothing).
  void modify(const std::string& dn, const std::vector<attribute_change>& changes);
  /// Deletes the entry `dn`.
  void remove(const std::string& dn);

 private:
  [[noreturn]] static void fail(const directory::ldap_failure& f);

  connection_settings settings_;
  directory::ldap_connection conn_;
};

}  // namespace hamail::admin

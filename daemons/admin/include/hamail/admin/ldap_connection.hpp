#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/admin/settings.hpp"

struct ldap;  // libldap's LDAP handle; ldap.h stays inside ldap_connection.cpp

namespace hamail::admin {

/// One directory entry as read: its DN and its attributes, keyed by lower-case name.
struct ldap_entry {
  std::string dn;                                           ///< the entry's DN
  std::map<std::string, std::vector<std::string>> values_;  ///< lower-case name → values

  /// Every value of `attribute` (any case); empty when absent.
  const std::vector<std::string>& values(std::string_view attribute) const;
  /// The first value of `attribute`, or "" when absent.
  std::string first(std::string_view attribute) const;
  /// True when `attribute` has at least one value.
  bool has(std::string_view attribute) const;
};

/// How far below the base a search looks.
enum class search_scope { base, one_level, subtree };

/// One attribute change for add() and modify().
struct attribute_change {
  /// What to do with the values.
  enum class operation { add, remove, replace };
  operation op = operation::replace;  ///< add: new values; remove: these (or all); replace: set
  std::string attribute;              ///< attribute type name
  std::vector<std::string> values;    ///< the values; replace with none deletes the attribute
};

/// A bound, synchronous connection to the directory (libldap). Every failure
/// throws admin_error with the exit status that fits it: server gone → unreachable,
/// no such entry → not_found, entry exists → conflict, anything else → ldap_error.
class directory_connection {
 public:
  /// Keeps `settings`; connects on the first operation, so a command validates its
  /// input before the directory is contacted. Connecting tries each URI in
  /// `settings.uris` in order (failover), with StartTLS when asked, and binds
  /// (simple bind with the secret file's password, or anonymously). A password
  /// bind over an unencrypted non-loopback connection is refused unless
  /// allow_plaintext is set.
  explicit directory_connection(connection_settings settings);
  ~directory_connection();
  directory_connection(const directory_connection&) = delete;
  directory_connection& operator=(const directory_connection&) = delete;

  /// Connects and binds now unless connected already.
  void connect();
  /// The URI of the server in use ("" before connecting).
  const std::string& uri() const noexcept { return uri_; }

  /// Entries under `base` matching `filter` (values in it must be escaped by the
  /// caller), with only `attributes`; read in pages so server size limits do not cut
  /// the answer short. A missing base gives no entries.
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
  [[noreturn]] void fail(int rc, const std::string& what) const;

  connection_settings settings_;
  ::ldap* ld_ = nullptr;
  std::string uri_;
  int timeout_ms_ = 10'000;
};

}  // namespace hamail::admin

#pragma once

// The one LDAP client of the tree: a synchronous libldap connection with failover
// across servers, StartTLS or ldaps:// with certificate checks and TLS 1.2 at least,
// one classification of failures (temporary or permanent), and search, paged search,
// add, modify and delete. The daemons' ldap_directory runs it on worker threads;
// hamail-admin runs it directly. ldap.h stays inside the implementation.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"

struct ldap;  // libldap's LDAP handle

namespace hamail::directory {

/// How a connection reaches the directory; the part of ldap_settings (daemons) and of
/// hamail-admin's settings that both share.
struct ldap_connection_settings {
  std::vector<std::string> uris;  ///< ldap://, ldaps:// or ldapi:// URIs, in order of preference
  bool starttls = false;          ///< upgrade ldap:// with StartTLS; failure skips the server
  std::string ca_file;            ///< PEM CAs for server certificates; empty: the system's
  bool allow_plaintext_bind = false;  ///< allow a password over plain, non-local ldap://
};

/// What kind of failure an LDAP operation had; the one classification of the tree.
enum class ldap_failure_kind {
  temporary,          ///< the server is unusable now (down, timed out, busy): try another / later
  bind_rejected,      ///< the server refused the bind's credentials
  plaintext_refused,  ///< not sent: a password would have crossed the network in plaintext
  permanent,          ///< the server answered with an error about the request itself
};

/// A failed LDAP operation: libldap's result code, its kind and a text for logs
/// (operation, URI, libldap's message and the server's diagnostic; never a password).
struct ldap_failure {
  int code = 0;  ///< LDAP result code (RFC 4511) or libldap's
  ldap_failure_kind kind = ldap_failure_kind::permanent;  ///< what the caller should do
  std::string text;                                       ///< for logs and operators

  /// True for ldap_failure_kind::temporary.
  bool temporary() const noexcept { return kind == ldap_failure_kind::temporary; }
  /// True when the entry named by the operation does not exist (noSuchObject).
  bool no_such_object() const noexcept;
  /// True when the entry or value exists already (entryAlreadyExists, attributeOrValueExists).
  bool already_exists() const noexcept;
  /// True when the server stopped at the search's size limit (sizeLimitExceeded).
  bool size_limit_exceeded() const noexcept;
};

/// The kind of LDAP result `code`: temporary for connection-level failures
/// (serverDown, connectError, timeout, unavailable, busy, timeLimitExceeded, localError),
/// bind_rejected for invalidCredentials / inappropriateAuthentication /
/// insufficientAccessRights on a bind, permanent for everything else.
ldap_failure_kind classify_ldap_result(int code, bool is_bind) noexcept;

/// One directory entry as read: its DN and its attributes, names lower-cased.
struct ldap_entry {
  std::string dn;                                              ///< the entry's DN
  std::map<std::string, std::vector<std::string>> attributes;  ///< lower-case name → values

  /// Every value of `attribute` (any case); empty when absent.
  const std::vector<std::string>& values(std::string_view attribute) const;
  /// The first value of `attribute`, or "" when absent.
  std::string first(std::string_view attribute) const;
  /// True when `attribute` has at least one value.
  bool has(std::string_view attribute) const;
};

/// How far below the base a search looks.
enum class ldap_scope { base, one_level, subtree };

/// One attribute change for add() and modify().
struct ldap_change {
  /// What to do with the values.
  enum class operation { add, remove, replace };
  operation op = operation::replace;  ///< add: new values; remove: these (or all); replace: set
  std::string attribute;              ///< attribute type name
  std::vector<std::string> values;    ///< replace with none deletes the attribute
};

/// Reads a bind secret file: its one line, a trailing newline stripped. Errors
/// (permanent, errc::config_error): unreadable, empty, more than one line. Warns in the
/// log when the file is readable by group or others. The secret is never in an error.
result<std::string> read_secret_file(const std::filesystem::path& path);

/// One libldap connection to one server; synchronous, every call bounded by a budget.
/// Not thread-safe: one thread uses it at a time.
class ldap_connection {
 public:
  using clock = std::chrono::steady_clock;

  ldap_connection() = default;
  ~ldap_connection();
  ldap_connection(const ldap_connection&) = delete;
  ldap_connection& operator=(const ldap_connection&) = delete;

  /// Connects to server `index` of `s.uris`, upgrades with StartTLS when configured
  /// (ldaps:// is TLS from the start; certificates are verified, TLS 1.2 at least) and
  /// binds as `dn` with `password` (anonymously when both are empty), all within
  /// `budget`. A password is never sent over plain ldap:// to a non-local server
  /// unless allow_plaintext_bind (plaintext_refused). A failed StartTLS is temporary.
  std::optional<ldap_failure> open(const ldap_connection_settings& s, std::size_t index,
                                   clock::duration budget, std::string_view dn,
                                   std::string_view password);

  /// Tries the servers of `s` in `order` until one opens and binds before `deadline`,
  /// sharing the time left among those not yet tried so one silent server cannot use
  /// it all (failover). Stops at once on a rejected bind. `on_failure(index, failure)`
  /// is called for every server that failed. Nullopt on success; else the last
  /// failure, its text listing every server's.
  std::optional<ldap_failure> open_first(
      const ldap_connection_settings& s, const std::vector<std::size_t>& order,
      clock::time_point deadline, std::string_view dn, std::string_view password,
      const std::function<void(std::size_t, const ldap_failure&)>& on_failure = {});

  /// Unbinds and closes.
  void close() noexcept;
  /// True while connected and bound.
  bool is_open() const noexcept { return ld_ != nullptr; }
  /// The index of the server in use (valid while open).
  std::size_t server() const noexcept { return server_; }
  /// The URI of the server in use ("" when closed).
  const std::string& uri() const noexcept { return uri_; }
  /// When the connection was opened.
  clock::time_point opened_at() const noexcept { return opened_at_; }

  /// One search: at most `size_limit` entries (0: no limit); a size limit hit is a
  /// failure (size_limit_exceeded) with `out` holding what came.
  std::optional<ldap_failure> search(const std::string& base, ldap_scope scope,
                                     const std::string& filter,
                                     const std::vector<std::string>& attributes,
                                     clock::duration budget, std::size_t size_limit,
                                     std::vector<ldap_entry>& out);
  /// A search read in pages of `page_size` with the simple paged results control
  /// (RFC 2696), so server size limits do not cut a long answer short; `budget`
  /// bounds each page. A missing base gives no entries.
  std::optional<ldap_failure> paged_search(const std::string& base, ldap_scope scope,
                                           const std::string& filter,
                                           const std::vector<std::string>& attributes,
                                           clock::duration budget, std::size_t page_size,
                                           std::vector<ldap_entry>& out);
  /// Creates `dn` with `attributes` in one add operation (all or nothing).
  std::optional<ldap_failure> add(const std::string& dn, const std::vector<ldap_change>& attributes,
                                  clock::duration budget);
  /// Applies `changes` to `dn` in one modify operation (all or nothing).
  std::optional<ldap_failure> modify(const std::string& dn, const std::vector<ldap_change>& changes,
                                     clock::duration budget);
  /// Deletes the entry `dn`.
  std::optional<ldap_failure> remove(const std::string& dn, clock::duration budget);

 private:
  ldap_failure fail(int code, std::string_view what, bool is_bind = false) const;

  ::ldap* ld_ = nullptr;
  std::size_t server_ = 0;
  std::string uri_;
  clock::time_point opened_at_{};
};

}  // namespace hamail::directory

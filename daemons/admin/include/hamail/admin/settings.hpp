#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hamail::admin {

/// How hamail-admin reaches and binds to the directory.
struct connection_settings {
  std::vector<std::string> uris;  ///< LDAP URIs, tried in order (failover)
  std::string base_dn;            ///< the directory suffix (ou=stores and ou=accounts sit below)
  std::string bind_dn;            ///< empty: anonymous (read-only commands only)
  std::string bind_secret_file;   ///< file holding the bind password (first line)
  bool starttls = false;          ///< StartTLS on ldap:// URIs, required to succeed
  std::string ca_file;            ///< CA certificates for StartTLS and ldaps://; empty: system
  std::chrono::milliseconds timeout{10'000};  ///< connect and per-operation timeout
  bool allow_plaintext = false;  ///< permit a password bind over unencrypted non-loopback ldap://
  std::string password_scheme = "SHA512-CRYPT";  ///< default scheme for new passwords
  /// [sync]: how account moves reach the stores' sync listeners (docs/sync.md).
  std::string sync_secret_file;  ///< the cluster's sync secret (first line); required for moves
  std::string sync_ca_file;      ///< CA of the stores' sync certificates; empty: system
  bool sync_verify_name = true;  ///< check the store's certificate names its service host
};

/// Settings given on the command line; empty/nullopt = not given.
struct settings_overrides {
  std::vector<std::string> uris;                ///< --uri (repeatable)
  std::optional<std::string> base_dn;           ///< --base-dn
  std::optional<std::string> bind_dn;           ///< --bind-dn
  std::optional<std::string> bind_secret_file;  ///< --bind-secret-file
  std::optional<bool> starttls;                 ///< --starttls
  std::optional<std::string> ca_file;           ///< --ca-file
  std::optional<std::string> sync_secret_file;  ///< --sync-secret-file
  std::optional<std::string> sync_ca_file;      ///< --sync-ca-file
};

/// Where settings come from: `explicit_path` is --config (must exist); without it
/// the default file is read when it exists.
inline const std::filesystem::path default_config_path = "/etc/hamail/admin.toml";

/// Parses admin.toml text (see docs/admin.md). Throws admin_error(config_error)
/// listing every problem as "file:line: key: reason".
connection_settings parse_settings_file(std::string_view text, const std::string& file_name);

/// Applies the environment (HAMAIL_LDAP_URI, _BASE_DN, _BIND_DN, _BIND_SECRET_FILE)
/// then the flags over `file`: flags > environment > file. `getenv` returns nullptr
/// for an unset variable. HAMAIL_LDAP_URI may list several URIs separated by
/// spaces or commas. Throws admin_error(usage) when no URI or base DN results.
connection_settings resolve_settings(connection_settings file,
                                     const std::function<const char*(const char*)>& getenv,
                                     const settings_overrides& flags);

/// Reads the file (explicit or default), then resolve_settings() with the
/// process environment.
connection_settings load_settings(const std::optional<std::filesystem::path>& explicit_path,
                                  const settings_overrides& flags);

/// Reads the bind secret with the directory library's reader (one line, its line
/// ending stripped). Throws admin_error(config_error) when it cannot be read, is
/// empty or holds more than one line.
std::string read_secret_file(const std::filesystem::path& path);

}  // namespace hamail::admin

#pragma once

// The `[directory]` settings for LDAP and their reader. Lean on purpose: no libldap and
// no Asio, so a program that only reads configuration files (the OCF agent, through
// hamail::backend_config) links hamail::directory_settings and core, nothing more.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hamail/directory/cache_settings.hpp"

namespace hamail::config {
class section;
}

namespace hamail::directory {

/// How to reach the LDAP directory (`[directory]` with type = "ldap").
struct ldap_settings {
  /// Servers in order of preference: ldap://, ldaps:// or ldapi:// URIs, one server
  /// each. A server that refuses, times out or drops the connection is skipped for
  /// `retry_interval`, then tried again first.
  std::vector<std::string> uris;
  /// Where accounts and stores are searched (subtree), e.g. "dc=example,dc=org".
  std::string base_dn;
  /// The DN the daemon binds as; empty = anonymous (then userPassword is usually
  /// not readable and password checks fail).
  std::string bind_dn;
  /// File holding the bind password (one line; a trailing newline is stripped).
  /// Required with bind_dn. The password is never logged.
  std::filesystem::path bind_secret_file;
  /// Upgrade ldap:// connections with StartTLS (ldaps:// URIs use TLS anyway).
  bool starttls = false;
  /// PEM CA bundle that server certificates must chain to; empty = the system's.
  std::string ca_file;
  /// Limit for one lookup, connecting (TCP, TLS, bind) and failing over included.
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
  /// Connections (and worker threads): how many lookups run at once.
  std::size_t pool_size = 4;
  /// How long a failed server is skipped, and how long a connection to a
  /// non-first server lives before the earlier servers are tried again.
  std::chrono::milliseconds retry_interval = std::chrono::seconds(30);
  /// Allow a password bind (the daemon's or bind_as) over a connection that is
  /// neither TLS nor loopback/ldapi. Off: such a server is refused.
  bool allow_plaintext_bind = false;
  /// The cache in front of the directory (cache_ttl, negative_cache_ttl, cache_size).
  cache_settings cache;
};

/// Reads a `[directory]` table with type = "ldap" into `out`; keys: uris, base_dn,
/// bind_dn, bind_secret_file, starttls, ca_file, timeout, pool_size, retry_interval,
/// allow_plaintext_bind, cache_ttl, negative_cache_ttl, cache_size. Every problem is
/// recorded in the section's document; `out` holds defaults where a key was wrong.
/// URIs and DNs get a syntax check here (ldap_uri_problem, dn_syntax_problem);
/// ldap_directory::create parses them again with libldap before any connection.
void read_ldap_settings(config::section& directory, ldap_settings& out);

/// Why `uri` is not one ldap://, ldaps:// or ldapi:// URI naming one server, or nullopt.
/// `tls` is set for ldaps://, `local` for ldapi:// and loopback hosts.
std::optional<std::string> ldap_uri_problem(const std::string& uri, bool& tls, bool& local);

/// Why `dn` is not an RFC 4514 distinguished name (syntax only: attribute types,
/// '=' and escapes), or nullopt. An empty DN is refused.
std::optional<std::string> dn_syntax_problem(const std::string& dn);

}  // namespace hamail::directory

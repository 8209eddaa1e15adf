#pragma once

// The directory a daemon (hamail-backend, hamail-proxy) looks accounts up in,
// as its [directory] table says: LDAP behind a cache in production, or an
// accounts file (tests, small set-ups); and what SIGHUP does to it.

#include <memory>

#include "hamail/core/result.hpp"
#include "hamail/directory/cached_directory.hpp"
#include "hamail/directory/daemon_settings.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/directory/memory_directory.hpp"

namespace hamail::directory {

/// One daemon's directory. Destroy it before the io_context its LDAP workers
/// resume coroutines on (reset() does it early).
class daemon_directory {
 public:
  /// Opens what `settings` names: loads the accounts file, or creates the LDAP
  /// client (which connects lazily) and its cache. errc::config_error with the
  /// detail when the file or the LDAP settings are wrong.
  static result<std::unique_ptr<daemon_directory>> open(const directory_settings& settings);

  /// Where lookups go (the cache, or the accounts).
  directory& lookups() noexcept { return *dir_; }
  /// The LDAP client itself (uncached), or null for an accounts file.
  ldap_directory* ldap() noexcept { return ldap_.get(); }
  /// The cache in front of LDAP, or null for an accounts file.
  cached_directory* cache() noexcept { return cache_.get(); }
  /// SIGHUP: clears the cache, or re-reads the accounts file (kept as it was
  /// when the file is now invalid). Logs what it did.
  void reload();
  /// Stops the LDAP workers (before the io_context goes).
  void reset() noexcept;

 private:
  explicit daemon_directory(directory_settings settings) : settings_(std::move(settings)) {}
  directory_settings settings_;
  memory_directory accounts_;
  std::unique_ptr<ldap_directory> ldap_;
  std::unique_ptr<cached_directory> cache_;
  directory* dir_ = &accounts_;
};

}  // namespace hamail::directory

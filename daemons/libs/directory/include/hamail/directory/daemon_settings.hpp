#pragma once

// The `[auth]` and `[directory]` tables every daemon that checks logins reads
// (hamail-backend, hamail-proxy): where accounts come from and how failed
// logins are throttled. Lean, like ldap_settings.hpp: no libldap, no Asio.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>

#include "hamail/directory/ldap_settings.hpp"

namespace hamail::config {
class section;
}

namespace hamail::directory {

/// Failed-login throttling (`[auth]`), see login_throttle.
struct auth_settings {
  unsigned max_failures_per_address = 10;  ///< then the address is refused for the window
  std::chrono::milliseconds failure_window = std::chrono::minutes(5);
  std::chrono::milliseconds failure_delay = std::chrono::seconds(1);  ///< first failure's delay
  std::chrono::milliseconds max_failure_delay = std::chrono::seconds(16);  ///< cap of the doubling
  unsigned hash_threads = 2;           ///< password checks computed at once, apart from store I/O
  std::size_t max_queued_hashes = 32;  ///< checks waiting for a thread; more get 454 4.7.0
};

/// Where accounts come from (`[directory]`).
struct directory_settings {
  std::string type = "ldap";            ///< "ldap" (production) or "file" (tests, small set-ups)
  std::filesystem::path accounts_file;  ///< TOML [[account]] list for type "file"
  /// How logins are checked: "password" compares with userPassword here; "bind" binds to
  /// the directory as the account's entry (slapd checks the password and its policy).
  std::string auth = "password";
  ldap_settings ldap;  ///< servers, bind and cache for type "ldap"
};

/// Reads the optional `[auth]` table of `root` into `out`.
void read_auth_settings(config::section& root, auth_settings& out);

/// Reads the required `[directory]` table of `root` into `out` (type "ldap" or "file").
void read_directory_settings(config::section& root, directory_settings& out);

}  // namespace hamail::directory

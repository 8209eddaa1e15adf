#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hamail::directory {

/// Lifecycle of an account as the directory records it.
enum class account_state {
  active,    ///< receives mail, may log in
  locked,    ///< receives mail, may not log in (operator lock, abuse)
  moving,    ///< being moved between stores: mail is deferred (4xx), logins refused temporarily
  disabled,  ///< neither receives mail (5xx) nor logs in
};

/// Parses "active", "locked", "moving", "disabled".
std::optional<account_state> parse_account_state(std::string_view text) noexcept;
/// The directory's spelling of a state.
std::string_view to_string(account_state state) noexcept;

/// A mailbox owner, as the directory knows it.
struct account {
  std::string id;               ///< stable account id (LDAP uid); names its directory in the store
  std::string login;            ///< the name a user logs in with (often the primary address)
  std::string primary_address;  ///< the account's main mail address
  std::vector<std::string> aliases;  ///< further addresses delivered to this account
  std::string owning_store;          ///< name of the store holding the account's mail
  std::string password_hash;         ///< RFC 2307 userPassword form: "{SCHEME}..."
  std::string dn;  ///< the account's directory entry (LDAP only; for bind authentication)
  std::uint64_t quota_bytes = 0;     ///< 0 = the store's default
  std::uint64_t quota_messages = 0;  ///< 0 = the store's default
  account_state state = account_state::active;
};

/// Lower-cases an address for lookup (domains are case-insensitive; local parts are
/// treated so too, as every large provider does). Returns the input when it has no '@'.
std::string normalize_address(std::string_view address);

/// The address with a sub-address ("user+tag@example.org" → "user@example.org") removed,
/// or nullopt when it has none. `delimiters` lists the characters that start a tag.
std::optional<std::string> strip_subaddress(std::string_view address, std::string_view delimiters);

}  // namespace hamail::directory

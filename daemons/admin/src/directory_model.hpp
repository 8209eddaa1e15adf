#pragma once

// Reading stores and accounts out of directory entries; shared by the command files.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hamail/admin/commands.hpp"

namespace hamail::admin::detail {

/// A store entry as read.
struct store_record {
  std::string name;
  std::string host;
  std::string address;
  std::optional<std::uint64_t> smtp_port, lmtp_port, imap_port, pop3_port, sync_port;
  std::uint64_t weight = 0;
  store_state state = store_state::open;
};

/// Attributes read for a store.
const std::vector<std::string>& store_attributes();
/// Attributes read for an account.
const std::vector<std::string>& account_attributes();

/// A store entry's fields (absent state = open, absent weight = 0).
store_record to_store(const ldap_entry& e);
/// Every store under ou=stores, by name.
std::vector<store_record> load_stores(command_context& ctx);
/// The store `name`; throws not_found ("unknown store") when absent, invalid_input
/// when the name is malformed.
store_record require_store(command_context& ctx, const std::string& name);
/// What placement needs of each store: its weight, state and account count from `counts`
/// (lower-cased store name → accounts; absent = 0).
std::vector<store_load> loads_of(const std::vector<store_record>& stores,
                                 const std::map<std::string, std::uint64_t>& counts);
/// Accounts per owning store (lower-cased store name → count).
std::map<std::string, std::uint64_t> count_accounts(command_context& ctx);
/// The account entry `id`; throws not_found when absent, invalid_input when malformed.
ldap_entry require_account(command_context& ctx, const std::string& id);

/// A store as JSON (with `accounts` when given).
json_value store_json(const store_record& s, std::optional<std::uint64_t> accounts);
/// An account entry as JSON.
json_value account_json(const ldap_entry& e);
/// The aliases of an account: mailLocalAddress values other than mail.
std::vector<std::string> aliases_of(const ldap_entry& e);

/// A numeric attribute, nullopt when absent or malformed.
std::optional<std::uint64_t> number_attribute(const ldap_entry& e, std::string_view attribute);

/// Throws invalid_input unless `id` is a valid account id.
void check_account_id(const std::string& id);
/// Throws invalid_input unless `name` is a valid store name.
void check_store_name(const std::string& name);
/// Lower-cased `address`; throws invalid_input when it is not a valid address.
std::string checked_address(const std::string& address);

}  // namespace hamail::admin::detail

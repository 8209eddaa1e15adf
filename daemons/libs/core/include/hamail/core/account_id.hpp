#pragma once

// The one account-id rule of the tree (docs/directory.md "Account ids"): hamail-admin,
// the accounts file, the LDAP directory's users and the store all apply it. The store
// names directories and files after the id, so the rule is chosen to be safe as one
// path component on any POSIX file system and in any shell command line.

#include <cstddef>
#include <optional>
#include <string_view>

namespace hamail {

/// The longest account id, in octets.
inline constexpr std::size_t max_account_id_length = 64;

/// Why `id` is not a valid account id ("is empty", "is longer than 64 characters",
/// ...), or nullopt when it is: 1 to 64 characters of a-z 0-9 . _ - @ +, starting
/// with a-z or 0-9, with no "..". Upper case is not accepted: ids are compared as
/// octets and name files, so a caller lower-cases first if it means to.
std::optional<std::string_view> account_id_problem(std::string_view id) noexcept;

/// True when `id` is a valid account id (account_id_problem gives nullopt).
bool valid_account_id(std::string_view id) noexcept;

}  // namespace hamail

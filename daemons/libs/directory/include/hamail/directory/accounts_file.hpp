#pragma once

#include <filesystem>

#include "hamail/core/result.hpp"
#include "hamail/directory/memory_directory.hpp"

namespace hamail::directory {

/// Loads a TOML accounts file (a list of `[[account]]` tables) into `dir`,
/// replacing nothing on failure: every account is validated first. The error's
/// detail lists every problem as "file:line: key: reason".
///
/// ```toml
/// [[account]]
/// id = "alice"                        # required; names the account's directory
/// address = "alice@example.org"       # required; primary address and login
/// login = "alice"                     # optional other login name
/// aliases = ["a.smith@example.org"]
/// password = "{SSHA512}..."           # RFC 2307 userPassword form
/// store = "store-a"                   # owning store
/// quota_bytes = "1GiB"                # 0 / absent: the store's default
/// quota_messages = 0
/// state = "active"                    # active | locked | moving | disabled
/// ```
result<void> load_accounts_file(const std::filesystem::path& path, memory_directory& dir);

}  // namespace hamail::directory

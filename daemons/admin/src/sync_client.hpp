#pragma once

// hamail-admin's client of a store's sync listener (docs/sync.md): a TLS connection, AUTH with
// the cluster's sync secret, then one command at a time. Blocking, with a deadline per reply
// line, like the rest of the admin tool.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "directory_model.hpp"
#include "hamail/admin/settings.hpp"
#include "hamail/blockio/client_connection.hpp"

namespace hamail::admin::detail {

/// A command's final reply.
struct sync_reply {
  bool ok = false;
  std::string code;  ///< NO's code ("NONEXISTENT", "BUSY"...); empty for OK and BAD
  std::string text;  ///< the rest of the line
  bool bad = false;  ///< BAD: the store did not understand the command
};

class sync_client {
 public:
  /// Connects to the store's sync listener (its service address, hamailSyncPort) and
  /// authenticates. Throws admin_error: refused (the store has no sync port), unreachable
  /// (connect, TLS or AUTH failed), config_error (the secret file).
  sync_client(const store_record& store, const connection_settings& settings,
              std::chrono::milliseconds timeout);
  ~sync_client();
  sync_client(const sync_client&) = delete;
  sync_client& operator=(const sync_client&) = delete;

  /// Sends `line` and reads until the final reply, calling `untagged` with every `* ` line
  /// (without the `* `). Each line must arrive within `idle`. Throws admin_error(unreachable)
  /// when the connection fails.
  sync_reply command(const std::string& line,
                     const std::function<void(std::string_view)>& untagged = {},
                     std::chrono::milliseconds idle = std::chrono::seconds(30));

  /// "store-a (10.0.0.5:4990)", for messages.
  const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
  std::unique_ptr<blockio::client_connection> conn_;
};

/// Parses a final reply line ("OK ...", "NO CODE text", "BAD text"); nullopt-like `ok=false,
/// bad=true` with the whole line as text when it is none of them.
sync_reply parse_sync_reply(std::string_view line);

}  // namespace hamail::admin::detail

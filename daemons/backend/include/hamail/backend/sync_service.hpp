#pragma once

// The store-to-store sync channel of account moves (docs/sync.md, ADR 0005): the listener
// protocol "sync" of hamail-backend.

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/backend/config.hpp"
#include "hamail/backend/fence.hpp"
#include "hamail/core/result.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/net/server.hpp"
#include "hamail/store/maildir_store.hpp"

namespace hamail::backend {

/// What every sync session of one backend shares. Outlives the sessions.
struct sync_context {
  const backend_config& config;
  store::maildir_store& store;
  directory::directory& directory;     ///< who owns an account (PULL, DISCARD)
  boost::asio::thread_pool& blocking;  ///< every file system call of the channel
  /// The account gate's fences; null when the daemon has none (FENCE, UNFENCE and PURGE then
  /// answer NO UNAVAILABLE, DISCARD does not check for a fence).
  fence_control* fences = nullptr;
  std::string secret;  ///< the cluster's sync secret, from [sync] secret_file
  /// PULL's client context: verifies the source against [sync] ca_file.
  std::shared_ptr<boost::asio::ssl::context> client_tls;
};

/// Reads the sync secret: the file's first line without trailing white space, 16 to 1024
/// octets, no control characters. Errors: config_error naming the file.
result<std::string> load_sync_secret(const std::filesystem::path& file);

/// Builds the context from the configuration: loads the secret and PULL's client TLS context.
/// Errors: config_error.
result<std::unique_ptr<sync_context>> make_sync_context(const backend_config& cfg,
                                                        store::maildir_store& store,
                                                        directory::directory& directory,
                                                        boost::asio::thread_pool& blocking,
                                                        fence_control* fences);

/// True when one of the configuration's listeners speaks "sync".
bool has_sync_listener(const backend_config& cfg);

/// The protocol factory for the listener protocol "sync" (implicit TLS only: config.cpp
/// refuses anything else).
net::protocol_factories sync_protocols(sync_context& ctx);

}  // namespace hamail::backend

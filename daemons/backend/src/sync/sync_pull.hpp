#pragma once

// PULL: one pass of an account move on the destination store (docs/sync.md, ADR 0005).
// Connects to the source's sync listener, diffs its LIST against the local copy in
// <data_dir>/incoming/<account>/ (or the installed tree of this move after an earlier FINAL),
// fetches, renames and removes; FINAL also syncs the file system and installs the copy.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "sync/sync_protocol.hpp"

namespace hamail::backend::sync {

/// What a pass needs from the daemon.
struct pull_environment {
  boost::asio::thread_pool& blocking;              ///< every file system call runs here
  std::filesystem::path data_dir;                  ///< this store's data directory
  std::string secret;                              ///< the cluster's sync secret
  std::shared_ptr<boost::asio::ssl::context> tls;  ///< client context trusting [sync] ca_file
  bool check_host = true;                          ///< the certificate must name the host
  bool fsync = true;                               ///< [store] fsync
  std::chrono::milliseconds timeout = std::chrono::seconds(60);  ///< per network operation
};

/// Counters of a pass in progress, read by the PROGRESS ticker (same thread).
struct pull_progress {
  std::uint64_t files = 0;        ///< fetched so far
  std::uint64_t bytes = 0;        ///< fetched so far
  std::uint64_t total_files = 0;  ///< to fetch in this pass (known after the diff)
  std::uint64_t total_bytes = 0;  ///< ditto
};

/// Where a pass reports its progress (the PULL session writes `* PROGRESS`).
class progress_sink {
 public:
  virtual ~progress_sink() = default;
  /// Called by the pass at most every progress_interval, whenever it gets to run (between
  /// replies and chunks of data); a failure to report is the sink's business.
  virtual boost::asio::awaitable<void> report(const pull_progress& progress) = 0;
};

/// How often a pass reports progress.
inline constexpr std::chrono::milliseconds progress_interval{500};

/// How a pass ended: counts for the OK reply, or the NO reply's code and text.
struct pull_result {
  bool ok = false;
  std::uint64_t fetched_files = 0;
  std::uint64_t fetched_bytes = 0;
  std::uint64_t renamed = 0;
  std::uint64_t removed = 0;  ///< files unlinked and directories removed
  std::string code;           ///< NO code when !ok (see docs/sync.md)
  std::string text;           ///< NO text when !ok
};

/// Runs one pass of `cmd` (a PULL command). `rate` is bytes/s of GET payload, 0 for none.
/// `cmd` must outlive the pass. Updates `progress` as it goes and reports it to `sink`
/// (may be null). Never throws for peer or file system
/// trouble.
boost::asio::awaitable<pull_result> run_pull(pull_environment& env, const command& cmd,
                                             std::uint64_t rate, pull_progress& progress,
                                             progress_sink* sink);

}  // namespace hamail::backend::sync

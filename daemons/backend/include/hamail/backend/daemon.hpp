#pragma once

#include <string>

#include "hamail/backend/config.hpp"

namespace hamail::backend {

/// hamail-backend's exit codes (sysexits.h values, so init systems and the OCF
/// agent can tell them apart).
enum exit_code : int {
  exit_ok = 0,
  exit_usage = 64,  ///< bad command line
  exit_unavailable =
      69,              ///< a listener could not be bound (address in use, address not on this node)
  exit_software = 70,  ///< internal error
  exit_os = 71,        ///< runtime directory, pid file or store could not be written
  exit_temp = 75,      ///< the store is held by another running instance
  exit_config = 78,    ///< configuration or accounts file invalid
};

/// Runs the daemon until SIGTERM/SIGINT has drained it. Returns an exit_code.
int run_daemon(const backend_config& cfg);

/// Rebuilds the indexes of `account` (every account when empty) from the message
/// files, printing what was done. Returns an exit_code.
int rebuild_indexes(const backend_config& cfg, const std::string& account);

/// Checks `account`'s indexes against the files without changing anything,
/// printing each discrepancy. Returns exit_ok when they agree, 1 otherwise.
int verify_indexes(const backend_config& cfg, const std::string& account);

}  // namespace hamail::backend

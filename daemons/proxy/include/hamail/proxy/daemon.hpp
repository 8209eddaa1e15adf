#pragma once

#include "hamail/proxy/config.hpp"

namespace hamail::proxy {

/// hamail-proxy's exit codes (sysexits.h values, as hamail-backend's).
enum exit_code : int {
  exit_ok = 0,
  exit_usage = 64,        ///< bad command line
  exit_unavailable = 69,  ///< a listener could not be bound
  exit_software = 70,     ///< internal error
  exit_os = 71,           ///< runtime directory or pid file could not be written
  exit_config = 78,       ///< configuration or accounts file invalid
};

/// Runs the proxy until SIGTERM/SIGINT has drained it. Returns an exit_code.
int run_daemon(const proxy_config& cfg);

}  // namespace hamail::proxy

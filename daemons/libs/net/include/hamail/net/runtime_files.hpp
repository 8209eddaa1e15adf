#pragma once

// The files a running daemon leaves in its runtime directory for operators,
// resource agents and tests: which listeners are bound where, and its pid.

#include <filesystem>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/core/server_settings.hpp"
#include "hamail/net/server.hpp"

namespace hamail::net {

/// Writes `<runtime_dir>/listeners` (one line per bound listener: "name
/// protocol address port", ports chosen by the kernel filled in) and
/// `pid_file` (this process's pid), each atomically (temporary file, fsync,
/// rename). Returns the listeners file's path, or an io_error naming the file.
result<std::filesystem::path> write_runtime_files(const server& srv,
                                                  const std::vector<listener_settings>& listeners,
                                                  const std::filesystem::path& runtime_dir,
                                                  const std::filesystem::path& pid_file);

}  // namespace hamail::net

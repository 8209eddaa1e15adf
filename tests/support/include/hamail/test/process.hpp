#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace hamail::test {

/// What a finished command left behind: its exit status and what it printed.
struct command_result {
  int exit_code = -1;      ///< exit status, or 128 + signal number when killed by a signal
  bool timed_out = false;  ///< true when run_command killed it at the deadline
  std::string out;         ///< everything written to stdout
  std::string err;         ///< everything written to stderr
};

/// Runs argv[0] (an absolute path or a name looked up in PATH) with stdin from
/// /dev/null, in its own process group, and collects its output. Never uses a
/// shell. At `timeout` the process group is sent SIGKILL and `timed_out` set.
/// Throws std::runtime_error when the program cannot be started.
command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds{60});

/// How spawn_background() wires up a long-running child.
struct spawn_options {
  /// File that receives stdout and stderr (appended, created 0600 if absent).
  std::filesystem::path log_file;
  /// Have the kernel send SIGTERM to the child when the thread that spawned it
  /// exits (PR_SET_PDEATHSIG), so a crashed test leaves no server behind. Spawn
  /// from a thread that outlives the child (a test's own thread does).
  bool die_with_parent = true;
};

/// Starts argv in its own process group (pgid == pid) with stdin from /dev/null
/// and returns its pid; the caller must reap it with waitpid. Throws
/// std::runtime_error when the program cannot be executed.
pid_t spawn_background(const std::vector<std::string>& argv, const spawn_options& opts);

/// Sends SIGTERM to `pid`, waits up to `grace` for it to exit, then SIGKILLs and
/// reaps it. Returns the wait status, or -1 when `pid` is not (or no longer) an
/// unreaped child of this process. Never signals anything but `pid`.
int terminate_child(pid_t pid, std::chrono::milliseconds grace = std::chrono::seconds{5});

}  // namespace hamail::test

#pragma once

// Processes as an agent sees them: pid files, the identity of a pid (which program,
// which configuration), spawning a daemon fully detached, and stopping it with
// escalation. Everything goes by pid and /proc, never by process name.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace hamail::ocf {

/// The pid in a pid file: nullopt when the file is missing, empty or not a positive number.
std::optional<pid_t> read_pid_file(const std::filesystem::path& file);

/// True when `pid` exists and is not a zombie.
bool process_alive(pid_t pid);

/// The program a pid runs (/proc/<pid>/exe, without a " (deleted)" suffix after an upgrade).
std::optional<std::filesystem::path> process_exe(pid_t pid);

/// The argument vector of a pid (/proc/<pid>/cmdline).
std::vector<std::string> process_cmdline(pid_t pid);

/// Which instance of a daemon: its program and the configuration file it was given.
struct daemon_identity {
  std::filesystem::path program;  ///< the binary (compared after resolving symlinks)
  std::filesystem::path config;   ///< the value of --config
};

/// True when `pid` is alive, runs `id.program` and was started with `--config id.config`.
bool is_instance(pid_t pid, const daemon_identity& id);

/// Every live process that is an instance of `id` (a scan of /proc).
std::vector<pid_t> find_instances(const daemon_identity& id);

/// How to start a daemon.
struct spawn_options {
  std::vector<std::string> argv;  ///< argv[0] is the program path
  std::filesystem::path output;   ///< stdout and stderr go here (truncated); empty: /dev/null
  std::optional<uid_t> uid;       ///< run as this user (with its groups) ...
  std::optional<gid_t> gid;
  std::string user_name;              ///< ... for initgroups()
  bool keep_net_bind_service = true;  ///< with uid: keep CAP_NET_BIND_SERVICE (ambient)
};

/// Starts a daemon detached from the caller: its own session and process group (setsid),
/// stdin from /dev/null, signals and mask reset, no inherited descriptors, cwd "/".
/// The caller is its parent (it may reap it with exit_status()). Fails if exec fails.
struct spawn_result {
  pid_t pid = -1;
  std::string error;  ///< empty on success
};
spawn_result spawn_detached(const spawn_options& opts);

/// For a child of this process: its exit status (or 128+signal) once it has ended,
/// nullopt while it runs (or when it is not our child).
std::optional<int> exit_status(pid_t child);

/// Sends `sig`; true when delivered (or the process is already gone).
bool send_signal(pid_t pid, int sig);

/// Waits until none of `pids` is alive or the deadline passes (reaping our children).
/// Returns the ones still alive.
std::vector<pid_t> wait_gone(const std::vector<pid_t>& pids,
                             std::chrono::steady_clock::time_point deadline);

/// A TCP socket in LISTEN state.
struct listen_socket {
  std::string address;  ///< numeric IPv4 or IPv6 ("0.0.0.0", "::" for wildcards)
  std::uint16_t port = 0;
};

/// The TCP sockets `pid` listens on, from /proc/<pid>/net/tcp{,6} and its descriptors.
std::vector<listen_socket> listening_sockets(pid_t pid);

/// The pids (system-wide, in this network namespace) that own a LISTEN socket on
/// address:port, including wildcard listeners that cover `address`.
std::vector<pid_t> listeners_of(const std::string& address, std::uint16_t port);

/// True when `s` accepts connections for `address` (same address, or a wildcard of its family).
bool covers(const listen_socket& s, const std::string& address);

/// Whether `dir` is the root of a mounted filesystem (compares with its parent's device,
/// and /proc/self/mountinfo).
bool is_mount_point(const std::filesystem::path& dir);

/// The line of a daemon's captured output that best says why it stopped: of its
/// last four non-empty lines, the last naming "critical" or "error", else the
/// last one; at most 300 characters. Empty when the file is empty or missing.
std::string output_tail(const std::filesystem::path& file);

/// Creates `dir` (and its parents) and, when `uid` is set, gives it to uid:gid.
bool make_owned_dir(const std::filesystem::path& dir, std::optional<uid_t> uid,
                    std::optional<gid_t> gid);

}  // namespace hamail::ocf

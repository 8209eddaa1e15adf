#include "hamail/test/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace hamail::test {
namespace {

using clock = std::chrono::steady_clock;

/// Closes a file descriptor on scope exit.
class unique_fd {
 public:
  explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::runtime_error sys_error(const std::string& what, int err) {
  return std::runtime_error(what + ": " + std::strerror(err));
}

/// Resolves a program name through PATH in the parent, so that the child only
/// has to call execve (async-signal-safe) between fork and exec.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  std::size_t begin = 0;
  while (begin <= dirs.size()) {
    std::size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(begin, end - begin);
    if (dir.empty()) dir = ".";
    std::string candidate = dir;
    candidate += '/';
    candidate += name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  throw std::runtime_error("program not found in PATH: " + name);
}

/// fork + execve with stdin/stdout/stderr replaced. The child gets its own
/// process group, default SIGPIPE handling (test runners ignore it, and an
/// ignored disposition survives exec) and an empty signal mask.
pid_t fork_exec(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd,
                bool die_with_parent) {
  if (argv.empty()) throw std::runtime_error("fork_exec: empty argv");
  const std::string program = resolve_program(argv.front());
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  std::array<int, 2> exec_error{};
  if (::pipe2(exec_error.data(), O_CLOEXEC) != 0) throw sys_error("pipe2", errno);
  unique_fd error_read(exec_error[0]);
  unique_fd error_write(exec_error[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw sys_error("fork", errno);
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to execve.
    ::setpgid(0, 0);
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
    }
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) {
      const int e = errno;
      [[maybe_unused]] auto n = ::write(exec_error[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execve(program.c_str(), args.data(), environ);
    const int e = errno;
    [[maybe_unused]] auto n = ::write(exec_error[1], &e, sizeof e);
    ::_exit(127);
  }

  // Parent. Setting the group here too closes the race with a caller that
  // signals the group before the child ran setpgid; EACCES after exec is fine.
  ::setpgid(pid, pid);
  error_write.reset();
  int child_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(error_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw sys_error("cannot execute " + program, child_errno);
  }
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) {
  unique_fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.get() < 0) throw sys_error("open /dev/null", errno);
  std::array<int, 2> out_pipe{};
  std::array<int, 2> err_pipe{};
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) throw sys_error("pipe2", errno);
  unique_fd out_read(out_pipe[0]);
  unique_fd out_write(out_pipe[1]);
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) throw sys_error("pipe2", errno);
  unique_fd err_read(err_pipe[0]);
  unique_fd err_write(err_pipe[1]);

  const pid_t pid = fork_exec(argv, null_in.get(), out_write.get(), err_write.get(), true);
  out_write.reset();
  err_write.reset();

  command_result result;
  const auto deadline = clock::now() + timeout;
  std::array<char, 4096> buf{};
  bool out_open = true;
  bool err_open = true;
  while ((out_open || err_open) && !result.timed_out) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      result.timed_out = true;
      break;
    }
    std::array<pollfd, 2> fds{
        {{out_open ? out_read.get() : -1, POLLIN, 0}, {err_open ? err_read.get() : -1, POLLIN, 0}}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      (i == 0 ? result.out : result.err).append(buf.data(), static_cast<std::size_t>(got));
    }
  }

  // The pipes are closed (or the deadline passed): reap the child, killing its
  // whole group if it is still running at the deadline. The group id cannot be
  // reused before the leader is reaped, so the kill cannot hit a stranger.
  int status = 0;
  bool reaped = false;
  while (!reaped && !result.timed_out) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      reaped = true;
    } else if (r < 0 && errno != EINTR) {
      throw sys_error("waitpid", errno);
    } else if (clock::now() >= deadline) {
      result.timed_out = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
  }
  if (!reaped) {
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  result.exit_code = decode_status(status);
  return result;
}

pid_t spawn_background(const std::vector<std::string>& argv, const spawn_options& opts) {
  unique_fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.get() < 0) throw sys_error("open /dev/null", errno);
  unique_fd log(::open(opts.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (log.get() < 0) throw sys_error("open " + opts.log_file.string(), errno);
  return fork_exec(argv, null_in.get(), log.get(), log.get(), opts.die_with_parent);
}

int terminate_child(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return -1;
  int status = 0;
  // Only an unreaped child of ours is signalled: a pid that was reaped already
  // may belong to a stranger by now.
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;  // it had exited on its own
    if (r == 0) break;
    if (errno != EINTR) return -1;  // ECHILD: not our child
  }
  ::kill(pid, SIGTERM);
  const auto deadline = clock::now() + grace;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;  // not our child (ECHILD)
    if (clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

}  // namespace hamail::test

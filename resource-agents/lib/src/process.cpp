#include "hamail/ocf/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace hamail::ocf {

namespace fs = std::filesystem;

namespace {

std::string read_small_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<long long> parse_number(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.empty() || text.size() > 18) return std::nullopt;
  long long v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

fs::path proc(pid_t pid) { return fs::path("/proc") / std::to_string(pid); }

}  // namespace

std::optional<pid_t> read_pid_file(const fs::path& file) {
  const auto n = parse_number(read_small_file(file));
  if (!n || *n <= 0 || *n > 0x3fffffff) return std::nullopt;
  return static_cast<pid_t>(*n);
}

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  const std::string stat = read_small_file(proc(pid) / "stat");
  if (stat.empty()) return false;
  // "pid (comm) S ...": the state follows the last ')' (comm may contain ')').
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

std::optional<fs::path> process_exe(pid_t pid) {
  std::error_code ec;
  auto target = fs::read_symlink(proc(pid) / "exe", ec);
  if (ec) return std::nullopt;
  std::string s = target.string();
  constexpr std::string_view deleted = " (deleted)";
  if (s.size() > deleted.size() && s.ends_with(deleted)) s.resize(s.size() - deleted.size());
  return fs::path(s);
}

std::vector<std::string> process_cmdline(pid_t pid) {
  const std::string raw = read_small_file(proc(pid) / "cmdline");
  std::vector<std::string> args;
  std::size_t start = 0;
  while (start < raw.size()) {
    const auto end = raw.find('\0', start);
    if (end == std::string::npos) {
      args.push_back(raw.substr(start));
      break;
    }
    args.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

namespace {

fs::path resolved(const fs::path& p) {
  std::error_code ec;
  auto r = fs::weakly_canonical(p, ec);
  return ec ? p.lexically_normal() : r;
}

std::optional<std::string> config_argument(const std::vector<std::string>& args) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) return args[i + 1];
    if (args[i].starts_with("--config=")) return args[i].substr(9);
  }
  return std::nullopt;
}

}  // namespace

bool is_instance(pid_t pid, const daemon_identity& id) {
  if (!process_alive(pid)) return false;
  const auto exe = process_exe(pid);
  if (!exe || *exe != resolved(id.program)) return false;
  const auto config = config_argument(process_cmdline(pid));
  return config && resolved(*config) == resolved(id.config);
}

std::vector<pid_t> find_instances(const daemon_identity& id) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const auto n = parse_number(entry.path().filename().string());
    if (!n) continue;
    const auto pid = static_cast<pid_t>(*n);
    if (pid != ::getpid() && is_instance(pid, id)) found.push_back(pid);
  }
  return found;
}

namespace {

// Raises CAP_NET_BIND_SERVICE as an ambient capability after setuid(), so a daemon running
// as its own user can still bind ports below 1024. Async-signal-safe calls only.
bool keep_bind_capability() {
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  const unsigned bit = 1u << CAP_NET_BIND_SERVICE;
  data[0].effective = bit;
  data[0].permitted = bit;
  data[0].inheritable = bit;
  if (::syscall(SYS_capset, &hdr, data) != 0) return false;
  return ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == 0;
}

[[noreturn]] void child_fail(int fd, const char* stage) {
  const int err = errno;
  char buf[160];
  const int n = std::snprintf(buf, sizeof buf, "%s: %s", stage, std::strerror(err));
  if (n > 0) {
    [[maybe_unused]] auto w = ::write(fd, buf, static_cast<std::size_t>(n));
  }
  ::_exit(127);
}

}  // namespace

spawn_result spawn_detached(const spawn_options& opts) {
  spawn_result r;
  if (opts.argv.empty()) {
    r.error = "no program given";
    return r;
  }
  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string output = opts.output.empty() ? "/dev/null" : opts.output.string();

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    ::close(report[0]);
    ::close(report[1]);
    return r;
  }
  if (pid == 0) {
    ::close(report[0]);
    if (::setsid() < 0) child_fail(report[1], "setsid");
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, STDIN_FILENO) < 0) child_fail(report[1], "/dev/null");
    const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0640);
    if (out < 0) child_fail(report[1], output.c_str());
    if (opts.uid && ::fchown(out, *opts.uid, opts.gid.value_or(static_cast<gid_t>(-1))) != 0) {
      child_fail(report[1], "chown output");
    }
    if (::dup2(out, STDOUT_FILENO) < 0 || ::dup2(out, STDERR_FILENO) < 0) {
      child_fail(report[1], "dup2");
    }
    // Nothing else the agent (or Pacemaker's executor) holds open reaches the daemon.
    ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    if (::chdir("/") != 0) child_fail(report[1], "chdir /");
    if (opts.gid) {
      if (!opts.user_name.empty() && ::initgroups(opts.user_name.c_str(), *opts.gid) != 0) {
        child_fail(report[1], "initgroups");
      }
      if (::setgid(*opts.gid) != 0) child_fail(report[1], "setgid");
    }
    if (opts.uid) {
      const bool keep = opts.keep_net_bind_service && ::geteuid() == 0 && *opts.uid != 0;
      if (keep && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) child_fail(report[1], "keepcaps");
      if (::setuid(*opts.uid) != 0) child_fail(report[1], "setuid");
      if (keep && !keep_bind_capability()) child_fail(report[1], "CAP_NET_BIND_SERVICE");
    }
    ::execv(argv[0], argv.data());
    child_fail(report[1], "exec");
  }
  ::close(report[1]);
  char buf[256];
  ssize_t n;
  do {
    n = ::read(report[0], buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n > 0) {
    r.error.assign(buf, static_cast<std::size_t>(n));
    int status = 0;
    ::waitpid(pid, &status, 0);
    return r;
  }
  r.pid = pid;
  return r;
}

std::optional<int> exit_status(pid_t child) {
  int status = 0;
  const pid_t w = ::waitpid(child, &status, WNOHANG);
  if (w != child) return std::nullopt;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return std::nullopt;
}

bool send_signal(pid_t pid, int sig) {
  if (pid <= 0) return false;
  return ::kill(pid, sig) == 0 || errno == ESRCH;
}

std::vector<pid_t> wait_gone(const std::vector<pid_t>& pids,
                             std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    std::vector<pid_t> alive;
    for (const pid_t p : pids) {
      int status = 0;
      ::waitpid(p, &status, WNOHANG);  // reaps it if it is our child; harmless otherwise
      if (process_alive(p)) alive.push_back(p);
    }
    if (alive.empty() || std::chrono::steady_clock::now() >= deadline) return alive;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

namespace {

std::string normalize_address(const std::string& a) {
  in_addr v4{};
  in6_addr v6{};
  char buf[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET, a.c_str(), &v4) == 1) {
    return ::inet_ntop(AF_INET, &v4, buf, sizeof buf) ? buf : a;
  }
  if (::inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      std::memcpy(&v4, &v6.s6_addr[12], 4);
      return ::inet_ntop(AF_INET, &v4, buf, sizeof buf) ? buf : a;
    }
    return ::inet_ntop(AF_INET6, &v6, buf, sizeof buf) ? buf : a;
  }
  return a;
}

struct tcp_entry {
  listen_socket socket;
  unsigned long long inode = 0;
};

// /proc/net/tcp prints each 32-bit word of the address as the host-order integer of
// its network-order bytes; storing the parsed word back restores the bytes.
std::vector<tcp_entry> read_listen_table(const fs::path& table, bool v6) {
  std::vector<tcp_entry> out;
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string sl, local, remote, state, queues, timer, retr, uid, timeout;
    unsigned long long inode = 0;
    if (!(s >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
          inode)) {
      continue;
    }
    if (state != "0A") continue;  // TCP_LISTEN
    const auto colon = local.find(':');
    if (colon == std::string::npos) continue;
    const std::string addr_hex = local.substr(0, colon);
    const auto port = std::strtoul(local.c_str() + colon + 1, nullptr, 16);
    char buf[INET6_ADDRSTRLEN];
    std::string addr;
    if (!v6 && addr_hex.size() == 8) {
      in_addr a{};
      a.s_addr = static_cast<in_addr_t>(std::strtoul(addr_hex.c_str(), nullptr, 16));
      if (::inet_ntop(AF_INET, &a, buf, sizeof buf)) addr = buf;
    } else if (v6 && addr_hex.size() == 32) {
      in6_addr a{};
      for (int w = 0; w < 4; ++w) {
        const auto word = static_cast<std::uint32_t>(
            std::strtoul(addr_hex.substr(static_cast<std::size_t>(w) * 8, 8).c_str(), nullptr, 16));
        std::memcpy(&a.s6_addr[w * 4], &word, 4);
      }
      if (::inet_ntop(AF_INET6, &a, buf, sizeof buf)) addr = normalize_address(buf);
    }
    if (addr.empty()) continue;
    out.push_back({{addr, static_cast<std::uint16_t>(port)}, inode});
  }
  return out;
}

std::set<unsigned long long> socket_inodes(pid_t pid) {
  std::set<unsigned long long> inodes;
  std::error_code ec;
  for (const auto& fd : fs::directory_iterator(proc(pid) / "fd", ec)) {
    std::error_code lec;
    const std::string target = fs::read_symlink(fd.path(), lec).string();
    if (lec || !target.starts_with("socket:[")) continue;
    inodes.insert(std::strtoull(target.c_str() + 8, nullptr, 10));
  }
  return inodes;
}

}  // namespace

std::vector<listen_socket> listening_sockets(pid_t pid) {
  const auto inodes = socket_inodes(pid);
  std::vector<listen_socket> out;
  for (const bool v6 : {false, true}) {
    for (auto& e : read_listen_table(proc(pid) / "net" / (v6 ? "tcp6" : "tcp"), v6)) {
      if (inodes.count(e.inode) != 0) out.push_back(e.socket);
    }
  }
  return out;
}

bool covers(const listen_socket& s, const std::string& address) {
  const std::string a = normalize_address(address);
  if (s.address == a) return true;
  const bool a_is_v4 = a.find(':') == std::string::npos;
  if (s.address == "0.0.0.0") return a_is_v4;
  return s.address == "::";  // a dual-stack wildcard also takes IPv4
}

std::vector<pid_t> listeners_of(const std::string& address, std::uint16_t port) {
  std::set<unsigned long long> wanted;
  for (const bool v6 : {false, true}) {
    for (const auto& e : read_listen_table(v6 ? "/proc/net/tcp6" : "/proc/net/tcp", v6)) {
      if (e.socket.port == port && covers(e.socket, address)) wanted.insert(e.inode);
    }
  }
  std::vector<pid_t> pids;
  if (wanted.empty()) return pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const auto n = parse_number(entry.path().filename().string());
    if (!n) continue;
    for (const auto inode : socket_inodes(static_cast<pid_t>(*n))) {
      if (wanted.count(inode) != 0) {
        pids.push_back(static_cast<pid_t>(*n));
        break;
      }
    }
  }
  return pids;
}

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 && oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::strtol(oct.c_str(), nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

bool is_mount_point(const fs::path& dir) {
  std::error_code ec;
  const auto canonical = fs::canonical(dir, ec);
  if (ec) return false;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string id, parent, devno, root, mount_point;
    if (!(s >> id >> parent >> devno >> root >> mount_point)) continue;
    if (fs::path(unescape_mountinfo(mount_point)) == canonical) return true;
  }
  struct stat self {};
  struct stat up {};
  if (::stat(canonical.c_str(), &self) != 0 || ::stat((canonical / "..").c_str(), &up) != 0) {
    return false;
  }
  return self.st_dev != up.st_dev;
}

std::string output_tail(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
    if (lines.size() > 4) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) {
    if (l.find("critical") != std::string::npos || l.find("error") != std::string::npos) out = l;
  }
  if (out.empty() && !lines.empty()) out = lines.back();
  if (out.size() > 300) out = out.substr(0, 300) + "...";
  return out;
}

bool make_owned_dir(const fs::path& dir, std::optional<uid_t> uid, std::optional<gid_t> gid) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return false;
  if (uid && ::chown(dir.c_str(), *uid, gid.value_or(static_cast<gid_t>(-1))) != 0) return false;
  return true;
}

}  // namespace hamail::ocf

#include "backend_agent.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "hamail/backend/config.hpp"
#include "hamail/core/log.hpp"
#include "hamail/directory/store_record.hpp"
#include "hamail/ocf/probe.hpp"
#include "hamail/ocf/process.hpp"

namespace hamail::ocf::backend_agent {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const agent_spec& spec() {
  static const agent_spec s = [] {
    agent_spec a;
    a.name = "backend";
    a.agent_version = HAMAIL_VERSION;
    a.shortdesc = "hamail store daemon (hamail-backend)";
    a.longdesc =
        "Runs one hamail-backend instance: the mail daemon of one store (its Maildir++ volume, "
        "its floating service address and its SMTP, submission and LMTP listeners). Group it "
        "after the store's Filesystem and IPaddr2 resources, colocated with the promoted DRBD "
        "volume. Several stores run on one node as separate resources with their own config, "
        "data directory, service address and pid file.";
    a.parameters = {
        {"store", param_type::string, "", true, true, "Store name",
         "The store's name (a-z, 0-9, '-', '_'), as the directory records it. It must equal "
         "[store] name in the configuration file."},
        {"config", param_type::string, "/etc/hamail/backend.toml", false, true,
         "Configuration file", "Absolute path of the store's hamail-backend configuration (TOML)."},
        {"binary", param_type::string, "/usr/sbin/hamail-backend", false, false, "Daemon binary",
         "Absolute path of the hamail-backend program."},
        {"data_dir", param_type::string, "", false, true, "Data directory",
         "The store's data directory (its DRBD-backed volume). When set it must equal [store] "
         "data_dir in the configuration; when empty the configuration's value is used."},
        {"require_mount", param_type::boolean, "true", false, false,
         "Data directory must be a mount point",
         "Refuse to start unless the data directory is the root of a mounted filesystem, so "
         "mail is never written to the empty directory under an unmounted volume."},
        {"service_address", param_type::string, "", false, true, "Service address (floating IP)",
         "The store's floating IP. The configuration must have a listener on it (or on a "
         "wildcard); monitor checks that the daemon listens there and probes it there."},
        {"pid_file", param_type::string, "", false, true, "Pid file",
         "Absolute path of the daemon's pid file; it must equal [store] pid_file in the "
         "configuration. Empty: /run/hamail/STORE/hamail-backend.pid (the daemon's default)."},
        {"user", param_type::string, "", false, false, "Run as user",
         "Run the daemon as this user (with its groups, keeping only the capability to bind "
         "ports below 1024). Empty: the agent's own user (root)."},
        {"probe_account", param_type::string, "", false, false, "Probe account",
         "Account used by the depth-20 monitor to authenticate (AUTH PLAIN on the submission "
         "listener, always over TLS: after STARTTLS, or on an implicit-TLS listener; a "
         "listener that does not offer STARTTLS fails the check and the password is never "
         "sent in the clear). Empty: depth 20 checks as depth 10."},
        {"probe_secret_file", param_type::string, "", false, false, "Probe account secret file",
         "File whose first line is the probe account's password (keep it mode 0600)."},
        {"probe_ca_file", param_type::string, "", false, false, "Probe CA file",
         "PEM file of the CA certificates that may sign the daemon's TLS certificate; the "
         "probes verify it whenever they use TLS. Empty: the system's default trust store."},
        {"probe_timeout", param_type::integer, "5", false, false, "Probe timeout (seconds)",
         "How long the depth-10 and depth-20 probes wait for the daemon (connect, greeting, "
         "each reply) before declaring it failed: a daemon that accepts connections but does "
         "not answer (hung, stopped) is failed after this, not after the whole monitor "
         "timeout. 0: the monitor's timeout."},
        {"probe_tls_name", param_type::string, "", false, false, "Probe certificate name",
         "The name the daemon's certificate must carry (a DNS name, or an address). Empty: "
         "the address probed (the service address), matched against the certificate's IP "
         "subject alternative names."},
    };
    a.actions = {
        {"start", 120s, std::nullopt, std::nullopt},
        {"stop", 90s, std::nullopt, std::nullopt},
        {"monitor", 20s, 10s, 0},
        {"monitor", 30s, 30s, 10},
        {"monitor", 60s, 300s, 20},
        {"reload", 20s, std::nullopt, std::nullopt},
        {"validate-all", 20s, std::nullopt, std::nullopt},
        {"meta-data", 5s, std::nullopt, std::nullopt},
        {"usage", 5s, std::nullopt, std::nullopt},
    };
    return a;
  }();
  return s;
}

namespace {

struct settings {
  std::string store;
  fs::path config;
  fs::path binary;
  fs::path data_dir;  // may be empty: from the configuration
  bool require_mount = true;
  std::string service_address;
  fs::path pid_file;
  std::string user;
  std::string probe_account;
  fs::path probe_secret_file;
  fs::path probe_ca_file;
  std::string probe_tls_name;
  long long probe_timeout = 5;  // seconds; 0: the monitor's timeout
  bool binary_missing = false;  // ocf-tester's OCF_TESTER_FAIL_HAVE_BINARY

  daemon_identity identity() const { return {binary, config}; }
};

settings read_settings(const context& ctx) {
  const auto& p = ctx.params;
  settings s;
  s.store = p.str("store");
  s.config = p.str("config");
  s.binary = p.str("binary");
  s.data_dir = p.str("data_dir");
  s.require_mount = p.boolean("require_mount");
  s.service_address = p.str("service_address");
  s.pid_file = p.str("pid_file");
  if (s.pid_file.empty()) s.pid_file = fs::path("/run/hamail") / s.store / "hamail-backend.pid";
  s.user = p.str("user");
  s.probe_account = p.str("probe_account");
  s.probe_secret_file = p.str("probe_secret_file");
  s.probe_ca_file = p.str("probe_ca_file");
  s.probe_tls_name = p.str("probe_tls_name");
  s.probe_timeout = p.integer("probe_timeout");
  const auto forced = ctx.env.get("OCF_TESTER_FAIL_HAVE_BINARY");
  s.binary_missing = (forced && *forced == "1") || ::access(s.binary.c_str(), X_OK) != 0;
  return s;
}

std::string describe(pid_t pid) {
  const auto exe = process_exe(pid);
  return "pid " + std::to_string(pid) + (exe ? " (" + exe->string() + ")" : "");
}

// ---------------------------------------------------------------- validation

// Checks that need nothing of the node: the parameters themselves (err_configured).
std::optional<outcome> check_parameters(const settings& s) {
  if (!directory::valid_store_name(s.store)) {
    return fail(rc::err_configured, "store '" + s.store +
                                        "' is not a valid store name (1 to 63 of a-z 0-9 - _, "
                                        "starting with a letter or digit)");
  }
  for (const auto* p : {&s.config, &s.binary, &s.pid_file}) {
    if (!p->is_absolute()) {
      return fail(rc::err_configured, "'" + p->string() + "' is not an absolute path");
    }
  }
  if (!s.data_dir.empty() && !s.data_dir.is_absolute()) {
    return fail(rc::err_configured, "data_dir '" + s.data_dir.string() + "' is not absolute");
  }
  if (!s.probe_ca_file.empty() && !s.probe_ca_file.is_absolute()) {
    return fail(rc::err_configured,
                "probe_ca_file '" + s.probe_ca_file.string() + "' is not an absolute path");
  }
  if (s.probe_timeout < 0 || s.probe_timeout > 3600) {
    return fail(rc::err_configured, "probe_timeout must be 0 to 3600 seconds");
  }
  if (!s.probe_account.empty() && s.probe_secret_file.empty()) {
    return fail(rc::err_configured, "probe_account is set but probe_secret_file is not");
  }
  return std::nullopt;
}

struct validated {
  hamail::backend::backend_config cfg;
  fs::path data_dir;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

bool is_wildcard(const std::string& a) { return a == "0.0.0.0" || a == "::" || a.empty(); }

// Everything start needs: parameters, software, configuration, the node's files.
std::variant<validated, outcome> validate(const settings& s) {
  if (auto bad = check_parameters(s)) return *bad;
  if (s.binary_missing) {
    return fail(rc::err_installed, s.binary.string() + " is not installed (or not executable)");
  }
  std::error_code ec;
  if (!fs::exists(s.config, ec)) {
    return fail(rc::err_installed, "configuration file " + s.config.string() + " does not exist");
  }
  if (::access(s.config.c_str(), R_OK) != 0) {
    return fail(rc::err_perm, "configuration file " + s.config.string() + " is not readable");
  }
  auto loaded = hamail::backend::load_backend_config(s.config);
  if (!loaded) {
    std::string detail = loaded.err().detail;
    const auto nl = detail.find('\n');
    const std::size_t more =
        static_cast<std::size_t>(std::count(detail.begin(), detail.end(), '\n'));
    if (nl != std::string::npos) {
      detail = detail.substr(0, nl) + " (and " + std::to_string(more) + " more)";
    }
    return fail(rc::err_configured, "invalid configuration: " + detail);
  }
  validated v;
  v.cfg = std::move(*loaded);
  const auto& store = v.cfg.store;
  if (store.name != s.store) {
    return fail(rc::err_configured,
                s.config.string() + " is for store '" + store.name + "', not '" + s.store + "'");
  }
  if (store.pid_file.lexically_normal() != s.pid_file.lexically_normal()) {
    return fail(rc::err_configured, "pid_file " + s.pid_file.string() +
                                        " differs from the configuration's " +
                                        store.pid_file.string());
  }
  if (!s.data_dir.empty() && s.data_dir.lexically_normal() != store.data_dir.lexically_normal()) {
    return fail(rc::err_configured, "data_dir " + s.data_dir.string() +
                                        " differs from the configuration's " +
                                        store.data_dir.string());
  }
  v.data_dir = store.data_dir;
  bool on_service_address = s.service_address.empty();
  bool has_auth_listener = false;
  for (const auto& l : v.cfg.server.listeners) {
    if (!s.service_address.empty() &&
        (is_wildcard(l.address) || covers(listen_socket{l.address, l.port}, s.service_address))) {
      on_service_address = true;
    }
    if (l.protocol == "submission" || l.protocol == "smtp") has_auth_listener = true;
  }
  if (!on_service_address) {
    return fail(rc::err_configured,
                "no listener in " + s.config.string() + " is on " + s.service_address);
  }
  if (!s.probe_account.empty() && !has_auth_listener) {
    return fail(rc::err_configured, "probe_account needs a submission or smtp listener");
  }
  if (!s.user.empty()) {
    const passwd* pw = ::getpwnam(s.user.c_str());
    if (pw == nullptr) return fail(rc::err_installed, "user '" + s.user + "' does not exist here");
    v.uid = pw->pw_uid;
    v.gid = pw->pw_gid;
  }
  if (!s.probe_secret_file.empty() && ::access(s.probe_secret_file.c_str(), R_OK) != 0) {
    return fail(rc::err_installed,
                "probe_secret_file " + s.probe_secret_file.string() + " is not readable");
  }
  if (!s.probe_ca_file.empty() && ::access(s.probe_ca_file.c_str(), R_OK) != 0) {
    return fail(rc::err_installed,
                "probe_ca_file " + s.probe_ca_file.string() + " is not readable");
  }
  if (!fs::is_directory(v.data_dir, ec)) {
    return fail(rc::err_installed,
                "data directory " + v.data_dir.string() + " does not exist on this node");
  }
  if (s.require_mount && !is_mount_point(v.data_dir)) {
    return fail(rc::err_installed, "data directory " + v.data_dir.string() +
                                       " is not a mounted filesystem (require_mount=true): "
                                       "the store's volume is not mounted here");
  }
  return v;
}

// ---------------------------------------------------------------- state

enum class state { stopped, running, crashed, stale_foreign, orphan };

struct status {
  state st = state::stopped;
  pid_t pid = -1;
  std::string detail;
};

status inspect(const settings& s) {
  status out;
  const auto pid = read_pid_file(s.pid_file);
  if (pid) {
    out.pid = *pid;
    if (is_instance(*pid, s.identity())) {
      out.st = state::running;
      return out;
    }
    if (process_alive(*pid)) {
      out.st = state::stale_foreign;
      out.detail =
          "stale pid file " + s.pid_file.string() + ": " + describe(*pid) + " is another program";
      return out;
    }
    out.st = state::crashed;
    out.detail = "pid " + std::to_string(*pid) + " from " + s.pid_file.string() +
                 " is not running (the daemon died)";
  }
  // An instance of this resource running without (or with another) pid file.
  const auto found = find_instances(s.identity());
  if (!found.empty()) {
    out.st = state::orphan;
    out.pid = found.front();
    out.detail = describe(found.front()) + " runs with " + s.config.string() +
                 " but is not in the pid file " + s.pid_file.string();
  }
  return out;
}

// The store lock's holder (hamail-store.lock is flock()ed by the daemon serving the store).
std::optional<pid_t> store_lock_holder(const fs::path& data_dir) {
  const fs::path lock = data_dir / "hamail-store.lock";
  const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<pid_t> holder;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    holder = read_pid_file(lock).value_or(0);
  } else {
    ::flock(fd, LOCK_UN);
  }
  ::close(fd);
  return holder;
}

// ---------------------------------------------------------------- probes

std::string loopback_for(const std::string& wildcard) {
  return wildcard == "::" ? "::1" : "127.0.0.1";
}

struct listener_target {
  std::string protocol;
  probe_target target;
};

// The SMTP-family listeners to probe, with the ports actually bound (the daemon's
// runtime "listeners" file, in configuration order) and the address to reach them at.
std::vector<listener_target> probe_targets(const hamail::backend::backend_config& cfg,
                                           const settings& s) {
  std::vector<std::vector<std::string>> bound;
  std::ifstream in(cfg.store.runtime_dir / "listeners");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    bound.push_back(std::move(f));
  }
  std::vector<listener_target> out;
  for (std::size_t i = 0; i < cfg.server.listeners.size(); ++i) {
    const auto& l = cfg.server.listeners[i];
    if (l.protocol != "smtp" && l.protocol != "submission" && l.protocol != "lmtp") continue;
    std::uint16_t port = l.port;
    if (i < bound.size() && bound[i].size() == 4) {
      port = static_cast<std::uint16_t>(std::strtoul(bound[i][3].c_str(), nullptr, 10));
    }
    if (port == 0) continue;
    std::string address = l.address;
    if (is_wildcard(address)) {
      address = s.service_address.empty() ? loopback_for(l.address) : s.service_address;
    } else if (!s.service_address.empty() &&
               !covers(listen_socket{l.address, l.port}, s.service_address)) {
      continue;  // a listener on another address (e.g. a management IP)
    }
    listener_target t;
    t.protocol = l.protocol;
    t.target.address = address;
    t.target.port = port;
    t.target.lmtp = l.protocol == "lmtp";
    t.target.implicit_tls = l.tls == tls_mode::implicit;
    t.target.ca_file = s.probe_ca_file.string();
    t.target.server_name = s.probe_tls_name;
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<std::string> read_secret(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

outcome protocol_checks(const hamail::backend::backend_config& cfg, const settings& s, int depth,
                        clock::time_point deadline) {
  const auto targets = probe_targets(cfg, s);
  if (targets.empty()) {
    return fail(rc::err_generic,
                "no SMTP, submission or LMTP listener to probe on " +
                    (s.service_address.empty() ? "any address" : s.service_address));
  }
  for (const auto& t : targets) {
    const auto r = smtp_probe(t.target, deadline);
    if (!r.ok) return fail(rc::err_generic, t.protocol + " probe failed: " + r.detail);
  }
  if (depth >= 20 && !s.probe_account.empty()) {
    const auto password = read_secret(s.probe_secret_file);
    if (!password) {
      return fail(rc::err_generic, "cannot read " + s.probe_secret_file.string());
    }
    const auto it = std::find_if(targets.begin(), targets.end(),
                                 [](const auto& t) { return t.protocol == "submission"; });
    const auto& t = it != targets.end() ? *it : targets.front();
    const auto r = smtp_probe(t.target, deadline, probe_credentials{s.probe_account, *password});
    if (!r.ok) {
      return fail(rc::err_generic,
                  "authenticated probe as " + s.probe_account + " failed: " + r.detail);
    }
  }
  return outcome::success();
}

// ---------------------------------------------------------------- monitor

outcome check_listening(const settings& s, pid_t pid) {
  const auto sockets = listening_sockets(pid);
  if (sockets.empty()) return fail(rc::err_generic, describe(pid) + " listens on no TCP port");
  if (!s.service_address.empty() &&
      std::none_of(sockets.begin(), sockets.end(),
                   [&](const auto& l) { return covers(l, s.service_address); })) {
    return fail(rc::err_generic, describe(pid) + " does not listen on " + s.service_address);
  }
  return outcome::success();
}

outcome monitor(const context& ctx) {
  const settings s = read_settings(ctx);
  if (auto bad = check_parameters(s)) {
    // Probes run on every node with whatever the parameters are; never "not configured".
    return ctx.is_probe() ? fail(rc::not_running, bad->reason) : *bad;
  }
  const status st = inspect(s);
  switch (st.st) {
    case state::stopped:
      if (s.binary_missing) return fail(rc::not_running, s.binary.string() + " not installed");
      return fail(rc::not_running, "");
    case state::stale_foreign:
      return fail(rc::not_running, st.detail);
    case state::crashed:
      // A probe only asks "is it running here?"; a recurring monitor saw it die.
      return fail(ctx.is_probe() ? rc::not_running : rc::err_generic, st.detail);
    case state::orphan:
      return fail(rc::err_generic, st.detail);
    case state::running:
      break;
  }
  if (auto r = check_listening(s, st.pid); !r.ok()) return r;
  if (ctx.check_level < 10) return outcome::success();

  auto wait = ctx.budget(20s) - 500ms;
  if (s.probe_timeout > 0)
    wait = std::min<std::chrono::milliseconds>(wait, std::chrono::seconds(s.probe_timeout));
  const auto deadline = clock::now() + wait;
  auto cfg = hamail::backend::load_backend_config(s.config);
  if (!cfg) {
    return fail(rc::err_generic, "cannot read " + s.config.string() + " for the protocol probe");
  }
  return protocol_checks(*cfg, s, ctx.check_level, deadline);
}

// ---------------------------------------------------------------- stop

outcome stop(const context& ctx) {
  const settings s = read_settings(ctx);
  const auto started = clock::now();
  const auto budget = ctx.budget(90s);
  // Escalate to SIGKILL at two thirds of the stop timeout; give up a second before it.
  const auto kill_at = started + budget * 2 / 3;
  const auto give_up = started + std::max<std::chrono::milliseconds>(budget - 1s, budget * 5 / 6);

  std::vector<pid_t> pids;
  if (const auto pid = read_pid_file(s.pid_file); pid && is_instance(*pid, s.identity())) {
    pids.push_back(*pid);
  }
  for (const pid_t p : find_instances(s.identity())) {
    if (std::find(pids.begin(), pids.end(), p) == pids.end()) pids.push_back(p);
  }
  if (pids.empty()) {
    std::error_code ec;
    if (fs::remove(s.pid_file, ec)) log::info("removed stale pid file {}", s.pid_file.string());
    return outcome::success();
  }
  for (const pid_t p : pids) {
    log::info("stopping {}: SIGTERM (graceful drain)", describe(p));
    send_signal(p, SIGTERM);
    send_signal(p, SIGCONT);  // a stopped (SIGSTOP) daemon must run to drain
  }
  auto left = wait_gone(pids, kill_at);
  if (!left.empty()) {
    for (const pid_t p : left) {
      log::warning(
          "{} still running after {} ms: SIGKILL", describe(p),
          std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - started).count());
      send_signal(p, SIGKILL);
    }
    left = wait_gone(left, give_up);
  }
  if (!left.empty()) {
    return fail(rc::err_generic, describe(left.front()) + " survived SIGKILL; not stopped");
  }
  std::error_code ec;
  fs::remove(s.pid_file, ec);
  return outcome::success();
}

// ---------------------------------------------------------------- start

outcome exit_failure(int status, const fs::path& output) {
  if (status == 75) {
    const std::string tail = output_tail(output);
    return fail(rc::err_generic, "the store is held by another instance (exit 75)" +
                                     (tail.empty() ? std::string() : ": " + tail));
  }
  return daemon_exit_failure("hamail-backend", status, output);
}

bool make_dir_for(const fs::path& dir, const validated& v) {
  return make_owned_dir(dir, v.uid, v.gid);
}

outcome start(const context& ctx) {
  const settings s = read_settings(ctx);
  const auto started = clock::now();
  const auto deadline = started + ctx.budget(120s) - 1s;

  auto checked = validate(s);
  if (auto* bad = std::get_if<outcome>(&checked)) return *bad;
  auto& v = std::get<validated>(checked);

  const status st = inspect(s);
  if (st.st == state::running) {
    log::info("already running as pid {}", st.pid);
    return outcome::success();
  }
  if (st.st == state::orphan) {
    return fail(rc::err_generic, st.detail + "; stop it before starting the resource");
  }
  if (const auto holder = store_lock_holder(v.data_dir)) {
    return fail(rc::err_generic, "store " + s.store + " is held by " +
                                     (*holder > 0 ? describe(*holder) : "another process") + " (" +
                                     (v.data_dir / "hamail-store.lock").string() + ")");
  }
  if (st.st == state::crashed || st.st == state::stale_foreign) {
    log::warning("{}: removing it", st.detail);
    std::error_code ec;
    fs::remove(s.pid_file, ec);
  }
  for (const auto& l : v.cfg.server.listeners) {
    if (l.port == 0) continue;
    const std::string at = is_wildcard(l.address) ? loopback_for(l.address) : l.address;
    const auto holders = listeners_of(at, l.port);
    if (!holders.empty()) {
      return fail(rc::err_generic, l.address + ":" + std::to_string(l.port) +
                                       " is already in use by " + describe(holders.front()));
    }
  }

  if (!make_dir_for(v.cfg.store.runtime_dir, v) || !make_dir_for(s.pid_file.parent_path(), v)) {
    return fail(rc::err_perm, "cannot create " + v.cfg.store.runtime_dir.string());
  }
  spawn_options opts;
  opts.argv = {s.binary.string(), "--config", s.config.string()};
  opts.output = v.cfg.store.runtime_dir / "hamail-backend.out";
  opts.uid = v.uid;
  opts.gid = v.gid;
  opts.user_name = s.user;
  const auto spawned = spawn_detached(opts);
  if (spawned.pid < 0) {
    return fail(rc::err_generic, "cannot run " + s.binary.string() + ": " + spawned.error);
  }
  log::info("started {} as pid {}", s.binary.string(), spawned.pid);

  // Ready = the pid file names our child (written after every listener is bound) and
  // every SMTP-family listener answers its protocol on the service address.
  std::string last_problem = "the pid file did not appear";
  while (clock::now() < deadline) {
    if (const auto status_code = exit_status(spawned.pid)) {
      return exit_failure(*status_code, opts.output);
    }
    if (read_pid_file(s.pid_file) == spawned.pid) {
      const auto r = protocol_checks(v.cfg, s, 10, std::min(deadline, clock::now() + 5s));
      if (r.ok()) {
        log::info("pid {} is serving store {}", spawned.pid, s.store);
        return outcome::success();
      }
      last_problem = r.reason;
    }
    std::this_thread::sleep_for(100ms);
  }
  send_signal(spawned.pid, SIGKILL);
  wait_gone({spawned.pid}, clock::now() + 5s);
  return fail(rc::err_generic,
              "hamail-backend did not become ready before the start timeout: " + last_problem);
}

// ---------------------------------------------------------------- validate-all, reload

outcome validate_all(const context& ctx) {
  auto checked = validate(read_settings(ctx));
  if (auto* bad = std::get_if<outcome>(&checked)) return *bad;
  return outcome::success();
}

outcome reload(const context& ctx) {
  const settings s = read_settings(ctx);
  const status st = inspect(s);
  if (st.st != state::running) {
    return fail(rc::not_running, st.detail.empty() ? "not running" : st.detail);
  }
  auto cfg = hamail::backend::load_backend_config(s.config);
  if (!cfg) {
    return fail(rc::err_configured, "configuration invalid, not reloaded: " + cfg.err().detail);
  }
  if (!send_signal(st.pid, SIGHUP)) return fail(rc::err_generic, "cannot signal pid");
  log::info("SIGHUP sent to pid {} (certificates, accounts, directory cache)", st.pid);
  return outcome::success();
}

}  // namespace

std::map<std::string, handler> handlers() {
  return {{"start", start},
          {"stop", stop},
          {"monitor", monitor},
          {"validate-all", validate_all},
          {"reload", reload}};
}

}  // namespace hamail::ocf::backend_agent

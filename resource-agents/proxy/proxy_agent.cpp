#include "proxy_agent.hpp"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <variant>
#include <vector>

#include "hamail/core/log.hpp"
#include "hamail/ocf/probe.hpp"
#include "hamail/ocf/process.hpp"
#include "hamail/proxy/config.hpp"

namespace hamail::ocf::proxy_agent {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const agent_spec& spec() {
  static const agent_spec s = [] {
    agent_spec a;
    a.name = "proxy";
    a.agent_version = HAMAIL_VERSION;
    a.shortdesc = "hamail frontend (hamail-proxy)";
    a.longdesc =
        "Runs one hamail-proxy instance: the stateless frontend that takes IMAP, POP3 and "
        "SMTP clients and routes each account to its owning store through the directory. "
        "Run it as a clone (one instance on every frontend node, behind the load balancer); "
        "it has no store, data directory or floating address of its own.";
    a.parameters = {
        {"config", param_type::string, "/etc/hamail/proxy.toml", false, true, "Configuration file",
         "Absolute path of the hamail-proxy configuration (TOML)."},
        {"binary", param_type::string, "/usr/sbin/hamail-proxy", false, false, "Daemon binary",
         "Absolute path of the hamail-proxy program."},
        {"pid_file", param_type::string, "", false, true, "Pid file",
         "Absolute path of the daemon's pid file; when set it must equal [proxy] pid_file in "
         "the configuration. Empty: the configuration's (default "
         "/run/hamail/NAME/hamail-proxy.pid)."},
        {"user", param_type::string, "", false, false, "Run as user",
         "Run the daemon as this user (with its groups, keeping only the capability to bind "
         "ports below 1024). Empty: the agent's own user (root)."},
        {"probe_user", param_type::string, "", false, false, "Probe account",
         "Account used by the depth-20 monitor to log in through the proxy (IMAP LOGIN on "
         "the proxy's imap listener, always over TLS: after STARTTLS, or on an implicit-TLS "
         "listener; the password is never sent in the clear). Empty: depth 20 checks as "
         "depth 10."},
        {"probe_password_file", param_type::string, "", false, false, "Probe password file",
         "File whose first line is the probe account's password (keep it mode 0600)."},
        {"ca_file", param_type::string, "", false, false, "Probe CA file",
         "PEM file of the CA certificates that may sign the proxy's TLS certificate; the "
         "probes verify it whenever they use TLS. Empty: the system's default trust store."},
        {"probe_tls_name", param_type::string, "", false, false, "Probe certificate name",
         "The name the proxy's certificate must carry (a DNS name, or an address). Empty: "
         "the address probed, matched against the certificate's IP subject alternative "
         "names."},
    };
    a.actions = {
        {"start", 60s, std::nullopt, std::nullopt},
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
  fs::path config;
  fs::path binary;
  fs::path pid_file;  // may be empty: from the configuration
  std::string user;
  std::string probe_user;
  fs::path probe_password_file;
  fs::path ca_file;
  std::string probe_tls_name;
  bool binary_missing = false;  // ocf-tester's OCF_TESTER_FAIL_HAVE_BINARY

  daemon_identity identity() const { return {binary, config}; }
};

settings read_settings(const context& ctx) {
  const auto& p = ctx.params;
  settings s;
  s.config = p.str("config");
  s.binary = p.str("binary");
  s.pid_file = p.str("pid_file");
  s.user = p.str("user");
  s.probe_user = p.str("probe_user");
  s.probe_password_file = p.str("probe_password_file");
  s.ca_file = p.str("ca_file");
  s.probe_tls_name = p.str("probe_tls_name");
  const auto forced = ctx.env.get("OCF_TESTER_FAIL_HAVE_BINARY");
  s.binary_missing = (forced && *forced == "1") || ::access(s.binary.c_str(), X_OK) != 0;
  return s;
}

std::string describe(pid_t pid) {
  const auto exe = process_exe(pid);
  return "pid " + std::to_string(pid) + (exe ? " (" + exe->string() + ")" : "");
}

// The first line of a multi-line configuration error, and how many more there are.
std::string config_error(const std::string& detail) {
  const auto nl = detail.find('\n');
  if (nl == std::string::npos) return detail;
  const auto more = std::count(detail.begin(), detail.end(), '\n');
  return detail.substr(0, nl) + " (and " + std::to_string(more) + " more)";
}

// ---------------------------------------------------------------- validation

// Checks that need nothing of the node: the parameters themselves (err_configured).
std::optional<outcome> check_parameters(const settings& s) {
  for (const auto* p : {&s.config, &s.binary}) {
    if (!p->is_absolute()) {
      return fail(rc::err_configured, "'" + p->string() + "' is not an absolute path");
    }
  }
  for (const auto& [name, p] :
       {std::pair{"pid_file", &s.pid_file}, std::pair{"ca_file", &s.ca_file},
        std::pair{"probe_password_file", &s.probe_password_file}}) {
    if (!p->empty() && !p->is_absolute()) {
      return fail(rc::err_configured,
                  std::string(name) + " '" + p->string() + "' is not an absolute path");
    }
  }
  if (!s.probe_user.empty() && s.probe_password_file.empty()) {
    return fail(rc::err_configured, "probe_user is set but probe_password_file is not");
  }
  return std::nullopt;
}

struct validated {
  hamail::proxy::proxy_config cfg;
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
  auto loaded = hamail::proxy::load_proxy_config(s.config);
  if (!loaded) {
    return fail(rc::err_configured, "invalid configuration: " + config_error(loaded.err().detail));
  }
  validated v;
  v.cfg = std::move(*loaded);
  const auto& inst = v.cfg.instance;
  if (!s.pid_file.empty() && inst.pid_file.lexically_normal() != s.pid_file.lexically_normal()) {
    return fail(rc::err_configured, "pid_file " + s.pid_file.string() +
                                        " differs from the configuration's " +
                                        inst.pid_file.string());
  }
  if (v.cfg.server.listeners.empty()) {
    return fail(rc::err_configured, s.config.string() + " has no listener");
  }
  if (!s.probe_user.empty() &&
      std::none_of(v.cfg.server.listeners.begin(), v.cfg.server.listeners.end(),
                   [](const auto& l) { return l.protocol == "imap"; })) {
    return fail(rc::err_configured, "probe_user needs an imap listener in " + s.config.string());
  }
  if (!s.user.empty()) {
    const passwd* pw = ::getpwnam(s.user.c_str());
    if (pw == nullptr) return fail(rc::err_installed, "user '" + s.user + "' does not exist here");
    v.uid = pw->pw_uid;
    v.gid = pw->pw_gid;
  }
  if (!s.probe_password_file.empty() && ::access(s.probe_password_file.c_str(), R_OK) != 0) {
    return fail(rc::err_installed,
                "probe_password_file " + s.probe_password_file.string() + " is not readable");
  }
  if (!s.ca_file.empty() && ::access(s.ca_file.c_str(), R_OK) != 0) {
    return fail(rc::err_installed, "ca_file " + s.ca_file.string() + " is not readable");
  }
  return v;
}

// The pid file: the parameter, else the configuration's; empty when neither is known
// (the configuration unreadable here: then only the process scan finds the daemon).
fs::path pid_file_of(const settings& s) {
  if (!s.pid_file.empty()) return s.pid_file;
  if (::access(s.config.c_str(), R_OK) != 0) return {};
  auto cfg = hamail::proxy::load_proxy_config(s.config);
  return cfg ? cfg->instance.pid_file : fs::path();
}

// ---------------------------------------------------------------- state

enum class state { stopped, running, crashed, stale_foreign, orphan };

struct status {
  state st = state::stopped;
  pid_t pid = -1;
  std::string detail;
};

status inspect(const settings& s, const fs::path& pid_file) {
  status out;
  const auto pid = pid_file.empty() ? std::nullopt : read_pid_file(pid_file);
  if (pid) {
    out.pid = *pid;
    if (is_instance(*pid, s.identity())) {
      out.st = state::running;
      return out;
    }
    if (process_alive(*pid)) {
      out.st = state::stale_foreign;
      out.detail =
          "stale pid file " + pid_file.string() + ": " + describe(*pid) + " is another program";
      return out;
    }
    out.st = state::crashed;
    out.detail = "pid " + std::to_string(*pid) + " from " + pid_file.string() +
                 " is not running (the daemon died)";
  }
  // An instance of this resource running without (or with another) pid file.
  const auto found = find_instances(s.identity());
  if (!found.empty()) {
    if (pid_file.empty()) {
      // The configuration is unreadable here, so the pid file is unknown: the process
      // scan by (binary, --config) is the identity.
      out.st = state::running;
      out.pid = found.front();
      return out;
    }
    out.st = state::orphan;
    out.pid = found.front();
    out.detail = describe(found.front()) + " runs with " + s.config.string() +
                 " but is not in the pid file " + pid_file.string();
  }
  return out;
}

// ---------------------------------------------------------------- listeners and probes

// One configured listener with the port actually bound (the daemon's runtime "listeners"
// file, in configuration order) and the address to reach it at.
struct bound_listener {
  std::string name;
  std::string protocol;
  std::string address;  // as configured (may be a wildcard)
  probe_target target;  // address: where to connect (loopback for a wildcard)
};

std::string loopback_for(const std::string& wildcard) {
  return wildcard == "::" ? "::1" : "127.0.0.1";
}

std::vector<bound_listener> bound_listeners(const hamail::proxy::proxy_config& cfg,
                                            const settings& s) {
  std::vector<std::vector<std::string>> bound;
  std::ifstream in(cfg.instance.runtime_dir / "listeners");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    bound.push_back(std::move(f));
  }
  std::vector<bound_listener> out;
  for (std::size_t i = 0; i < cfg.server.listeners.size(); ++i) {
    const auto& l = cfg.server.listeners[i];
    std::uint16_t port = l.port;
    if (i < bound.size() && bound[i].size() == 4) {
      port = static_cast<std::uint16_t>(std::strtoul(bound[i][3].c_str(), nullptr, 10));
    }
    bound_listener b;
    b.name = l.name.empty() ? l.protocol : l.name;
    b.protocol = l.protocol;
    b.address = l.address;
    b.target.address = is_wildcard(l.address) ? loopback_for(l.address) : l.address;
    b.target.port = port;
    b.target.implicit_tls = l.tls == tls_mode::implicit;
    b.target.ca_file = s.ca_file.string();
    b.target.server_name = s.probe_tls_name;
    out.push_back(std::move(b));
  }
  return out;
}

// Depth 0: the daemon listens on every configured listener (by the bound port).
outcome check_listening(const std::vector<bound_listener>& listeners, pid_t pid) {
  const auto sockets = listening_sockets(pid);
  if (sockets.empty()) return fail(rc::err_generic, describe(pid) + " listens on no TCP port");
  for (const auto& l : listeners) {
    if (l.target.port == 0) continue;  // port chosen by the kernel and not yet recorded
    const bool found = std::any_of(sockets.begin(), sockets.end(), [&](const listen_socket& s) {
      return s.port == l.target.port &&
             (s.address == l.address || (!is_wildcard(l.address) && covers(s, l.address)));
    });
    if (!found) {
      return fail(rc::err_generic, describe(pid) + " does not listen on its " + l.name +
                                       " listener " + l.address + ":" +
                                       std::to_string(l.target.port));
    }
  }
  return outcome::success();
}

std::optional<std::string> read_secret(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Depth 10: GET /ready on the http listener answers 200. Depth 20: also an IMAP login to
// the probe account through the imap listener.
outcome protocol_checks(const std::vector<bound_listener>& listeners, const settings& s, int depth,
                        clock::time_point deadline) {
  const auto http = std::find_if(listeners.begin(), listeners.end(),
                                 [](const auto& l) { return l.protocol == "http"; });
  if (http == listeners.end()) {
    log::info("no http listener: /ready cannot be asked; depth {} checks as depth 0", depth);
  } else {
    const auto r = http_get(http->target, "/ready", deadline);
    if (!r.ok) return fail(rc::err_generic, "not ready: " + r.detail);
  }
  if (depth < 20) return outcome::success();
  if (s.probe_user.empty()) {
    log::info("no probe_user: depth 20 checks as depth 10");
    return outcome::success();
  }
  const auto password = read_secret(s.probe_password_file);
  if (!password) return fail(rc::err_generic, "cannot read " + s.probe_password_file.string());
  // Prefer a STARTTLS listener (the common client path), then an implicit-TLS one.
  auto imap = std::find_if(listeners.begin(), listeners.end(), [](const auto& l) {
    return l.protocol == "imap" && !l.target.implicit_tls;
  });
  if (imap == listeners.end()) {
    imap = std::find_if(listeners.begin(), listeners.end(),
                        [](const auto& l) { return l.protocol == "imap"; });
  }
  if (imap == listeners.end()) return fail(rc::err_generic, "no imap listener for the login probe");
  const auto r =
      imap_login_probe(imap->target, deadline, probe_credentials{s.probe_user, *password});
  if (!r.ok) {
    return fail(rc::err_generic, "IMAP login as " + s.probe_user + " failed: " + r.detail);
  }
  return outcome::success();
}

// ---------------------------------------------------------------- monitor

outcome monitor(const context& ctx) {
  const settings s = read_settings(ctx);
  if (auto bad = check_parameters(s)) {
    // Probes run on every node with whatever the parameters are; never "not configured".
    return ctx.is_probe() ? fail(rc::not_running, bad->reason) : *bad;
  }
  const status st = inspect(s, pid_file_of(s));
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
  auto cfg = hamail::proxy::load_proxy_config(s.config);
  if (!cfg) {
    // It runs, but what it should listen on is unknown here: say so and check what can be.
    log::warning("cannot read {} ({}): checking only that {} listens", s.config.string(),
                 config_error(cfg.err().detail), describe(st.pid));
    if (listening_sockets(st.pid).empty()) {
      return fail(rc::err_generic, describe(st.pid) + " listens on no TCP port");
    }
    return outcome::success();
  }
  const auto listeners = bound_listeners(*cfg, s);
  if (auto r = check_listening(listeners, st.pid); !r.ok()) return r;
  if (ctx.check_level < 10) return outcome::success();
  const auto deadline = clock::now() + ctx.budget(20s) - 500ms;
  return protocol_checks(listeners, s, ctx.check_level, deadline);
}

// ---------------------------------------------------------------- stop

outcome stop(const context& ctx) {
  const settings s = read_settings(ctx);
  const fs::path pid_file = pid_file_of(s);
  const auto started = clock::now();
  const auto budget = ctx.budget(90s);
  // Escalate to SIGKILL at two thirds of the stop timeout; give up a second before it.
  const auto kill_at = started + budget * 2 / 3;
  const auto give_up = started + std::max<std::chrono::milliseconds>(budget - 1s, budget * 5 / 6);

  std::vector<pid_t> pids;
  if (const auto pid = pid_file.empty() ? std::nullopt : read_pid_file(pid_file);
      pid && is_instance(*pid, s.identity())) {
    pids.push_back(*pid);
  }
  for (const pid_t p : find_instances(s.identity())) {
    if (std::find(pids.begin(), pids.end(), p) == pids.end()) pids.push_back(p);
  }
  std::error_code ec;
  if (pids.empty()) {
    if (!pid_file.empty() && fs::remove(pid_file, ec)) {
      log::info("removed stale pid file {}", pid_file.string());
    }
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
  if (!pid_file.empty()) fs::remove(pid_file, ec);
  return outcome::success();
}

// ---------------------------------------------------------------- start

outcome exit_failure(int status, const fs::path& output) {
  return daemon_exit_failure("hamail-proxy", status, output);
}

bool make_dir_for(const fs::path& dir, const validated& v) {
  return make_owned_dir(dir, v.uid, v.gid);
}

outcome start(const context& ctx) {
  const settings s = read_settings(ctx);
  const auto started = clock::now();
  const auto deadline = started + ctx.budget(60s) - 1s;

  auto checked = validate(s);
  if (auto* bad = std::get_if<outcome>(&checked)) return *bad;
  auto& v = std::get<validated>(checked);
  const fs::path pid_file = v.cfg.instance.pid_file;

  const status st = inspect(s, pid_file);
  if (st.st == state::running) {
    log::info("already running as pid {}", st.pid);
    return outcome::success();
  }
  if (st.st == state::orphan) {
    return fail(rc::err_generic, st.detail + "; stop it before starting the resource");
  }
  if (st.st == state::crashed || st.st == state::stale_foreign) {
    log::warning("{}: removing it", st.detail);
    std::error_code ec;
    fs::remove(pid_file, ec);
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

  const fs::path runtime_dir = v.cfg.instance.runtime_dir;
  if (!make_dir_for(runtime_dir, v) || !make_dir_for(pid_file.parent_path(), v)) {
    return fail(rc::err_perm, "cannot create " + runtime_dir.string());
  }
  spawn_options opts;
  opts.argv = {s.binary.string(), "--config", s.config.string()};
  opts.output = runtime_dir / "hamail-proxy.out";
  opts.uid = v.uid;
  opts.gid = v.gid;
  opts.user_name = s.user;
  const auto spawned = spawn_detached(opts);
  if (spawned.pid < 0) {
    return fail(rc::err_generic, "cannot run " + s.binary.string() + ": " + spawned.error);
  }
  log::info("started {} as pid {}", s.binary.string(), spawned.pid);

  // Ready = the pid file names our child (written after every listener is bound) and it
  // listens on every listener. Not /ready: a frontend starts even while the stores or the
  // directory are down, and answers clients with temporary failures meanwhile.
  std::string last_problem = "the pid file did not appear";
  while (clock::now() < deadline) {
    if (const auto status_code = exit_status(spawned.pid)) {
      return exit_failure(*status_code, opts.output);
    }
    if (read_pid_file(pid_file) == spawned.pid) {
      const auto r = check_listening(bound_listeners(v.cfg, s), spawned.pid);
      if (r.ok()) {
        log::info("pid {} is serving as frontend {}", spawned.pid, v.cfg.instance.name);
        return outcome::success();
      }
      last_problem = r.reason;
    }
    std::this_thread::sleep_for(100ms);
  }
  send_signal(spawned.pid, SIGKILL);
  wait_gone({spawned.pid}, clock::now() + 5s);
  return fail(rc::err_generic,
              "hamail-proxy did not become ready before the start timeout: " + last_problem);
}

// ---------------------------------------------------------------- validate-all, reload

outcome validate_all(const context& ctx) {
  auto checked = validate(read_settings(ctx));
  if (auto* bad = std::get_if<outcome>(&checked)) return *bad;
  return outcome::success();
}

outcome reload(const context& ctx) {
  const settings s = read_settings(ctx);
  const status st = inspect(s, pid_file_of(s));
  if (st.st != state::running) {
    return fail(rc::not_running, st.detail.empty() ? "not running" : st.detail);
  }
  auto cfg = hamail::proxy::load_proxy_config(s.config);
  if (!cfg) {
    return fail(rc::err_configured,
                "configuration invalid, not reloaded: " + config_error(cfg.err().detail));
  }
  if (!send_signal(st.pid, SIGHUP)) return fail(rc::err_generic, "cannot signal pid");
  log::info("SIGHUP sent to pid {} (certificates, directory cache)", st.pid);
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

}  // namespace hamail::ocf::proxy_agent

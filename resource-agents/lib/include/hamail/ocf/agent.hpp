#pragma once

// The OCF Resource Agent API 1.1 (ClusterLabs OCF-spec ra/1.1) for hamail's agents:
// one declaration of an agent's parameters and actions gives both the parsed
// OCF_RESKEY_* values and the meta-data XML; run() dispatches the action and turns
// the handler's outcome into the exit code and an "ocf-exit-reason:" line.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hamail::ocf {

/// Exit codes, OCF RA API 1.1 "Exit Status Codes".
enum class rc : int {
  success = 0,
  err_generic = 1,     ///< soft error: the cluster recovers on this node first
  err_args = 2,        ///< parameters invalid on this host: try another node
  unimplemented = 3,   ///< action not supported
  err_perm = 4,        ///< insufficient privilege on this host
  err_installed = 5,   ///< software or files missing on this host: try another node
  err_configured = 6,  ///< parameters inherently invalid: fatal on every node
  not_running = 7,     ///< monitor: cleanly stopped
};

std::string_view to_string(rc code) noexcept;

/// What an action produced: the code and, for every failure, why (the exit reason).
struct outcome {
  rc code = rc::success;
  std::string reason;

  bool ok() const noexcept { return code == rc::success; }
  static outcome success() { return {}; }
};

/// A failure with its exit reason (one line; it is shown by crm_mon).
outcome fail(rc code, std::string reason);

/// The outcome for a daemon (`program`, e.g. "hamail-proxy") that exited with
/// `status` while starting: its sysexits code (69 listeners, 71 files, 78
/// configuration) or signal named, with the telling line of its captured
/// `output` (output_tail) as the reason.
outcome daemon_exit_failure(std::string_view program, int status,
                            const std::filesystem::path& output);

enum class param_type { string, integer, boolean };

/// One instance parameter (an OCF_RESKEY_<name> variable).
struct parameter {
  std::string name;
  param_type type = param_type::string;
  std::string default_value;  ///< empty: no default advertised
  bool required = false;
  bool unique = false;
  std::string shortdesc;
  std::string longdesc;
};

/// One advertised action with its recommended timeout (and interval/depth for monitors).
struct action_spec {
  std::string name;
  std::chrono::seconds timeout{20};
  std::optional<std::chrono::seconds> interval;
  std::optional<int> depth;
};

/// Everything the meta-data says about an agent.
struct agent_spec {
  std::string name;           ///< the resource type, e.g. "backend"
  std::string agent_version;  ///< the agent's own version
  std::string shortdesc;
  std::string longdesc;
  std::vector<parameter> parameters;
  std::vector<action_spec> actions;
};

/// The meta-data document: OCF 1.1 (<version>1.1</version>) and valid against the
/// OCF 1.0 DTD that ocf-tester checks (DOCTYPE line, unique/required as 0|1).
std::string metadata_xml(const agent_spec& spec);

/// The process environment as a map, or any map for tests.
class environment {
 public:
  environment() = default;
  explicit environment(const std::map<std::string, std::string>& vars)
      : vars_(vars.begin(), vars.end()) {}
  static environment from_process();

  std::optional<std::string> get(std::string_view name) const;
  void set(std::string name, std::string value) { vars_[std::move(name)] = std::move(value); }

 private:
  std::map<std::string, std::string, std::less<>> vars_;
};

/// Parameter values after defaults, checked against their declared types.
class parameters {
 public:
  /// The value (or default) of a declared parameter; empty when neither exists.
  const std::string& str(std::string_view name) const;
  long long integer(std::string_view name) const;  ///< 0 when empty
  bool boolean(std::string_view name) const;       ///< false when empty
  /// True when OCF_RESKEY_<name> was set (even to the default's value).
  bool given(std::string_view name) const;

 private:
  friend struct parse_access;
  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, bool, std::less<>> given_;
};

/// Reads OCF_RESKEY_* for every declared parameter: a missing required parameter or a
/// value of the wrong type is an err_configured outcome naming the parameter.
std::optional<outcome> parse_parameters(const agent_spec& spec, const environment& env,
                                        parameters& out);

/// Parses an OCF boolean ("1/true/yes/on", "0/false/no/off", any case).
std::optional<bool> parse_boolean(std::string_view text) noexcept;

/// The call: action, parameters and the cluster's meta attributes.
struct context {
  std::string action;
  parameters params;
  environment env;
  int check_level = 0;                    ///< OCF_CHECK_LEVEL
  std::chrono::milliseconds timeout{0};   ///< OCF_RESKEY_CRM_meta_timeout (0: not given)
  std::chrono::milliseconds interval{0};  ///< OCF_RESKEY_CRM_meta_interval
  std::string instance;                   ///< OCF_RESOURCE_INSTANCE

  /// A probe: monitor with interval 0 (Pacemaker runs it on every node, also where the
  /// resource cannot run). Probes answer "not running", never "not configured".
  bool is_probe() const noexcept { return action == "monitor" && interval.count() == 0; }
  /// The action's time budget: the meta timeout, or `fallback` when none was given.
  std::chrono::milliseconds budget(std::chrono::milliseconds fallback) const noexcept {
    return timeout.count() > 0 ? timeout : fallback;
  }
};

using handler = std::function<outcome(const context&)>;

/// Runs one agent call: argv[1] is the action. meta-data and usage/help are answered
/// here; other actions go to `handlers`. Returns the process exit code. Parameter
/// errors are err_configured, except for stop (success: nothing this agent can have
/// started) and monitor (not running), so probes never report "not configured".
int run(const agent_spec& spec, const std::map<std::string, handler>& handlers, int argc,
        const char* const* argv, const environment& env);

/// Sets up logging by the cluster's conventions: lines on stderr (Pacemaker's executor
/// logs them), syslog when HA_LOGFACILITY names a facility (not "none"), debug lines when
/// HA_debug is 1 (or OCF_TRACE_RA is set).
void configure_logging(const agent_spec& spec, const environment& env);

}  // namespace hamail::ocf

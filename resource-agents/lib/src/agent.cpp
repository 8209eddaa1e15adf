#include "hamail/ocf/agent.hpp"

#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

#include "hamail/core/log.hpp"
#include "hamail/ocf/process.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace hamail::ocf {

std::string_view to_string(rc code) noexcept {
  switch (code) {
    case rc::success:
      return "OCF_SUCCESS";
    case rc::err_generic:
      return "OCF_ERR_GENERIC";
    case rc::err_args:
      return "OCF_ERR_ARGS";
    case rc::unimplemented:
      return "OCF_ERR_UNIMPLEMENTED";
    case rc::err_perm:
      return "OCF_ERR_PERM";
    case rc::err_installed:
      return "OCF_ERR_INSTALLED";
    case rc::err_configured:
      return "OCF_ERR_CONFIGURED";
    case rc::not_running:
      return "OCF_NOT_RUNNING";
  }
  return "OCF_ERR_GENERIC";
}

outcome fail(rc code, std::string reason) {
  // An exit reason is one line: Pacemaker keeps only the first.
  std::replace(reason.begin(), reason.end(), '\n', ' ');
  return outcome{code, std::move(reason)};
}

environment environment::from_process() {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    vars.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return environment(std::move(vars));
}

std::optional<std::string> environment::get(std::string_view name) const {
  const auto it = vars_.find(name);
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

std::optional<bool> parse_boolean(std::string_view text) noexcept {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on" || lower == "y") {
    return true;
  }
  if (lower == "0" || lower == "false" || lower == "no" || lower == "off" || lower == "n") {
    return false;
  }
  return std::nullopt;
}

namespace {

std::optional<long long> parse_integer(std::string_view text) {
  long long v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc{} || p != end || text.empty()) return std::nullopt;
  return v;
}

const std::string empty_string;

}  // namespace

const std::string& parameters::str(std::string_view name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? empty_string : it->second;
}

long long parameters::integer(std::string_view name) const {
  return parse_integer(str(name)).value_or(0);
}

bool parameters::boolean(std::string_view name) const {
  return parse_boolean(str(name)).value_or(false);
}

bool parameters::given(std::string_view name) const {
  const auto it = given_.find(name);
  return it != given_.end() && it->second;
}

struct parse_access {
  static void put(parameters& p, const std::string& name, std::string value, bool given) {
    p.values_[name] = std::move(value);
    p.given_[name] = given;
  }
};

std::optional<outcome> parse_parameters(const agent_spec& spec, const environment& env,
                                        parameters& out) {
  for (const auto& p : spec.parameters) {
    auto value = env.get("OCF_RESKEY_" + p.name);
    const bool given = value.has_value();
    if (!given || value->empty()) {
      if (p.required) {
        return fail(rc::err_configured, "required parameter '" + p.name + "' is not set");
      }
      parse_access::put(out, p.name, p.default_value, given);
      continue;
    }
    if (p.type == param_type::integer && !parse_integer(*value)) {
      return fail(rc::err_configured,
                  "parameter '" + p.name + "' must be an integer, not '" + *value + "'");
    }
    if (p.type == param_type::boolean && !parse_boolean(*value)) {
      return fail(rc::err_configured, "parameter '" + p.name +
                                          "' must be a boolean (true/false), not '" + *value + "'");
    }
    parse_access::put(out, p.name, std::move(*value), given);
  }
  return std::nullopt;
}

namespace {

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string_view type_name(param_type t) {
  switch (t) {
    case param_type::integer:
      return "integer";
    case param_type::boolean:
      return "boolean";
    case param_type::string:
      break;
  }
  return "string";
}

std::string seconds(std::chrono::seconds s) { return std::to_string(s.count()) + "s"; }

}  // namespace

std::string metadata_xml(const agent_spec& spec) {
  std::string x;
  x += "<?xml version=\"1.0\"?>\n";
  x += "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n";
  x += "<resource-agent name=\"" + xml_escape(spec.name) + "\" version=\"" +
       xml_escape(spec.agent_version) + "\">\n";
  x += "<version>1.1</version>\n";
  x += "<longdesc lang=\"en\">\n" + xml_escape(spec.longdesc) + "\n</longdesc>\n";
  x += "<shortdesc lang=\"en\">" + xml_escape(spec.shortdesc) + "</shortdesc>\n";
  x += "<parameters>\n";
  for (const auto& p : spec.parameters) {
    x += "<parameter name=\"" + xml_escape(p.name) + "\" unique=\"" + (p.unique ? "1" : "0") +
         "\" required=\"" + (p.required ? "1" : "0") + "\">\n";
    x += "<longdesc lang=\"en\">\n" + xml_escape(p.longdesc) + "\n</longdesc>\n";
    x += "<shortdesc lang=\"en\">" + xml_escape(p.shortdesc) + "</shortdesc>\n";
    x += "<content type=\"" + std::string(type_name(p.type)) + "\"";
    if (!p.default_value.empty()) x += " default=\"" + xml_escape(p.default_value) + "\"";
    x += " />\n</parameter>\n";
  }
  x += "</parameters>\n";
  x += "<actions>\n";
  for (const auto& a : spec.actions) {
    x += "<action name=\"" + xml_escape(a.name) + "\" timeout=\"" + seconds(a.timeout) + "\"";
    if (a.interval) x += " interval=\"" + seconds(*a.interval) + "\"";
    if (a.depth) x += " depth=\"" + std::to_string(*a.depth) + "\"";
    x += " />\n";
  }
  x += "</actions>\n";
  x += "</resource-agent>\n";
  return x;
}

namespace {

void usage(const agent_spec& spec, const std::map<std::string, handler>& handlers, std::FILE* to) {
  std::string actions = "meta-data|usage";
  for (const auto& [name, h] : handlers) actions += "|" + name;
  std::fprintf(to, "usage: %s {%s}\n\n%s\n", spec.name.c_str(), actions.c_str(),
               spec.shortdesc.c_str());
}

std::chrono::milliseconds env_ms(const environment& env, const char* name) {
  const auto v = env.get(name);
  if (!v) return std::chrono::milliseconds{0};
  long long n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc{} || n < 0) return std::chrono::milliseconds{0};
  // Pacemaker passes milliseconds; a trailing unit is tolerated for hand-run calls.
  const std::string_view unit(p, static_cast<std::size_t>(v->data() + v->size() - p));
  if (unit == "s") n *= 1000;
  return std::chrono::milliseconds{n};
}

int finish(const context& ctx, const outcome& out) {
  if (out.ok()) {
    log::debug("{} succeeded", ctx.action);
  } else if (out.code == rc::not_running && ctx.action == "monitor") {
    log::info("monitor: not running{}{}", out.reason.empty() ? "" : ": ", out.reason);
  } else {
    log::error("{} failed ({}): {}", ctx.action, to_string(out.code), out.reason);
  }
  // Every failure carries an exit reason; Pacemaker shows it in crm_mon.
  if (!out.ok() && !out.reason.empty()) {
    std::fprintf(stderr, "ocf-exit-reason:%s\n", out.reason.c_str());
    std::fflush(stderr);
  }
  return static_cast<int>(out.code);
}

}  // namespace

int run(const agent_spec& spec, const std::map<std::string, handler>& handlers, int argc,
        const char* const* argv, const environment& env) {
  if (argc < 2) {
    usage(spec, handlers, stderr);
    std::fprintf(stderr, "ocf-exit-reason:no action given\n");
    return static_cast<int>(rc::err_args);
  }
  const std::string action = argv[1];
  if (action == "meta-data") {
    const std::string xml = metadata_xml(spec);
    std::fwrite(xml.data(), 1, xml.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : static_cast<int>(rc::err_generic);
  }
  if (action == "usage" || action == "help") {
    usage(spec, handlers, stdout);
    return 0;
  }
  const auto h = handlers.find(action);
  if (h == handlers.end()) {
    usage(spec, handlers, stderr);
    std::fprintf(stderr, "ocf-exit-reason:action '%s' is not implemented\n", action.c_str());
    return static_cast<int>(rc::unimplemented);
  }

  context ctx;
  ctx.action = action;
  ctx.env = env;
  ctx.instance = env.get("OCF_RESOURCE_INSTANCE").value_or(spec.name);
  ctx.timeout = env_ms(env, "OCF_RESKEY_CRM_meta_timeout");
  ctx.interval = env_ms(env, "OCF_RESKEY_CRM_meta_interval");
  if (const auto level = env.get("OCF_CHECK_LEVEL")) {
    int n = 0;
    auto [p, ec] = std::from_chars(level->data(), level->data() + level->size(), n);
    if (ec == std::errc{} && p == level->data() + level->size()) ctx.check_level = n;
  }
  log::debug("{} (interval {} ms, timeout {} ms, depth {})", action, ctx.interval.count(),
             ctx.timeout.count(), ctx.check_level);

  if (auto bad = parse_parameters(spec, env, ctx.params)) {
    if (action == "stop") {
      // Nothing can have been started with parameters start would have refused.
      log::warning("stop with invalid parameters ({}): nothing to stop", bad->reason);
      return finish(ctx, outcome::success());
    }
    if (action == "monitor") return finish(ctx, fail(rc::not_running, bad->reason));
    return finish(ctx, *bad);
  }
  return finish(ctx, h->second(ctx));
}

void configure_logging(const agent_spec& spec, const environment& env) {
  log::options o;
  o.ident = spec.name;
  if (const auto inst = env.get("OCF_RESOURCE_INSTANCE"); inst && !inst->empty()) {
    o.ident += "(" + *inst + ")";
  }
  o.to_stderr = true;
  o.min_level = log::level::info;
  const auto debug = env.get("HA_debug");
  if ((debug && parse_boolean(*debug).value_or(false)) || env.get("OCF_TRACE_RA")) {
    o.min_level = log::level::debug;
  }
  static const std::map<std::string, int, std::less<>> facilities = {
      {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"cron", LOG_CRON},
      {"daemon", LOG_DAEMON}, {"kern", LOG_KERN},         {"local0", LOG_LOCAL0},
      {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},     {"local3", LOG_LOCAL3},
      {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},     {"local6", LOG_LOCAL6},
      {"local7", LOG_LOCAL7}, {"lpr", LOG_LPR},           {"mail", LOG_MAIL},
      {"news", LOG_NEWS},     {"syslog", LOG_SYSLOG},     {"user", LOG_USER},
      {"uucp", LOG_UUCP}};
  if (const auto fac = env.get("HA_LOGFACILITY")) {
    const auto it = facilities.find(*fac);
    if (it != facilities.end()) {
      o.to_syslog = true;
      o.facility = it->second;
    }
  }
  log::configure(o);
}

outcome daemon_exit_failure(std::string_view program, int status,
                            const std::filesystem::path& output) {
  const std::string tail = output_tail(output);
  const std::string said = tail.empty() ? "" : ": " + tail;
  const std::string name(program);
  switch (status) {
    case 69:
      return fail(rc::err_generic, name + " could not bind its listeners (exit 69)" + said);
    case 71:
      return fail(rc::err_perm, name + " could not write its files (exit 71)" + said);
    case 78:
      return fail(rc::err_configured, name + " rejected its configuration (exit 78)" + said);
    default:
      break;
  }
  if (status > 128) {
    return fail(rc::err_generic,
                name + " was killed by signal " + std::to_string(status - 128) + said);
  }
  return fail(rc::err_generic, name + " exited with " + std::to_string(status) + said);
}

}  // namespace hamail::ocf

// hamail-proxy: the stateless frontend. Accepts IMAP and POP3 clients, checks
// their logins against the directory and carries each session to the backend
// of the store that owns the account.

#include <CLI/CLI.hpp>

#include <cstdio>

#include "hamail/proxy/config.hpp"
#include "hamail/proxy/daemon.hpp"

int main(int argc, char** argv) {
  using namespace hamail::proxy;
  CLI::App app{"hamail-proxy: the hamail frontend (IMAP and POP3 login proxy)", "hamail-proxy"};
  std::string config_path = "/etc/hamail/proxy.toml";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check-config", check_only, "validate the configuration and exit (0 when valid)");
  app.set_version_flag("--version", "hamail-proxy " HAMAIL_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : exit_usage;
  }
  auto cfg = load_proxy_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "hamail-proxy: %s: %s\n%s\n", config_path.c_str(),
                 cfg.err().user_text.c_str(), cfg.err().detail.c_str());
    return exit_config;
  }
  if (check_only) {
    std::printf("%s: configuration valid\n", config_path.c_str());
    return exit_ok;
  }
  return run_daemon(*cfg);
}

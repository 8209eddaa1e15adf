// hamail-backend: the store daemon. Serves one store: SMTP, submission and
// LMTP intake into its Maildir++ volume (IMAP and POP3 follow).

#include <CLI/CLI.hpp>

#include <cstdio>

#include "hamail/backend/config.hpp"
#include "hamail/backend/daemon.hpp"

int main(int argc, char** argv) {
  using namespace hamail::backend;
  CLI::App app{"hamail-backend: the daemon serving one hamail store", "hamail-backend"};
  std::string config_path = "/etc/hamail/backend.toml";
  bool check_only = false;
  bool rebuild = false;
  std::string verify_account;
  std::string account;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check-config", check_only, "validate the configuration and exit (0 when valid)");
  app.add_flag(
      "--rebuild-index", rebuild,
      "rebuild mailbox indexes from the message files and exit (the daemon must be stopped)");
  app.add_option("--account", account, "with --rebuild-index: only this account");
  app.add_option(
      "--verify", verify_account,
      "compare this account's indexes with its message files and exit (1 on discrepancies)");
  app.set_version_flag("--version", "hamail-backend " HAMAIL_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : exit_usage;
  }

  auto cfg = load_backend_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "hamail-backend: %s: %s\n%s\n", config_path.c_str(),
                 cfg.err().user_text.c_str(), cfg.err().detail.c_str());
    return exit_config;
  }
  if (check_only) {
    std::printf("%s: configuration valid\n", config_path.c_str());
    return exit_ok;
  }
  if (rebuild) return rebuild_indexes(*cfg, account);
  if (!verify_account.empty()) return verify_indexes(*cfg, verify_account);
  return run_daemon(*cfg);
}

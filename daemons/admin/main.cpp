// hamail-admin: the directory admin tool. Stores, accounts and their placement,
// kept in the LDAP directory the daemons read. Exit codes: docs/admin.md.

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <sstream>

#include "hamail/admin/commands.hpp"
#include "hamail/admin/errors.hpp"
#include "hamail/admin/settings.hpp"
#include "hamail/admin/validate.hpp"

namespace {

using namespace hamail::admin;
using action = std::function<command_output(command_context&)>;

constexpr const char* exit_codes_help =
    "Exit codes: 0 ok, 1 not found, 2 usage, 3 conflict/duplicate, 4 refused by policy, "
    "5 directory unreachable, 6 invalid input, 7 other directory error, 8 configuration error.";

std::string strip_line_end(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

/// The password from --password-file or --password-stdin; nullopt when neither.
std::optional<std::string> read_password(const std::string& file, bool from_stdin) {
  if (from_stdin) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return strip_line_end(std::move(all));
  }
  if (file.empty()) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw admin_error(exit_status::invalid_input, file + ": cannot read the password file");
  std::ostringstream text;
  text << in.rdbuf();
  return strip_line_end(text.str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "hamail-admin: manage hamail stores, accounts and their placement in the LDAP "
      "directory",
      "hamail-admin"};
  app.footer(exit_codes_help);
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommand too

  std::string config_path;
  std::vector<std::string> uris;
  std::string base_dn, bind_dn, secret_file, ca_file;
  bool starttls = false;
  bool json = false;
  auto* config_opt = app.add_option("-c,--config", config_path,
                                    "configuration file (default /etc/hamail/admin.toml when it "
                                    "exists)");
  app.add_option("--uri", uris, "LDAP URI; repeat for failover, tried in order");
  auto* base_opt = app.add_option("--base-dn", base_dn, "directory suffix, e.g. dc=example,dc=org");
  auto* bind_opt = app.add_option("--bind-dn", bind_dn, "DN to bind as (default: anonymous)");
  auto* secret_opt =
      app.add_option("--bind-secret-file", secret_file, "file holding the bind password");
  auto* tls_opt = app.add_flag("--starttls", starttls, "use StartTLS on ldap:// URIs");
  auto* ca_opt = app.add_option("--ca-file", ca_file, "CA certificates for TLS");
  std::string sync_secret_file, sync_ca_file;
  auto* sync_secret_opt = app.add_option("--sync-secret-file", sync_secret_file,
                                         "the stores' sync secret (account moves)");
  auto* sync_ca_opt = app.add_option("--sync-ca-file", sync_ca_file,
                                     "CA certificates of the stores' sync listeners");
  app.add_flag("--json", json, "print the result (or the error) as JSON on stdout");
  app.set_version_flag("--version", "hamail-admin " HAMAIL_VERSION);

  action run;

  move_options move;
  std::string grace_text, rate_text, lease_text;
  bulk_move_options bulk;
  std::string tolerance_text, max_moves_text, concurrency_text;
  // The options drain and rebalance share with each other (and --grace/--rate with move).
  auto add_bulk_options = [&](CLI::App* c) {
    c->add_flag("--dry-run", bulk.dry_run, "print the plan and move nothing");
    c->add_option("--concurrency", concurrency_text, "moves at once (default 2)");
    c->add_option("--rate", rate_text,
                  "cap all moves together at this many bytes/s (e.g. 50MiB), shared out");
    c->add_option("--grace", grace_text,
                  "keep each old copy this long after its switch (default 10m)");
  };
  // Parses what add_bulk_options and the move options read as text; throws admin_error.
  auto parse_move_numbers = [&]() {
    if (!grace_text.empty()) {
      const auto g = parse_seconds(grace_text);
      if (!g) {
        throw admin_error(exit_status::invalid_input,
                          "invalid --grace \"" + grace_text + "\": use e.g. 600, 30s, 10m");
      }
      move.grace = bulk.grace = std::chrono::seconds(*g);
    }
    if (!lease_text.empty()) {
      const auto l = parse_seconds(lease_text);
      if (!l || *l == 0 || *l > 3600) {
        throw admin_error(exit_status::invalid_input,
                          "invalid --lock-lease \"" + lease_text + "\": use 1s to 1h");
      }
      move.lock_lease = std::chrono::seconds(*l);
    }
    if (!rate_text.empty()) {
      const auto r = parse_size(rate_text);
      if (!r || *r == 0) {
        throw admin_error(exit_status::invalid_input,
                          "invalid --rate \"" + rate_text + "\": use e.g. 20MiB");
      }
      move.rate = bulk.rate = *r;
    }
    if (!concurrency_text.empty()) {
      const auto n = parse_count(concurrency_text, 64);
      if (!n || *n == 0) {
        throw admin_error(exit_status::invalid_input,
                          "invalid --concurrency \"" + concurrency_text + "\": use 1 to 64");
      }
      bulk.concurrency = static_cast<unsigned>(*n);
    }
    if (!tolerance_text.empty()) {
      std::string t = tolerance_text;
      if (!t.empty() && t.back() == '%') t.pop_back();
      const auto p = parse_count(t, 100);
      if (!p) {
        throw admin_error(exit_status::invalid_input,
                          "invalid --tolerance \"" + tolerance_text + "\": use 0% to 100%");
      }
      bulk.tolerance = static_cast<double>(*p) / 100.0;
    }
    if (!max_moves_text.empty()) {
      const auto n = parse_count(max_moves_text, 1'000'000);
      if (!n || *n == 0) {
        throw admin_error(exit_status::invalid_input,
                          "invalid --max-moves \"" + max_moves_text + "\": use 1 to 1000000");
      }
      bulk.max_moves = *n;
    }
    if (!json && ::isatty(2) == 1) {
      auto line = [](std::string_view text) {
        std::fprintf(stderr, "\r\033[K%.*s", static_cast<int>(text.size()), text.data());
        std::fflush(stderr);
      };
      move.progress = line;
      bulk.progress = [](std::string_view text) {
        std::fprintf(stderr, "\r\033[K%.*s\n", static_cast<int>(text.size()), text.data());
      };
    }
  };

  // store ...
  auto* store = app.add_subcommand("store", "manage stores");
  store->require_subcommand(1);
  store_spec spec;
  {
    auto* c = store->add_subcommand("add", "add a store");
    c->add_option("NAME", spec.name, "store name (a-z 0-9 - _)")->required();
    c->add_option("--host", spec.host, "service host name (mailHost of its accounts)")->required();
    c->add_option("--address", spec.address, "floating service IP address");
    c->add_option("--smtp-port", spec.smtp_port, "SMTP port");
    c->add_option("--lmtp-port", spec.lmtp_port, "LMTP port");
    c->add_option("--imap-port", spec.imap_port, "IMAP port");
    c->add_option("--pop3-port", spec.pop3_port, "POP3 port");
    c->add_option("--sync-port", spec.sync_port,
                  "sync port (store-to-store account moves, docs/sync.md)");
    c->add_option("--weight", spec.weight, "placement weight, 0 to 1000000 (default 1)");
    c->add_option("--state", spec.state, "open|draining|closed|readonly (default open)");
    c->callback([&] { run = [&](command_context& ctx) { return store_add(ctx, spec); }; });
  }
  store->add_subcommand("list", "list stores with their account counts")->callback([&] {
    run = [](command_context& ctx) { return store_list(ctx); };
  });
  std::string name, value;
  {
    auto* c = store->add_subcommand("show", "show one store");
    c->add_option("NAME", name, "store name")->required();
    c->callback([&] { run = [&](command_context& ctx) { return store_show(ctx, name); }; });
  }
  {
    auto* c = store->add_subcommand("set-state", "set a store's state");
    c->add_option("NAME", name, "store name")->required();
    c->add_option("STATE", value, "open|draining|closed|readonly")->required();
    c->callback(
        [&] { run = [&](command_context& ctx) { return store_set_state(ctx, name, value); }; });
  }
  {
    auto* c = store->add_subcommand("set-weight", "set a store's placement weight");
    c->add_option("NAME", name, "store name")->required();
    c->add_option("WEIGHT", value, "0 to 1000000 (0 = never chosen by placement)")->required();
    c->callback(
        [&] { run = [&](command_context& ctx) { return store_set_weight(ctx, name, value); }; });
  }
  {
    auto* c = store->add_subcommand(
        "drain",
        "mark a store draining and move every account off it to the stores the placement "
        "policy chooses, a few at a time (docs/admin.md)");
    c->add_option("NAME", name, "store name")->required();
    add_bulk_options(c);
    c->callback([&] {
      run = [&](command_context& ctx) {
        parse_move_numbers();
        return store_drain(ctx, name, bulk);
      };
    });
  }
  {
    auto* c = store->add_subcommand("set-sync-port",
                                    "set the port of a store's sync listener (account moves)");
    c->add_option("NAME", name, "store name")->required();
    c->add_option("PORT", value, "1 to 65535")->required();
    c->callback(
        [&] { run = [&](command_context& ctx) { return store_set_sync_port(ctx, name, value); }; });
  }
  {
    auto* c = store->add_subcommand(
        "remove", "remove a store; refused (exit 4) while accounts are placed on it");
    c->add_option("NAME", name, "store name")->required();
    c->callback([&] { run = [&](command_context& ctx) { return store_remove(ctx, name); }; });
  }

  // account ...
  auto* account = app.add_subcommand("account", "manage accounts");
  account->require_subcommand(1);
  account_spec acc;
  std::string password_file, batch_file, id, address, target;
  bool password_stdin = false;
  auto add_password_options = [&](CLI::App* c) {
    auto* f = c->add_option("--password-file", password_file,
                            "read the password from this file (first line)");
    auto* s = c->add_flag("--password-stdin", password_stdin, "read the password from stdin");
    f->excludes(s);
    c->add_option("--scheme", acc.scheme,
                  "SSHA|SSHA256|SSHA512|SHA512-CRYPT|YESCRYPT|ARGON2ID (default from the "
                  "configuration, else SHA512-CRYPT)");
    return std::pair{f, s};
  };
  {
    auto* c = account->add_subcommand(
        "add",
        "add an account; without --store the placement policy picks the open store minimising "
        "(accounts + 1) / weight");
    auto* id_opt = c->add_option("ID", acc.id, "account id (uid)");
    auto* addr_opt = c->add_option("--address", acc.address, "primary mail address");
    auto* alias_opt = c->add_option("--alias", acc.aliases, "further address (repeatable)");
    auto [pw_file, pw_stdin] = add_password_options(c);
    c->add_option("--store", acc.store, "place on this store instead of by policy");
    c->add_option("--quota-bytes", acc.quota_bytes, "quota size, e.g. 512M, 10G (0 = default)");
    c->add_option("--quota-messages", acc.quota_messages, "quota in messages (0 = default)");
    auto* name_opt = c->add_option("--name", acc.name, "full name (cn, sn); default the id");
    auto* batch_opt = c->add_option(
        "--batch", batch_file,
        "add many accounts: one \"ID ADDRESS [ALIAS...]\" per line ('#' comments); --store, "
        "--quota-*, --scheme apply to all; no passwords (set them with account passwd)");
    for (auto* o : {id_opt, addr_opt, alias_opt, pw_file, pw_stdin, name_opt}) {
      batch_opt->excludes(o);
    }
    c->callback([&, id_opt = id_opt, addr_opt = addr_opt, pf = pw_file, ps = pw_stdin] {
      if (!batch_file.empty()) {
        run = [&](command_context& ctx) { return account_add_batch(ctx, batch_file, acc); };
        return;
      }
      if (!*id_opt || !*addr_opt) throw CLI::RequiredError("ID and --address (or --batch FILE)");
      (void)pf;
      (void)ps;
      run = [&](command_context& ctx) {
        acc.password = read_password(password_file, password_stdin);
        return account_add(ctx, acc);
      };
    });
  }
  {
    auto* c = account->add_subcommand("remove", "remove an account's directory entry");
    c->add_option("ID", id, "account id")->required();
    c->callback([&] { run = [&](command_context& ctx) { return account_remove(ctx, id); }; });
  }
  {
    auto* c = account->add_subcommand("show", "show one account");
    c->add_option("ID", id, "account id")->required();
    c->callback([&] { run = [&](command_context& ctx) { return account_show(ctx, id); }; });
  }
  {
    auto* c = account->add_subcommand("list", "list accounts");
    c->add_option("--store", acc.store, "only accounts placed on this store");
    c->callback([&] { run = [&](command_context& ctx) { return account_list(ctx, acc.store); }; });
  }
  {
    auto* c = account->add_subcommand("passwd", "set an account's password");
    c->add_option("ID", id, "account id")->required();
    auto [f, s] = add_password_options(c);
    c->callback([&, f = f, s = s] {
      if (!*f && !*s) throw CLI::RequiredError("--password-file or --password-stdin");
      run = [&](command_context& ctx) {
        return account_passwd(ctx, id, *read_password(password_file, password_stdin), acc.scheme);
      };
    });
  }
  {
    auto* c = account->add_subcommand(
        "quota", "show an account's quota, or set it (0 = the store's default)");
    c->add_option("ID", id, "account id")->required();
    auto* b = c->add_option("--bytes", acc.quota_bytes, "size, e.g. 512M, 10G");
    auto* m = c->add_option("--messages", acc.quota_messages, "number of messages");
    c->callback([&, b = b, m = m] {
      std::optional<std::string> bytes, messages;
      if (*b) bytes = acc.quota_bytes;
      if (*m) messages = acc.quota_messages;
      run = [&, bytes, messages](command_context& ctx) {
        return account_quota(ctx, id, bytes, messages);
      };
    });
  }
  {
    auto* alias = account->add_subcommand("alias", "add or remove an account's aliases");
    alias->require_subcommand(1);
    auto* a = alias->add_subcommand("add", "add an alias address (must be unused)");
    a->add_option("ID", id, "account id")->required();
    a->add_option("ADDRESS", address, "alias address")->required();
    a->callback(
        [&] { run = [&](command_context& ctx) { return account_alias_add(ctx, id, address); }; });
    auto* r = alias->add_subcommand("remove", "remove an alias address");
    r->add_option("ID", id, "account id")->required();
    r->add_option("ADDRESS", address, "alias address")->required();
    r->callback([&] {
      run = [&](command_context& ctx) { return account_alias_remove(ctx, id, address); };
    });
  }
  {
    auto* c = account->add_subcommand("lock", "lock an account: mail is accepted, logins refused");
    c->add_option("ID", id, "account id")->required();
    c->callback([&] { run = [&](command_context& ctx) { return account_lock(ctx, id, true); }; });
  }
  {
    auto* c = account->add_subcommand("unlock", "unlock a locked account");
    c->add_option("ID", id, "account id")->required();
    c->callback([&] { run = [&](command_context& ctx) { return account_lock(ctx, id, false); }; });
  }
  {
    auto* c = account->add_subcommand("set-state", "set an account's state");
    c->add_option("ID", id, "account id")->required();
    c->add_option("STATE", value, "active|locked|moving|disabled")->required();
    c->callback(
        [&] { run = [&](command_context& ctx) { return account_set_state(ctx, id, value); }; });
  }
  {
    auto* c = account->add_subcommand(
        "move",
        "move an account's mail to another store while it stays in use: copy passes, a "
        "brief lock, the switch of its owning store, the old copy deleted after the grace "
        "period (docs/admin.md)");
    c->add_option("ID", id, "account id")->required();
    c->add_option("--to", move.to, "the new owning store");
    c->add_flag("--placement-only", move.placement_only,
                "record the new owning store and mailHost without copying any mail (state "
                "moving, then the placement, then the previous state); the mail already on "
                "the old store stays there, out of the user's view");
    c->add_flag("--resume", move.resume,
                "continue the move the account's journal records (after an interruption)");
    c->add_flag("--abort", move.abort,
                "undo a move that has not switched: unlock the source, discard the copy");
    c->add_option("--grace", grace_text,
                  "keep the old copy this long after the switch (default 10m; 0 deletes it "
                  "at once)");
    c->add_option("--rate", rate_text, "cap the copy at this many bytes/s (e.g. 20MiB)");
    c->add_option("--lock-lease", lease_text,
                  "how long the source keeps the account locked if this command dies during "
                  "the final pass (default 60s)");
    c->callback([&] {
      run = [&](command_context& ctx) {
        if (move.resume + move.abort + !move.to.empty() != 1) {
          throw admin_error(exit_status::usage,
                            "account move needs exactly one of --to STORE, --resume, --abort");
        }
        if (move.placement_only && move.to.empty()) {
          throw admin_error(exit_status::usage, "--placement-only needs --to STORE");
        }
        parse_move_numbers();
        auto out = account_move(ctx, id, move);
        if (move.progress) std::fputs("\r\033[K", stderr);
        return out;
      };
    });
  }

  // placement ...
  auto* placement = app.add_subcommand("placement", "placement of accounts over stores");
  placement->require_subcommand(1);
  placement
      ->add_subcommand("report",
                       "accounts per store against the weights, and the imbalance (largest "
                       "|share - weight share|)")
      ->callback([&] { run = [](command_context& ctx) { return placement_report(ctx); }; });
  {
    auto* c = placement->add_subcommand(
        "rebalance",
        "move accounts between open stores until each is within the tolerance of its weight "
        "share (docs/admin.md)");
    c->add_option("--tolerance", tolerance_text,
                  "allowed |share - weight share|, in percent (default 2%)");
    c->add_option("--max-moves", max_moves_text, "at most this many moves (default 1000)");
    add_bulk_options(c);
    c->callback([&] {
      run = [&](command_context& ctx) {
        parse_move_numbers();
        return placement_rebalance(ctx, bulk);
      };
    });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(exit_status::usage);
  }

  try {
    settings_overrides flags;
    flags.uris = uris;
    if (*base_opt) flags.base_dn = base_dn;
    if (*bind_opt) flags.bind_dn = bind_dn;
    if (*secret_opt) flags.bind_secret_file = secret_file;
    if (*tls_opt) flags.starttls = starttls;
    if (*ca_opt) flags.ca_file = ca_file;
    if (*sync_secret_opt) flags.sync_secret_file = sync_secret_file;
    if (*sync_ca_opt) flags.sync_ca_file = sync_ca_file;
    std::optional<std::filesystem::path> explicit_config;
    if (*config_opt) explicit_config = config_path;
    const connection_settings settings = load_settings(explicit_config, flags);
    directory_connection dir(settings);
    command_context ctx{dir, settings};
    const command_output out = run(ctx);
    if (json) {
      std::cout << out.json.dump() << '\n';
    } else {
      std::cout << out.text;
    }
    std::cout.flush();
    if (!std::cout) return static_cast<int>(exit_status::ldap_error);
    if (out.exit_code != 0) std::fprintf(stderr, "hamail-admin: error: %s\n", out.error.c_str());
    return out.exit_code;
  } catch (const admin_error& e) {
    std::fprintf(stderr, "hamail-admin: error: %s\n", e.what());
    if (json) {
      const json_value err = json_value::object{
          {"error", json_value::object{{"exit_code", static_cast<int>(e.status())},
                                       {"kind", to_string(e.status())},
                                       {"message", e.what()}}}};
      std::cout << err.dump() << '\n';
    }
    return static_cast<int>(e.status());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hamail-admin: error: %s\n", e.what());
    return static_cast<int>(exit_status::ldap_error);
  }
}

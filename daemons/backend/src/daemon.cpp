#include "hamail/backend/daemon.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/auth/password_checker.hpp"
#include "hamail/backend/account_gate.hpp"
#include "hamail/backend/imap_service.hpp"
#include "hamail/backend/pop3_service.hpp"
#include "hamail/backend/smtp_service.hpp"
#include "hamail/backend/sync_service.hpp"
#include "hamail/core/log.hpp"
#include "hamail/directory/daemon_directory.hpp"
#include "hamail/metrics/http_endpoint.hpp"
#include "hamail/net/runtime_files.hpp"
#include "hamail/net/server.hpp"
#include "hamail/net/signals.hpp"
#include "hamail/store/maildir_store.hpp"
#include "hamail/tls/context_store.hpp"
#include "imap/structure_cache.hpp"
#include "move/directory_placement.hpp"

namespace hamail::backend {

namespace {

store::maildir_options store_options(const backend_config& cfg) {
  store::maildir_options o;
  o.hostname = cfg.store.hostname;
  o.fsync = cfg.store.fsync;
  o.default_quota.bytes = cfg.quota.default_bytes;
  o.default_quota.messages = cfg.quota.default_messages;
  return o;
}

int open_store(const backend_config& cfg, std::unique_ptr<store::maildir_store>& out) {
  auto st = store::maildir_store::open(cfg.store.data_dir, store_options(cfg));
  if (!st) {
    log::critical("cannot open store {} at {}: {}", cfg.store.name, cfg.store.data_dir.string(),
                  st.err().describe());
    return st.err().code == errc::already_exists ? exit_temp : exit_os;
  }
  out = std::move(*st);
  return exit_ok;
}

void configure_logging(const backend_config& cfg) {
  auto opts = cfg.server.log;
  opts.ident = "hamail-backend[" + cfg.store.name + "]";
  log::configure(opts);
}

}  // namespace

int run_daemon(const backend_config& cfg) {
  configure_logging(cfg);
  std::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(cfg.store.runtime_dir, ec);
  if (ec) {
    log::critical("cannot create runtime directory {}: {}", cfg.store.runtime_dir.string(),
                  ec.message());
    return exit_os;
  }

  // The directory: LDAP behind a cache in production, an accounts file otherwise.
  auto directory = directory::daemon_directory::open(cfg.directory);
  if (!directory) {
    log::critical("directory: {}", directory.err().describe());
    return exit_config;
  }
  directory::directory* dir = &(*directory)->lookups();
  directory::ldap_directory* ldap = (*directory)->ldap();

  std::unique_ptr<store::maildir_store> st;
  if (int rc = open_store(cfg, st); rc != exit_ok) return rc;

  std::unique_ptr<tls::context_store> tls_store;
  if (cfg.server.tls.configured()) {
    auto t = tls::context_store::open(cfg.server.tls);
    if (!t) {
      log::critical("TLS: {}", t.err().describe());
      return exit_config;
    }
    tls_store = std::move(*t);
  }

  boost::asio::io_context io(1);
  boost::asio::thread_pool blocking(cfg.store.blocking_threads);
  // The fences of account moves (ADR 0005), loaded before any session can log in. The sync
  // listener (src/sync/) takes *gate as its fence_control.
  auto opened_gate = account_gate::open(cfg.store.data_dir, cfg.store.name, blocking,
                                        account_gate::options{.fsync = cfg.store.fsync});
  if (!opened_gate) {
    log::critical("fences: {}", opened_gate.err().describe());
    return exit_os;
  }
  std::unique_ptr<account_gate> gate = std::move(*opened_gate);
  auto opened_placement = account_move::directory_placement::open(cfg.directory, *dir);
  if (!opened_placement) {
    log::critical("directory (fence leases): {}", opened_placement.err().describe());
    return exit_config;
  }
  std::unique_ptr<account_move::directory_placement> placement = std::move(*opened_placement);
  directory::login_throttle throttle(directory::login_throttle::limits{
      .max_failures_per_address = cfg.auth.max_failures_per_address,
      .window = cfg.auth.failure_window,
      .first_delay = cfg.auth.failure_delay,
      .max_account_delay = cfg.auth.max_failure_delay,
  });
  auth::password_checker passwords(auth::password_checker::limits{
      .threads = cfg.auth.hash_threads,
      .max_queued = cfg.auth.max_queued_hashes,
  });
  smtp_context ctx{cfg,
                   *st,
                   *dir,
                   blocking,
                   throttle,
                   passwords,
                   cfg.directory.auth == "bind" ? ldap : nullptr,
                   gate.get()};
  imap_fetch::structure_cache structures(cfg.imap.structure_cache_size);
  imap_context imap_ctx{
      cfg,       *st,       *dir,       blocking,
      throttle,  passwords, structures, cfg.directory.auth == "bind" ? ldap : nullptr,
      gate.get()};
  pop3_accounts pop3_state;
  pop3_context pop3_ctx{
      cfg,       *st,       *dir,       blocking,
      throttle,  passwords, pop3_state, cfg.directory.auth == "bind" ? ldap : nullptr,
      gate.get()};
  auto protocols = smtp_protocols(ctx);
  protocols.merge(imap_protocols(imap_ctx));
  protocols.merge(pop3_protocols(pop3_ctx));
  // The store-to-store channel of account moves (docs/sync.md) for protocol = "sync"; its
  // FENCE, UNFENCE and PURGE go to the account gate.
  std::unique_ptr<sync_context> sync_ctx;
  if (has_sync_listener(cfg)) {
    auto s = make_sync_context(cfg, *st, *dir, blocking, gate.get());
    if (!s) {
      log::critical("sync: {}", s.err().describe());
      return exit_config;
    }
    sync_ctx = std::move(*s);
    protocols.merge(sync_protocols(*sync_ctx));
  }
  // The operational endpoint (docs/metrics.md) for listeners with protocol = "http":
  // ready while serving (the endpoint answers 503 once draining).
  metrics::registry registry;
  protocols["http"] = metrics::http_endpoint_factory(registry, {});
  net::server srv(io, cfg.server.listeners, cfg.server.limits, tls_store.get(),
                  std::move(protocols));
  metrics::add_connection_metrics(registry, "hamail_backend", srv);
  if (auto r = srv.listen(); !r) {
    log::critical("{}", r.err().describe());
    return exit_unavailable;
  }

  // What is bound, for tests (port 0), the resource agent and operators.
  auto listeners_file = net::write_runtime_files(srv, cfg.server.listeners, cfg.store.runtime_dir,
                                                 cfg.store.pid_file);
  if (!listeners_file) {
    log::critical("{}", listeners_file.err().detail);
    return exit_os;
  }

  net::signal_handler signals(io, srv, tls_store.get(), cfg.server.limits.drain_timeout);
  signals.on_reload([&directory] { (*directory)->reload(); });
  if (auto r = signals.start(); !r) {
    log::critical("signals: {}", r.err().describe());
    return exit_software;
  }

  log::notice("store {} serving {} on {} listener(s), data in {}", cfg.store.name,
              cfg.store.hostname, cfg.server.listeners.size(), cfg.store.data_dir.string());
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await srv.run();
        signals.stop();
        gate->stop();
      },
      boost::asio::detached);
  // Locked fences whose lease ran out are settled with the directory (every few seconds
  // while the directory cannot answer).
  boost::asio::co_spawn(io, gate->run_lease_reviews(*placement, std::chrono::seconds(5)),
                        boost::asio::detached);
  io.run();
  blocking.join();
  passwords.join();
  // The LDAP workers resume coroutines on `io`: they go before it does.
  placement->reset();
  (*directory)->reset();
  ::unlink(listeners_file->c_str());
  ::unlink(cfg.store.pid_file.c_str());
  log::notice("store {} stopped", cfg.store.name);
  return exit_ok;
}

int rebuild_indexes(const backend_config& cfg, const std::string& account) {
  configure_logging(cfg);
  std::unique_ptr<store::maildir_store> st;
  if (int rc = open_store(cfg, st); rc != exit_ok) return rc;
  auto r = account.empty() ? st->rebuild_all() : st->rebuild_index(account);
  if (!r) {
    std::fprintf(stderr, "rebuild failed: %s\n", r.err().describe().c_str());
    return exit_os;
  }
  std::printf(
      "rebuilt %zu mailbox(es), %zu message(s); %zu UID(s) assigned; %zu UIDVALIDITY renewed\n",
      r->mailboxes, r->messages, r->uids_assigned, r->uid_validity_renewed);
  for (const auto& n : r->notes) std::printf("  %s\n", n.c_str());
  return exit_ok;
}

int verify_indexes(const backend_config& cfg, const std::string& account) {
  configure_logging(cfg);
  std::unique_ptr<store::maildir_store> st;
  if (int rc = open_store(cfg, st); rc != exit_ok) return rc;
  auto r = st->verify(account);
  if (!r) {
    std::fprintf(stderr, "verify failed: %s\n", r.err().describe().c_str());
    return exit_os;
  }
  for (const auto& d : *r) {
    std::printf("%s uid %u: %s\n", d.mailbox.c_str(), d.uid, d.detail.c_str());
  }
  std::printf("%zu discrepanc%s\n", r->size(), r->size() == 1 ? "y" : "ies");
  return r->empty() ? exit_ok : 1;
}

}  // namespace hamail::backend

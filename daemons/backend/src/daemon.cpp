#include "hamail/backend/daemon.hpp"

#include <fcntl.h>
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
#include "hamail/backend/imap_service.hpp"
#include "hamail/backend/pop3_service.hpp"
#include "hamail/backend/smtp_service.hpp"
#include "hamail/core/log.hpp"
#include "hamail/directory/accounts_file.hpp"
#include "hamail/directory/cached_directory.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/metrics/http_endpoint.hpp"
#include "hamail/net/server.hpp"
#include "hamail/net/signals.hpp"
#include "hamail/store/maildir_store.hpp"
#include "hamail/tls/context_store.hpp"
#include "imap/structure_cache.hpp"

namespace hamail::backend {

namespace {

/// Writes `text` to `path` atomically (temporary file, fsync, rename).
bool write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

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
  directory::memory_directory accounts;
  std::unique_ptr<directory::ldap_directory> ldap;
  std::unique_ptr<directory::cached_directory> cache;
  directory::directory* dir = &accounts;
  if (cfg.directory.type == "file") {
    if (auto r = directory::load_accounts_file(cfg.directory.accounts_file, accounts); !r) {
      log::critical("accounts file: {}", r.err().detail);
      return exit_config;
    }
  } else {
    auto l = directory::ldap_directory::create(cfg.directory.ldap);
    if (!l) {
      log::critical("directory: {}", l.err().describe());
      return exit_config;
    }
    ldap = std::move(*l);
    cache = std::make_unique<directory::cached_directory>(*ldap, cfg.directory.ldap.cache);
    dir = cache.get();
  }

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
                   cfg.directory.auth == "bind" ? ldap.get() : nullptr};
  imap_fetch::structure_cache structures(cfg.imap.structure_cache_size);
  imap_context imap_ctx{
      cfg,      *st,       *dir,       blocking,
      throttle, passwords, structures, cfg.directory.auth == "bind" ? ldap.get() : nullptr};
  pop3_accounts pop3_state;
  pop3_context pop3_ctx{
      cfg,      *st,       *dir,       blocking,
      throttle, passwords, pop3_state, cfg.directory.auth == "bind" ? ldap.get() : nullptr};
  auto protocols = smtp_protocols(ctx);
  protocols.merge(imap_protocols(imap_ctx));
  protocols.merge(pop3_protocols(pop3_ctx));
  // The operational endpoint (docs/metrics.md) for listeners with protocol = "http":
  // ready while serving (the endpoint answers 503 once draining).
  metrics::registry registry;
  protocols["http"] = metrics::http_endpoint_factory(registry, {});
  net::server srv(io, cfg.server.listeners, cfg.server.limits, tls_store.get(),
                  std::move(protocols));
  // Read at scrape time on this thread, where the endpoint renders.
  registry.add_callback_gauge("hamail_backend_connections_active",
                              "Sessions admitted and not yet ended, all listeners.",
                              [&srv] { return static_cast<double>(srv.active_connections()); });
  registry.add_callback_counter("hamail_backend_connections_accepted",
                                "Sessions admitted since start, all listeners.",
                                [&srv] { return std::uint64_t(srv.accepted_connections()); });
  registry.add_callback_counter("hamail_backend_connections_rejected",
                                "Connections turned away at a connection limit since start.",
                                [&srv] { return std::uint64_t(srv.rejected_connections()); });
  if (auto r = srv.listen(); !r) {
    log::critical("{}", r.err().describe());
    return exit_unavailable;
  }

  // What is bound, for tests (port 0), the resource agent and operators.
  std::string bound;
  const auto endpoints = srv.bound_endpoints();
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    const auto& l = cfg.server.listeners[i];
    bound += (l.name.empty() ? l.protocol : l.name) + " " + l.protocol + " " +
             endpoints[i].address().to_string() + " " + std::to_string(endpoints[i].port()) + "\n";
  }
  const auto listeners_file = cfg.store.runtime_dir / "listeners";
  if (!write_file_atomically(listeners_file, bound) ||
      !write_file_atomically(cfg.store.pid_file, std::to_string(::getpid()) + "\n")) {
    log::critical("cannot write {} or {}", listeners_file.string(), cfg.store.pid_file.string());
    return exit_os;
  }

  net::signal_handler signals(io, srv, tls_store.get(), cfg.server.limits.drain_timeout);
  signals.on_reload([&cfg, &accounts, &cache] {
    if (cache) {
      cache->clear();
      log::notice("SIGHUP: directory cache cleared");
      return;
    }
    directory::memory_directory fresh;
    if (auto r = directory::load_accounts_file(cfg.directory.accounts_file, fresh); !r) {
      log::error("SIGHUP: accounts file not reloaded: {}", r.err().detail);
      return;
    }
    // Re-read into the live directory: accounts are replaced one by one.
    if (auto r = directory::load_accounts_file(cfg.directory.accounts_file, accounts); !r) {
      log::error("SIGHUP: accounts file reload failed: {}", r.err().detail);
      return;
    }
    log::notice("SIGHUP: accounts file reloaded");
  });
  if (auto r = signals.start(); !r) {
    log::critical("signals: {}", r.err().describe());
    return exit_software;
  }

  log::notice("store {} serving {} on {} listener(s), data in {}", cfg.store.name,
              cfg.store.hostname, endpoints.size(), cfg.store.data_dir.string());
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await srv.run();
        signals.stop();
      },
      boost::asio::detached);
  io.run();
  blocking.join();
  passwords.join();
  // The LDAP workers resume coroutines on `io`: they go before it does.
  cache.reset();
  ldap.reset();
  ::unlink(listeners_file.c_str());
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

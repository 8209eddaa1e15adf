#include "hamail/proxy/daemon.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include "frontend.hpp"
#include "hamail/auth/password_checker.hpp"
#include "hamail/core/log.hpp"
#include "hamail/directory/accounts_file.hpp"
#include "hamail/directory/cached_directory.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/directory/login_throttle.hpp"
#include "hamail/directory/memory_directory.hpp"
#include "hamail/metrics/http_endpoint.hpp"
#include "hamail/net/server.hpp"
#include "hamail/net/signals.hpp"
#include "hamail/tls/context_store.hpp"

namespace hamail::proxy {

namespace {

/// Writes `text` to `path` atomically (temporary file, rename).
bool write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

int run_daemon(const proxy_config& cfg) {
  auto log_opts = cfg.server.log;
  log_opts.ident = "hamail-proxy[" + cfg.instance.name + "]";
  log::configure(log_opts);
  std::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(cfg.instance.runtime_dir, ec);
  if (ec) {
    log::critical("cannot create runtime directory {}: {}", cfg.instance.runtime_dir.string(),
                  ec.message());
    return exit_os;
  }

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

  std::unique_ptr<tls::context_store> tls_store;
  if (cfg.server.tls.configured()) {
    auto t = tls::context_store::open(cfg.server.tls);
    if (!t) {
      log::critical("TLS: {}", t.err().describe());
      return exit_config;
    }
    tls_store = std::move(*t);
  }
  std::shared_ptr<boost::asio::ssl::context> backend_tls;
  if (cfg.backend.tls != tls_mode::none) {
    auto t = make_backend_tls_context(cfg.backend.ca_file);
    if (!t) {
      log::critical("{}", t.err().describe());
      return exit_config;
    }
    backend_tls = std::move(*t);
  }

  boost::asio::io_context io(1);
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
  router::store_lookup find_store;
  if (ldap) {
    find_store = [l = ldap.get()](const std::string& name) { return l->find_store(name); };
  }
  router routes(cfg.backend, std::move(find_store));
  metrics::registry registry;
  proxy_metrics stats(registry);
  proxy_context ctx{
      .config = cfg,
      .logins = auth::login_services{*dir, throttle, passwords,
                                     cfg.directory.auth == "bind" ? ldap.get() : nullptr},
      .cache = cache.get(),
      .routes = routes,
      .backend_tls = backend_tls,
      .stats = &stats,
  };
  auto protocols = frontend_protocols(ctx);
  // GET /ready (docs/metrics.md): the directory answers (asked directly, not
  // from the cache) and at least one store's IMAP backend accepts a connection.
  directory::directory* uncached = ldap ? static_cast<directory::directory*>(ldap.get()) : dir;
  protocols["http"] = metrics::http_endpoint_factory(
      registry, [&cfg, &routes, uncached]() -> boost::asio::awaitable<metrics::readiness> {
        auto lookup = uncached->find_by_login(cfg.backend.login);
        auto found = co_await std::move(lookup);
        if (!found) co_return metrics::readiness::not_ready("directory unreachable");
        std::vector<std::string> stores;
        if (*found && !(*found)->owning_store.empty()) stores.push_back((*found)->owning_store);
        for (const auto& st : cfg.backend.stores) stores.push_back(st.name);
        auto ex = co_await boost::asio::this_coro::executor;
        for (const auto& name : stores) {
          auto routing = routes.target(name, service::imap);
          auto target = co_await std::move(routing);
          if (!target) continue;
          auto connecting =
              backend_link::connect(ex, *target, clock::now() + std::chrono::seconds(1));
          if (auto link = co_await std::move(connecting); link) co_return metrics::readiness::ok();
        }
        co_return metrics::readiness::not_ready("no store answers");
      });
  net::server srv(io, cfg.server.listeners, cfg.server.limits, tls_store.get(),
                  std::move(protocols));
  registry.add_callback_gauge("hamail_proxy_connections_active",
                              "Client sessions admitted and not yet ended, all listeners.",
                              [&srv] { return static_cast<double>(srv.active_connections()); });
  registry.add_callback_counter("hamail_proxy_connections_accepted",
                                "Client sessions admitted since start, all listeners.",
                                [&srv] { return std::uint64_t(srv.accepted_connections()); });
  registry.add_callback_counter("hamail_proxy_connections_rejected",
                                "Connections turned away at a connection limit since start.",
                                [&srv] { return std::uint64_t(srv.rejected_connections()); });
  if (auto r = srv.listen(); !r) {
    log::critical("{}", r.err().describe());
    return exit_unavailable;
  }
  std::string bound;
  const auto endpoints = srv.bound_endpoints();
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    const auto& l = cfg.server.listeners[i];
    bound += (l.name.empty() ? l.protocol : l.name) + " " + l.protocol + " " +
             endpoints[i].address().to_string() + " " + std::to_string(endpoints[i].port()) + "\n";
  }
  const auto listeners_file = cfg.instance.runtime_dir / "listeners";
  if (!write_file_atomically(listeners_file, bound) ||
      !write_file_atomically(cfg.instance.pid_file, std::to_string(::getpid()) + "\n")) {
    log::critical("cannot write {} or {}", listeners_file.string(), cfg.instance.pid_file.string());
    return exit_os;
  }

  net::signal_handler signals(io, srv, tls_store.get(), cfg.server.limits.drain_timeout);
  signals.on_reload([&cfg, &accounts, &cache] {
    if (cache) {
      cache->clear();
      log::notice("SIGHUP: directory cache cleared");
      return;
    }
    if (auto r = directory::load_accounts_file(cfg.directory.accounts_file, accounts); !r) {
      log::error("SIGHUP: accounts file not reloaded: {}", r.err().detail);
      return;
    }
    log::notice("SIGHUP: accounts file reloaded");
  });
  if (auto r = signals.start(); !r) {
    log::critical("signals: {}", r.err().describe());
    return exit_software;
  }
  log::notice("proxy {} serving on {} listener(s)", cfg.instance.name, endpoints.size());
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await srv.run();
        signals.stop();
      },
      boost::asio::detached);
  io.run();
  passwords.join();
  cache.reset();
  ldap.reset();
  ::unlink(listeners_file.c_str());
  ::unlink(cfg.instance.pid_file.c_str());
  log::notice("proxy {} stopped", cfg.instance.name);
  return exit_ok;
}

}  // namespace hamail::proxy

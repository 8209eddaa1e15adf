#include "hamail/proxy/daemon.hpp"

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
#include "hamail/directory/daemon_directory.hpp"
#include "hamail/directory/login_throttle.hpp"
#include "hamail/metrics/http_endpoint.hpp"
#include "hamail/net/runtime_files.hpp"
#include "hamail/net/server.hpp"
#include "hamail/net/signals.hpp"
#include "hamail/tls/context_store.hpp"

namespace hamail::proxy {

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

  auto directory = directory::daemon_directory::open(cfg.directory);
  if (!directory) {
    log::critical("directory: {}", directory.err().describe());
    return exit_config;
  }
  directory::directory* dir = &(*directory)->lookups();
  directory::ldap_directory* ldap = (*directory)->ldap();

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

  std::shared_ptr<boost::asio::ssl::context> smarthost_tls;
  if (!cfg.smtp_routing.smarthost.empty() && cfg.smtp_routing.smarthost_tls != "none") {
    auto t = make_backend_tls_context(cfg.smtp_routing.smarthost_ca_file);
    if (!t) {
      log::critical("smarthost: {}", t.err().describe());
      return exit_config;
    }
    smarthost_tls = std::move(*t);
  }
  std::filesystem::create_directories(cfg.instance.spool_dir, ec);
  if (ec) {
    log::critical("cannot create spool directory {}: {}", cfg.instance.spool_dir.string(),
                  ec.message());
    return exit_os;
  }

  boost::asio::io_context io(1);
  boost::asio::thread_pool spool_pool(2);
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
    find_store = [ldap](const std::string& name) { return ldap->find_store(name); };
  }
  router routes(cfg.backend, std::move(find_store));
  metrics::registry registry;
  proxy_metrics stats(registry);
  proxy_context ctx{
      .config = cfg,
      .logins = auth::login_services{*dir, throttle, passwords,
                                     cfg.directory.auth == "bind" ? ldap : nullptr},
      .cache = (*directory)->cache(),
      .routes = routes,
      .backend_tls = backend_tls,
      .stats = &stats,
      .spool_pool = &spool_pool,
      .smarthost_tls = smarthost_tls,
  };
  auto protocols = frontend_protocols(ctx);
  protocols.merge(smtp_frontend_protocols(ctx));
  // GET /ready (docs/metrics.md): the directory answers (asked directly, not
  // from the cache) and at least one store's IMAP backend accepts a connection.
  directory::directory* uncached = ldap ? static_cast<directory::directory*>(ldap) : dir;
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
  metrics::add_connection_metrics(registry, "hamail_proxy", srv);
  if (auto r = srv.listen(); !r) {
    log::critical("{}", r.err().describe());
    return exit_unavailable;
  }
  auto listeners_file = net::write_runtime_files(srv, cfg.server.listeners,
                                                 cfg.instance.runtime_dir, cfg.instance.pid_file);
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
  log::notice("proxy {} serving on {} listener(s)", cfg.instance.name, cfg.server.listeners.size());
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await srv.run();
        signals.stop();
      },
      boost::asio::detached);
  io.run();
  spool_pool.join();
  passwords.join();
  (*directory)->reset();
  ::unlink(listeners_file->c_str());
  ::unlink(cfg.instance.pid_file.c_str());
  log::notice("proxy {} stopped", cfg.instance.name);
  return exit_ok;
}

}  // namespace hamail::proxy

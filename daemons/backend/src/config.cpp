#include "hamail/backend/config.hpp"

#include <unistd.h>

#include <array>
#include <cctype>

#include <boost/asio/ip/address.hpp>

#include "hamail/core/config.hpp"
#include "hamail/directory/store_record.hpp"

namespace hamail::backend {

namespace {

/// An address as connection::remote_address() spells it (IPv4-mapped IPv6 as IPv4).
std::string net_address_text(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "localhost";
  return buf.data();
}

void read_store(config::section& root, store_settings& out) {
  auto s = root.table("store");
  if (!s) {
    root.add_problem("store", "missing required table [store]");
    return;
  }
  out.name = s->require_string("name");
  if (!out.name.empty() && !directory::valid_store_name(out.name)) {
    s->add_problem("name",
                   "store names use 1 to 63 of a-z 0-9 - _, starting with a letter or digit");
  }
  out.data_dir = s->require_string("data_dir");
  if (!out.data_dir.empty() && !out.data_dir.is_absolute()) {
    s->add_problem("data_dir", "must be an absolute path");
  }
  out.hostname = s->get_string("hostname", host_name());
  out.runtime_dir = s->get_string("runtime_dir", "/run/hamail/" + out.name);
  out.pid_file = s->get_string("pid_file", (out.runtime_dir / "hamail-backend.pid").string());
  out.fsync = s->get_bool("fsync", true);
  out.blocking_threads = static_cast<unsigned>(s->get_integer("blocking_threads", 8, 1, 256));
}

/// trusted_proxies of [imap], [pop3] and [smtp]: IP addresses, as connections show them.
void read_trusted_proxies(config::section& s, std::vector<std::string>& proxies) {
  for (auto& a : s.get_string_list("trusted_proxies")) {
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(a, ec);
    if (ec) {
      s.add_problem("trusted_proxies", config::quote(a) + " is not an IP address");
      continue;
    }
    proxies.push_back(net_address_text(addr));
  }
}

/// trusted_proxies and proxy_logins of [imap] and [pop3].
void read_proxy_trust(config::section& s, std::vector<std::string>& proxies,
                      std::vector<std::string>& logins) {
  read_trusted_proxies(s, proxies);
  logins = s.get_string_list("proxy_logins");
  if (!logins.empty() && proxies.empty()) {
    s.add_problem("proxy_logins", "needs trusted_proxies (the addresses they may come from)");
  }
}

void read_imap(config::section& root, imap_settings& out) {
  auto s = root.table("imap");
  if (!s) return;
  out.login_without_tls = s->get_bool("login_without_tls", false);
  out.idle_timeout = s->get_duration("idle_timeout", out.idle_timeout);
  if (out.idle_timeout < std::chrono::minutes(30)) {
    s->add_problem("idle_timeout", "must be at least 30m (RFC 9051 §5.4)");
  }
  out.idle_timeout_before_login =
      s->get_duration("idle_timeout_before_login", out.idle_timeout_before_login);
  if (out.idle_timeout_before_login < std::chrono::seconds(1)) {
    s->add_problem("idle_timeout_before_login", "must be at least 1s");
  }
  out.max_append_size = s->get_size("max_append_size", out.max_append_size);
  if (out.max_append_size < 1024) s->add_problem("max_append_size", "must be at least 1KiB");
  out.max_errors = static_cast<std::size_t>(s->get_integer("max_errors", 20, 1, 1000));
  out.max_errors_before_login =
      static_cast<std::size_t>(s->get_integer("max_errors_before_login", 5, 1, 1000));
  out.max_line = static_cast<std::size_t>(s->get_integer("max_line", 65536, 8192, 1 << 24));
  out.max_sequence_ranges =
      static_cast<std::size_t>(s->get_integer("max_sequence_ranges", 10000, 16, 1000000));
  out.create_special_use = s->get_bool("create_special_use", true);
  out.structure_cache_size = s->get_size("structure_cache_size", out.structure_cache_size);
  read_proxy_trust(*s, out.trusted_proxies, out.proxy_logins);
}

void read_pop3(config::section& root, pop3_settings& out) {
  auto s = root.table("pop3");
  if (!s) return;
  out.login_without_tls = s->get_bool("login_without_tls", false);
  out.idle_timeout = s->get_duration("idle_timeout", out.idle_timeout);
  if (out.idle_timeout < std::chrono::minutes(10)) {
    s->add_problem("idle_timeout", "must be at least 10m (RFC 1939 §3)");
  }
  out.idle_timeout_before_login =
      s->get_duration("idle_timeout_before_login", out.idle_timeout_before_login);
  if (out.idle_timeout_before_login < std::chrono::seconds(1)) {
    s->add_problem("idle_timeout_before_login", "must be at least 1s");
  }
  out.max_errors = static_cast<std::size_t>(s->get_integer("max_errors", 20, 1, 1000));
  out.max_errors_before_login =
      static_cast<std::size_t>(s->get_integer("max_errors_before_login", 5, 1, 1000));
  out.lock_mailbox = s->get_bool("lock_mailbox", false);
  out.mark_seen = s->get_bool("mark_seen", true);
  out.login_delay = std::chrono::duration_cast<std::chrono::seconds>(
      s->get_duration("login_delay", std::chrono::seconds(0)));
  out.expire = s->get_string("expire", "NEVER");
  if (out.expire != "NEVER" && (out.expire.empty() || out.expire.size() > 5 ||
                                out.expire.find_first_not_of("0123456789") != std::string::npos)) {
    s->add_problem("expire", "must be \"NEVER\" or a number of days");
  }
  read_proxy_trust(*s, out.trusted_proxies, out.proxy_logins);
}

void read_quota(config::section& root, quota_settings& out) {
  auto s = root.table("quota");
  if (!s) return;
  out.default_bytes = s->get_size("default_bytes", 0);
  out.default_messages =
      static_cast<std::uint64_t>(s->get_integer("default_messages", 0, 0, INT64_MAX));
  out.permanent = s->get_enum("over_quota", {"temporary", "permanent"}, "temporary") == "permanent";
}

/// [sync], and the rules for listeners with protocol = "sync": implicit TLS and a secret.
void read_sync(config::section& root, const server_settings& server, sync_settings& out) {
  bool has_listener = false;
  for (const auto& l : server.listeners) {
    if (l.protocol != "sync") continue;
    has_listener = true;
    if (l.tls != tls_mode::implicit) {
      root.add_problem("listener", "listener " + config::quote(l.name) +
                                       ": protocol \"sync\" needs tls = \"implicit\"");
    }
  }
  auto s = root.table("sync");
  if (!s) {
    if (has_listener) root.add_problem("sync", "a sync listener needs [sync] secret_file");
    return;
  }
  out.secret_file = s->get_string("secret_file");
  if (has_listener && out.secret_file.empty())
    s->add_problem("secret_file", "required with a sync listener");
  if (!out.secret_file.empty() && !out.secret_file.is_absolute())
    s->add_problem("secret_file", "must be an absolute path");
  for (auto& a : s->get_string_list("allowed_from")) {
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(a, ec);
    if (ec) {
      s->add_problem("allowed_from", config::quote(a) + " is not an IP address");
      continue;
    }
    out.allowed_from.push_back(net_address_text(addr));
  }
  out.rate_limit = s->get_size("rate_limit", 0);
  out.ca_file = s->get_string("ca_file");
  out.verify_hostname = s->get_bool("verify_hostname", true);
  out.timeout = s->get_duration("timeout", out.timeout);
  if (out.timeout < std::chrono::seconds(1)) s->add_problem("timeout", "must be at least 1s");
}

}  // namespace

result<backend_config> load_backend_config(const std::filesystem::path& path) {
  auto doc = config::document::load_file(path);
  if (!doc) return std::move(doc).err();
  backend_config cfg;
  cfg.file = path;
  auto root = doc->root();
  read_store(root, cfg.store);
  smtpd::read_smtp_settings(root, cfg.store.hostname, cfg.smtp);
  if (auto smtp = root.table("smtp")) {
    cfg.accept_other_stores = smtp->get_bool("accept_other_stores", false);
    read_trusted_proxies(*smtp, cfg.smtp_trusted_proxies);
  }
  read_imap(root, cfg.imap);
  read_pop3(root, cfg.pop3);
  read_quota(root, cfg.quota);
  directory::read_auth_settings(root, cfg.auth);
  directory::read_directory_settings(root, cfg.directory);
  read_server_settings(root, {"smtp", "submission", "lmtp", "imap", "pop3", "http", "sync"},
                       cfg.server);
  read_sync(root, cfg.server, cfg.sync);
  doc->finish();
  if (!doc->ok()) {
    return error::permanent(errc::config_error, "invalid configuration", doc->report());
  }
  return cfg;
}

}  // namespace hamail::backend

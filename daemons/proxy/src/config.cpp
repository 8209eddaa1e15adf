#include "hamail/proxy/config.hpp"

#include <unistd.h>

#include <array>
#include <cctype>
#include <fstream>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "hamail/core/config.hpp"
#include "hamail/directory/store_record.hpp"

namespace hamail::proxy {

namespace {

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "localhost";
  return buf.data();
}

/// An address as connection::remote_address() spells it (IPv4-mapped IPv6 as IPv4).
std::string address_text(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

std::vector<std::string> read_addresses(config::section& s, std::string_view key) {
  std::vector<std::string> out;
  for (auto& a : s.get_string_list(key)) {
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(a, ec);
    if (ec) {
      s.add_problem(key, config::quote(a) + " is not an IP address");
      continue;
    }
    out.push_back(address_text(addr));
  }
  return out;
}

void read_instance(config::section& root, instance_settings& out) {
  auto s = root.table("proxy");
  if (s) {
    out.name = s->get_string("name", out.name);
    if (!directory::valid_store_name(out.name)) {
      s->add_problem("name", "use 1 to 63 of a-z 0-9 - _, starting with a letter or digit");
    }
  }
  const std::string default_runtime = "/run/hamail/" + out.name;
  if (!s) {
    out.hostname = host_name();
    out.runtime_dir = default_runtime;
    out.pid_file = out.runtime_dir / "hamail-proxy.pid";
    out.spool_dir = out.runtime_dir / "spool";
    return;
  }
  out.hostname = s->get_string("hostname", host_name());
  out.runtime_dir = s->get_string("runtime_dir", default_runtime);
  out.pid_file = s->get_string("pid_file", (out.runtime_dir / "hamail-proxy.pid").string());
  out.spool_dir = s->get_string("spool_dir", (out.runtime_dir / "spool").string());
  out.trusted_proxies = read_addresses(*s, "trusted_proxies");
}

std::uint16_t read_port(config::section& s, std::string_view key, std::uint16_t fallback) {
  return static_cast<std::uint16_t>(s.get_integer(key, fallback, 1, 65535));
}

void read_password(config::section& s, backend_settings& out) {
  out.password_file = s.get_string("password_file", "");
  if (out.password_file.empty()) {
    s.add_problem("password_file", "required with login (the file holding its password)");
    return;
  }
  if (!out.password_file.is_absolute()) {
    s.add_problem("password_file", "must be an absolute path");
    return;
  }
  std::ifstream in(out.password_file);
  if (!in) {
    s.add_problem("password_file", "cannot read " + out.password_file.string());
    return;
  }
  std::getline(in, out.password);
  if (!out.password.empty() && out.password.back() == '\r') out.password.pop_back();
  if (out.password.empty()) s.add_problem("password_file", "the first line is empty");
}

void read_backend(config::section& root, backend_settings& out) {
  auto s = root.table("backend");
  if (!s) {
    root.add_problem("backend", "missing required table [backend] (login, password_file)");
    return;
  }
  out.login = s->require_string("login");
  if (!out.login.empty()) read_password(*s, out);
  const auto tls = s->get_enum("tls", {"none", "starttls", "implicit"}, "none");
  out.tls = tls == "starttls"   ? tls_mode::starttls
            : tls == "implicit" ? tls_mode::implicit
                                : tls_mode::none;
  out.ca_file = s->get_string("ca_file", "");
  if (!out.ca_file.empty() && !std::filesystem::path(out.ca_file).is_absolute()) {
    s->add_problem("ca_file", "must be an absolute path");
  }
  out.verify_name = s->get_bool("verify_name", true);
  const auto positive = [&s](std::string_view key, std::chrono::milliseconds fallback) {
    const auto t = s->get_duration(key, fallback);
    if (t <= std::chrono::milliseconds::zero()) {
      s->add_problem(key, "must be more than 0");
      return fallback;
    }
    return t;
  };
  out.connect_timeout = positive("connect_timeout", out.connect_timeout);
  out.login_timeout = positive("login_timeout", out.login_timeout);
  out.retry_for = s->get_duration("retry_for", out.retry_for);
  out.retry_delay = positive("retry_delay", out.retry_delay);
  out.retry_max_delay = positive("retry_max_delay", out.retry_max_delay);
  if (out.retry_max_delay < out.retry_delay) {
    s->add_problem("retry_max_delay", "must not be shorter than retry_delay");
  }
  out.max_hops = static_cast<unsigned>(s->get_integer("max_hops", out.max_hops, 1, 16));
  out.disconnect_delay = s->get_duration("disconnect_delay", out.disconnect_delay);
  out.relay_idle_timeout = positive("relay_idle_timeout", out.relay_idle_timeout);
  if (out.relay_idle_timeout < std::chrono::minutes(30)) {
    s->add_problem("relay_idle_timeout",
                   "must be at least 30m (IMAP clients idle that long, RFC 9051 §5.4)");
  }
  out.store_cache_ttl = s->get_duration("store_cache_ttl", out.store_cache_ttl);
  for (auto& t : s->tables("store")) {
    static_store st;
    st.name = t.require_string("name");
    if (!st.name.empty() && !directory::valid_store_name(st.name)) {
      t.add_problem("name", "store names use 1 to 63 of a-z 0-9 - _");
    }
    st.address = t.require_string("address");
    st.imap_port = read_port(t, "imap_port", st.imap_port);
    st.pop3_port = read_port(t, "pop3_port", st.pop3_port);
    st.lmtp_port = read_port(t, "lmtp_port", st.lmtp_port);
    for (const auto& other : out.stores) {
      if (other.name == st.name) t.add_problem("name", "store " + st.name + " is listed twice");
    }
    out.stores.push_back(std::move(st));
  }
}

void read_login_phase(config::section& root, std::string_view table, login_phase_settings& out) {
  auto s = root.table(table);
  if (!s) return;
  out.login_without_tls = s->get_bool("login_without_tls", false);
  out.idle_timeout_before_login =
      s->get_duration("idle_timeout_before_login", out.idle_timeout_before_login);
  if (out.idle_timeout_before_login < std::chrono::seconds(1)) {
    s->add_problem("idle_timeout_before_login", "must be at least 1s");
  }
  out.max_errors_before_login =
      static_cast<std::size_t>(s->get_integer("max_errors_before_login", 5, 1, 1000));
}

void read_smtp_routing(config::section& root, smtp_routing_settings& out) {
  auto s = root.table("smtp");
  if (!s) return;
  for (auto& d : s->get_string_list("local_domains")) {
    for (auto& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (d.empty() || d.find('@') != std::string::npos) {
      s->add_problem("local_domains", config::quote(d) + " is not a domain");
      continue;
    }
    out.local_domains.push_back(std::move(d));
  }
  out.smarthost = s->get_string("smarthost", "");
  if (!out.smarthost.empty()) {
    out.smarthost_host = out.smarthost;
    const auto colon = out.smarthost.rfind(':');
    if (colon != std::string::npos && out.smarthost.find(':') == colon) {
      out.smarthost_host = out.smarthost.substr(0, colon);
      const auto port = out.smarthost.substr(colon + 1);
      unsigned long v = 0;
      const bool digits = !port.empty() && port.size() <= 5 &&
                          port.find_first_not_of("0123456789") == std::string::npos;
      if (digits) v = std::stoul(port);
      if (!digits || v == 0 || v > 65535) {
        s->add_problem("smarthost", "\"" + out.smarthost + "\": the port must be 1 to 65535");
      } else {
        out.smarthost_port = static_cast<std::uint16_t>(v);
      }
    }
    if (out.smarthost_host.empty()) s->add_problem("smarthost", "names no host");
  }
  out.smarthost_tls =
      s->get_enum("smarthost_tls", {"none", "opportunistic", "required"}, "opportunistic");
  out.smarthost_ca_file = s->get_string("smarthost_ca_file", "");
}

}  // namespace

result<proxy_config> load_proxy_config(const std::filesystem::path& path) {
  auto doc = config::document::load_file(path);
  if (!doc) return std::move(doc).err();
  proxy_config cfg;
  cfg.file = path;
  auto root = doc->root();
  read_instance(root, cfg.instance);
  read_backend(root, cfg.backend);
  read_login_phase(root, "imap", cfg.imap);
  read_login_phase(root, "pop3", cfg.pop3);
  smtpd::read_smtp_settings(root, cfg.instance.hostname, cfg.smtp);
  read_smtp_routing(root, cfg.smtp_routing);
  directory::read_auth_settings(root, cfg.auth);
  directory::read_directory_settings(root, cfg.directory);
  read_server_settings(root, {"imap", "pop3", "smtp", "submission", "lmtp", "http"}, cfg.server);
  doc->finish();
  if (!doc->ok()) {
    return error::permanent(errc::config_error, "invalid configuration", doc->report());
  }
  return cfg;
}

}  // namespace hamail::proxy

#include "hamail/core/server_settings.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "hamail/core/config.hpp"

namespace {

using namespace std::chrono_literals;
using hamail::server_settings;
using hamail::tls_mode;
using hamail::config::document;
using hamail::config::problem;

/// A fresh directory under /tmp, removed with its contents on destruction.
class scratch_dir {
 public:
  scratch_dir() {
    char name[] = "/tmp/hamail-settings-test-XXXXXX";
    if (::mkdtemp(name) == nullptr) std::abort();
    path_ = name;
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

const std::vector<std::string> backend_protocols = {"smtp", "lmtp", "imap", "pop3"};

/// Parses `text`, reads the shared sections and runs finish().
struct loaded {
  document doc;
  server_settings settings;
};

loaded load(const std::string& text,
            const std::vector<std::string>& protocols = backend_protocols) {
  auto doc = document::parse(text, "backend.toml");
  if (!doc) CPPUNIT_FAIL("unexpected parse failure: " + doc.err().detail);
  loaded out{std::move(doc).value(), {}};
  auto root = out.doc.root();
  hamail::read_server_settings(root, protocols, out.settings);
  out.doc.finish();
  return out;
}

const problem& only_problem(const document& doc, const std::string& key) {
  const problem* found = nullptr;
  for (const auto& p : doc.problems()) {
    if (p.key == key) {
      if (found != nullptr) CPPUNIT_FAIL("two problems for " + key + ":\n" + doc.report());
      found = &p;
    }
  }
  if (found == nullptr) CPPUNIT_FAIL("no problem for " + key + "; got:\n" + doc.report());
  return *found;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const char* const one_listener = R"(
[[listener]]
protocol = "imap"
address = "127.0.0.1"
port = 143
)";

class server_settings_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(server_settings_test);
  CPPUNIT_TEST(full_example_fills_every_field);
  CPPUNIT_TEST(absent_sections_keep_caller_defaults);
  CPPUNIT_TEST(listener_name_defaults_to_protocol);
  CPPUNIT_TEST(no_listener_rejected);
  CPPUNIT_TEST(duplicate_listener_address_and_port_rejected);
  CPPUNIT_TEST(duplicate_listener_spelled_differently_in_ipv6_rejected);
  CPPUNIT_TEST(same_port_on_different_addresses_accepted);
  CPPUNIT_TEST(two_port_zero_listeners_do_not_collide);
  CPPUNIT_TEST(starttls_listener_without_tls_section_rejected);
  CPPUNIT_TEST(implicit_tls_listener_with_cert_but_no_key_rejected);
  CPPUNIT_TEST(missing_cert_file_reports_strerror);
  CPPUNIT_TEST(unreadable_cert_file_reports_strerror);
  CPPUNIT_TEST(cert_path_that_is_a_directory_rejected);
  CPPUNIT_TEST(relative_cert_path_rejected);
  CPPUNIT_TEST(hostname_instead_of_address_rejected);
  CPPUNIT_TEST(bracketed_ipv6_address_rejected_with_hint);
  CPPUNIT_TEST(ipv6_address_accepted);
  CPPUNIT_TEST(port_out_of_range_rejected);
  CPPUNIT_TEST(missing_port_and_address_rejected);
  CPPUNIT_TEST(protocol_not_served_by_daemon_rejected);
  CPPUNIT_TEST(bad_tls_mode_rejected);
  CPPUNIT_TEST(per_ip_limit_above_total_rejected);
  CPPUNIT_TEST(zero_connection_limits_rejected);
  CPPUNIT_TEST(idle_timeout_below_one_second_rejected);
  CPPUNIT_TEST(listener_limits_override_the_limits_section);
  CPPUNIT_TEST(listener_per_ip_limit_above_its_total_rejected);
  CPPUNIT_TEST(client_prefixes_and_session_timeout_read_and_checked);
  CPPUNIT_TEST(bad_log_level_and_facility_rejected);
  CPPUNIT_TEST(bad_tls_min_version_rejected);
  CPPUNIT_TEST(misspelt_key_in_listener_reported_with_hint);
  CPPUNIT_TEST_SUITE_END();

 public:
  void full_example_fills_every_field() {
    scratch_dir dir;
    const auto cert = dir.write("fullchain.pem", "cert");
    const auto key = dir.write("key.pem", "key");
    const auto chain = dir.write("chain.pem", "chain");
    auto l = load(R"(
[log]
level = "notice"
stderr = false
syslog = true
syslog_facility = "local3"

[tls]
cert = ")" + cert +
                  R"("
key = ")" + key + R"("
chain = ")" + chain +
                  R"("
ciphers = "ECDHE+AESGCM"
ciphersuites = "TLS_AES_256_GCM_SHA384"
min_version = "TLSv1.3"

[limits]
max_connections = 800
max_connections_per_ip = 20
idle_timeout = "10m"
drain_timeout = "45s"

[[listener]]
name = "mx"
protocol = "smtp"
address = "192.0.2.10"
port = 25
tls = "starttls"

[[listener]]
protocol = "imap"
address = "::"
port = 993
tls = "implicit"
)");
    CPPUNIT_ASSERT_MESSAGE(l.doc.report(), l.doc.ok());
    const auto& s = l.settings;
    CPPUNIT_ASSERT(s.log.min_level == hamail::log::level::notice);
    CPPUNIT_ASSERT(!s.log.to_stderr);
    CPPUNIT_ASSERT(s.log.to_syslog);
    CPPUNIT_ASSERT_EQUAL(LOG_LOCAL3, s.log.facility);
    CPPUNIT_ASSERT_EQUAL(cert, s.tls.cert_file);
    CPPUNIT_ASSERT_EQUAL(key, s.tls.key_file);
    CPPUNIT_ASSERT_EQUAL(chain, s.tls.chain_file);
    CPPUNIT_ASSERT_EQUAL(std::string("ECDHE+AESGCM"), s.tls.ciphers);
    CPPUNIT_ASSERT_EQUAL(std::string("TLS_AES_256_GCM_SHA384"), s.tls.ciphersuites);
    CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.3"), s.tls.min_version);
    CPPUNIT_ASSERT(s.tls.configured());
    CPPUNIT_ASSERT_EQUAL(std::size_t{800}, s.limits.max_connections);
    CPPUNIT_ASSERT_EQUAL(std::size_t{20}, s.limits.max_connections_per_ip);
    CPPUNIT_ASSERT(s.limits.idle_timeout == 10min);
    CPPUNIT_ASSERT(s.limits.drain_timeout == 45s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, s.listeners.size());
    CPPUNIT_ASSERT_EQUAL(std::string("mx"), s.listeners[0].name);
    CPPUNIT_ASSERT_EQUAL(std::string("smtp"), s.listeners[0].protocol);
    CPPUNIT_ASSERT_EQUAL(std::string("192.0.2.10"), s.listeners[0].address);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{25}, s.listeners[0].port);
    CPPUNIT_ASSERT(s.listeners[0].tls == tls_mode::starttls);
    CPPUNIT_ASSERT_EQUAL(std::string("::"), s.listeners[1].address);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{993}, s.listeners[1].port);
    CPPUNIT_ASSERT(s.listeners[1].tls == tls_mode::implicit);
  }

  void absent_sections_keep_caller_defaults() {
    auto doc = document::parse(one_listener, "backend.toml");
    CPPUNIT_ASSERT(doc);
    server_settings s;
    s.log.min_level = hamail::log::level::debug;
    s.log.facility = LOG_LOCAL5;
    s.limits.max_connections = 123;
    auto root = doc->root();
    hamail::read_server_settings(root, backend_protocols, s);
    doc->finish();
    CPPUNIT_ASSERT_MESSAGE(doc->report(), doc->ok());
    CPPUNIT_ASSERT(s.log.min_level == hamail::log::level::debug);
    CPPUNIT_ASSERT_EQUAL(LOG_LOCAL5, s.log.facility);
    CPPUNIT_ASSERT_EQUAL(std::size_t{123}, s.limits.max_connections);
    CPPUNIT_ASSERT(s.limits.idle_timeout == 30min);
    CPPUNIT_ASSERT(!s.tls.configured());
    CPPUNIT_ASSERT(s.listeners[0].tls == tls_mode::none);
  }

  void listener_name_defaults_to_protocol() {
    auto l = load(one_listener);
    CPPUNIT_ASSERT_MESSAGE(l.doc.report(), l.doc.ok());
    CPPUNIT_ASSERT_EQUAL(std::string("imap"), l.settings.listeners[0].name);
  }

  void no_listener_rejected() {
    auto l = load("[limits]\nmax_connections = 100\n");
    CPPUNIT_ASSERT_EQUAL(std::string("at least one [[listener]] is required"),
                         only_problem(l.doc, "listener").reason);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, l.doc.problems().size());
  }

  void duplicate_listener_address_and_port_rejected() {
    auto l = load(R"(
[[listener]]
protocol = "smtp"
address = "192.0.2.10"
port = 25

[[listener]]
protocol = "lmtp"
address = "192.0.2.10"
port = 25
)");
    const auto& p = only_problem(l.doc, "listener[1].port");
    CPPUNIT_ASSERT_EQUAL(std::string("address 192.0.2.10 port 25 is already used by listener[0]"),
                         p.reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{10}, p.line);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, l.doc.problems().size());
  }

  void duplicate_listener_spelled_differently_in_ipv6_rejected() {
    auto l = load(R"(
[[listener]]
protocol = "imap"
address = "2001:db8::1"
port = 143

[[listener]]
protocol = "imap"
address = "2001:0db8:0:0:0:0:0:0001"
port = 143
)");
    CPPUNIT_ASSERT(
        contains(only_problem(l.doc, "listener[1].port").reason, "already used by listener[0]"));
  }

  void same_port_on_different_addresses_accepted() {
    auto l = load(R"(
[[listener]]
protocol = "smtp"
address = "192.0.2.10"
port = 25
[[listener]]
protocol = "smtp"
address = "192.0.2.11"
port = 25
[[listener]]
protocol = "smtp"
address = "192.0.2.10"
port = 587
)");
    CPPUNIT_ASSERT_MESSAGE(l.doc.report(), l.doc.ok());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, l.settings.listeners.size());
  }

  void two_port_zero_listeners_do_not_collide() {
    auto l = load(R"(
[[listener]]
protocol = "imap"
address = "127.0.0.1"
port = 0
[[listener]]
protocol = "pop3"
address = "127.0.0.1"
port = 0
)");
    CPPUNIT_ASSERT_MESSAGE(l.doc.report(), l.doc.ok());
  }

  void starttls_listener_without_tls_section_rejected() {
    auto l = load(R"(
[[listener]]
protocol = "smtp"
address = "0.0.0.0"
port = 25
tls = "starttls"
)");
    const auto& p = only_problem(l.doc, "listener[0].tls");
    CPPUNIT_ASSERT_EQUAL(std::string("tls = \"starttls\" needs cert and key in [tls]"), p.reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{6}, p.line);
  }

  void implicit_tls_listener_with_cert_but_no_key_rejected() {
    scratch_dir dir;
    const auto cert = dir.write("cert.pem", "x");
    auto l = load("[tls]\ncert = \"" + cert +
                  "\"\n[[listener]]\nprotocol = \"imap\"\naddress = \"::\"\nport = 993\ntls = "
                  "\"implicit\"\n");
    CPPUNIT_ASSERT_EQUAL(std::string("cert is set, so key is required too"),
                         only_problem(l.doc, "tls.key").reason);
    CPPUNIT_ASSERT(contains(only_problem(l.doc, "listener[0].tls").reason, "needs cert and key"));
  }

  void missing_cert_file_reports_strerror() {
    scratch_dir dir;
    const auto key = dir.write("key.pem", "k");
    const auto cert = (dir.path() / "nope.pem").string();
    auto l = load("[tls]\ncert = \"" + cert + "\"\nkey = \"" + key + "\"\n" + one_listener);
    const auto& p = only_problem(l.doc, "tls.cert");
    CPPUNIT_ASSERT_EQUAL("cannot read \"" + cert + "\": No such file or directory", p.reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, p.line);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, l.doc.problems().size());
  }

  void unreadable_cert_file_reports_strerror() {
    // Permission bits do not stop root, so make the path unopenable for anyone:
    // a path through a regular file fails with ENOTDIR.
    scratch_dir dir;
    const auto key = dir.write("key.pem", "k");
    const auto file = dir.write("plain", "x");
    const auto cert = file + "/cert.pem";
    auto l = load("[tls]\ncert = \"" + cert + "\"\nkey = \"" + key + "\"\n" + one_listener);
    CPPUNIT_ASSERT_EQUAL("cannot read \"" + cert + "\": Not a directory",
                         only_problem(l.doc, "tls.cert").reason);

    if (::geteuid() != 0) {
      const auto locked = dir.write("locked.pem", "x");
      std::filesystem::permissions(locked, std::filesystem::perms::none);
      auto m = load("[tls]\ncert = \"" + locked + "\"\nkey = \"" + key + "\"\n" + one_listener);
      CPPUNIT_ASSERT_EQUAL("cannot read \"" + locked + "\": Permission denied",
                           only_problem(m.doc, "tls.cert").reason);
    }
  }

  void cert_path_that_is_a_directory_rejected() {
    scratch_dir dir;
    const auto key = dir.write("key.pem", "k");
    auto l = load("[tls]\ncert = \"" + dir.path().string() + "\"\nkey = \"" + key + "\"\n" +
                  one_listener);
    CPPUNIT_ASSERT_EQUAL("\"" + dir.path().string() + "\" is not a regular file",
                         only_problem(l.doc, "tls.cert").reason);
  }

  void relative_cert_path_rejected() {
    scratch_dir dir;
    const auto key = dir.write("key.pem", "k");
    auto l = load("[tls]\ncert = \"tls/cert.pem\"\nkey = \"" + key + "\"\n" + one_listener);
    CPPUNIT_ASSERT_EQUAL(std::string("\"tls/cert.pem\" must be an absolute path"),
                         only_problem(l.doc, "tls.cert").reason);
  }

  void hostname_instead_of_address_rejected() {
    auto l = load(R"(
[[listener]]
protocol = "smtp"
address = "mail.example.com"
port = 25
)");
    const auto& p = only_problem(l.doc, "listener[0].address");
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, p.line);
    CPPUNIT_ASSERT_MESSAGE(
        p.reason, contains(p.reason, "\"mail.example.com\" is not a numeric IPv4 or IPv6 address"));
    CPPUNIT_ASSERT_MESSAGE(p.reason, contains(p.reason, "host names are not resolved"));

    auto local = load("[[listener]]\nprotocol = \"smtp\"\naddress = \"localhost\"\nport = 25\n");
    CPPUNIT_ASSERT(contains(only_problem(local.doc, "listener[0].address").reason,
                            "host names are not resolved"));
  }

  void bracketed_ipv6_address_rejected_with_hint() {
    auto l = load("[[listener]]\nprotocol = \"imap\"\naddress = \"[::1]\"\nport = 143\n");
    CPPUNIT_ASSERT(contains(only_problem(l.doc, "listener[0].address").reason, "without brackets"));
  }

  void ipv6_address_accepted() {
    auto l = load(R"(
[[listener]]
protocol = "imap"
address = "2001:db8::25"
port = 143
[[listener]]
protocol = "pop3"
address = "::ffff:192.0.2.1"
port = 110
[[listener]]
protocol = "lmtp"
address = "::1"
port = 24
)");
    CPPUNIT_ASSERT_MESSAGE(l.doc.report(), l.doc.ok());
    CPPUNIT_ASSERT_EQUAL(std::string("2001:db8::25"), l.settings.listeners[0].address);
    CPPUNIT_ASSERT_EQUAL(std::string("::ffff:192.0.2.1"), l.settings.listeners[1].address);
  }

  void port_out_of_range_rejected() {
    auto l = load("[[listener]]\nprotocol = \"imap\"\naddress = \"::\"\nport = 65536\n");
    CPPUNIT_ASSERT_EQUAL(std::string("65536 is out of range: must be between 0 and 65535"),
                         only_problem(l.doc, "listener[0].port").reason);
    auto n = load("[[listener]]\nprotocol = \"imap\"\naddress = \"::\"\nport = -1\n");
    CPPUNIT_ASSERT(contains(only_problem(n.doc, "listener[0].port").reason, "out of range"));
  }

  void missing_port_and_address_rejected() {
    auto l = load("[[listener]]\nprotocol = \"imap\"\n");
    CPPUNIT_ASSERT_EQUAL(std::string("missing required key"),
                         only_problem(l.doc, "listener[0].port").reason);
    CPPUNIT_ASSERT_EQUAL(std::string("missing required key"),
                         only_problem(l.doc, "listener[0].address").reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, only_problem(l.doc, "listener[0].port").line);
  }

  void protocol_not_served_by_daemon_rejected() {
    auto l = load("[[listener]]\nprotocol = \"submission\"\naddress = \"::\"\nport = 587\n");
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "\"submission\" is not served by this daemon; expected one of: smtp, lmtp, imap, pop3"),
        only_problem(l.doc, "listener[0].protocol").reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, only_problem(l.doc, "listener[0].protocol").line);
  }

  void bad_tls_mode_rejected() {
    auto l =
        load("[[listener]]\nprotocol = \"imap\"\naddress = \"::\"\nport = 143\ntls = \"ssl\"\n");
    CPPUNIT_ASSERT_EQUAL(std::string("\"ssl\" is not one of: none, starttls, implicit"),
                         only_problem(l.doc, "listener[0].tls").reason);
  }

  void per_ip_limit_above_total_rejected() {
    auto l = load(std::string("[limits]\nmax_connections = 100\nmax_connections_per_ip = 200\n") +
                  one_listener);
    const auto& p = only_problem(l.doc, "limits.max_connections_per_ip");
    CPPUNIT_ASSERT_EQUAL(std::string("200 is larger than max_connections (100)"), p.reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{3}, p.line);
  }

  void zero_connection_limits_rejected() {
    auto l = load(std::string("[limits]\nmax_connections = 0\nmax_connections_per_ip = 0\n") +
                  one_listener);
    CPPUNIT_ASSERT(
        contains(only_problem(l.doc, "limits.max_connections").reason, "must be between 1 and"));
    CPPUNIT_ASSERT(contains(only_problem(l.doc, "limits.max_connections_per_ip").reason,
                            "must be between 1 and"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, l.doc.problems().size());
  }

  void idle_timeout_below_one_second_rejected() {
    auto l = load(std::string("[limits]\nidle_timeout = \"500ms\"\n") + one_listener);
    CPPUNIT_ASSERT_EQUAL(std::string("must be at least 1s"),
                         only_problem(l.doc, "limits.idle_timeout").reason);
    CPPUNIT_ASSERT(l.settings.limits.idle_timeout == 30min);
    auto z = load(std::string("[limits]\nidle_timeout = 0\n") + one_listener);
    CPPUNIT_ASSERT(!z.doc.ok());
    auto ok = load(std::string("[limits]\nidle_timeout = \"1s\"\n") + one_listener);
    CPPUNIT_ASSERT_MESSAGE(ok.doc.report(), ok.doc.ok());
    CPPUNIT_ASSERT(ok.settings.limits.idle_timeout == 1s);
  }

  void listener_limits_override_the_limits_section() {
    auto l = load(std::string("[limits]\nmax_connections = 100\nmax_connections_per_ip = 10\n") +
                  one_listener +
                  "max_connections = 20\nmax_connections_per_ip = 20\nsession_timeout = \"10m\"\n" +
                  "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1\"\nport = 24\n");
    CPPUNIT_ASSERT_MESSAGE(l.doc.report(), l.doc.ok());
    const auto& own = l.settings.listeners.at(0);
    CPPUNIT_ASSERT(own.max_connections == std::size_t{20});
    CPPUNIT_ASSERT(own.max_connections_per_ip == std::size_t{20});
    CPPUNIT_ASSERT(own.session_timeout == std::chrono::milliseconds(10min));
    const auto& inherits = l.settings.listeners.at(1);
    CPPUNIT_ASSERT(!inherits.max_connections && !inherits.max_connections_per_ip &&
                   !inherits.session_timeout);
  }

  void listener_per_ip_limit_above_its_total_rejected() {
    auto l = load(std::string(one_listener) + "max_connections = 5\n");
    CPPUNIT_ASSERT_EQUAL(
        std::string("max_connections_per_ip (50) is larger than max_connections (5)"),
        only_problem(l.doc, "listener[0].max_connections").reason);
    auto z = load(std::string(one_listener) + "max_connections_per_ip = 0\n");
    CPPUNIT_ASSERT(contains(only_problem(z.doc, "listener[0].max_connections_per_ip").reason,
                            "must be between 1 and"));
  }

  void client_prefixes_and_session_timeout_read_and_checked() {
    auto d = load(one_listener);
    CPPUNIT_ASSERT_EQUAL(32u, d.settings.limits.ipv4_prefix);
    CPPUNIT_ASSERT_EQUAL(64u, d.settings.limits.ipv6_prefix);
    CPPUNIT_ASSERT(d.settings.limits.session_timeout == std::chrono::milliseconds(1h));
    auto l =
        load(std::string("[limits]\nipv4_prefix = 24\nipv6_prefix = 56\nsession_timeout = 0\n") +
             one_listener);
    CPPUNIT_ASSERT_MESSAGE(l.doc.report(), l.doc.ok());
    CPPUNIT_ASSERT_EQUAL(24u, l.settings.limits.ipv4_prefix);
    CPPUNIT_ASSERT_EQUAL(56u, l.settings.limits.ipv6_prefix);
    CPPUNIT_ASSERT(l.settings.limits.session_timeout.count() == 0);
    auto bad = load(std::string("[limits]\nipv6_prefix = 129\nsession_timeout = \"200ms\"\n") +
                    one_listener);
    CPPUNIT_ASSERT(
        contains(only_problem(bad.doc, "limits.ipv6_prefix").reason, "between 16 and 128"));
    CPPUNIT_ASSERT_EQUAL(std::string("must be 0 (no limit) or at least 1s"),
                         only_problem(bad.doc, "limits.session_timeout").reason);
  }

  void bad_log_level_and_facility_rejected() {
    auto l = load(std::string("[log]\nlevel = \"verbose\"\nsyslog_facility = \"local8\"\n") +
                  one_listener);
    CPPUNIT_ASSERT(contains(only_problem(l.doc, "log.level").reason,
                            "debug, info, notice, warning, error, critical"));
    CPPUNIT_ASSERT(
        contains(only_problem(l.doc, "log.syslog_facility").reason, "mail, daemon, local0"));
    CPPUNIT_ASSERT(l.settings.log.min_level == hamail::log::level::info);
    CPPUNIT_ASSERT_EQUAL(LOG_MAIL, l.settings.log.facility);
  }

  void bad_tls_min_version_rejected() {
    auto l = load(std::string("[tls]\nmin_version = \"TLSv1.0\"\n") + one_listener);
    CPPUNIT_ASSERT_EQUAL(std::string("\"TLSv1.0\" is not one of: TLSv1.2, TLSv1.3"),
                         only_problem(l.doc, "tls.min_version").reason);
    CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.2"), l.settings.tls.min_version);
  }

  void misspelt_key_in_listener_reported_with_hint() {
    auto l = load(std::string(one_listener) + "adress = \"::1\"\n");
    // address is present, so the typo is reported without pointing at it...
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key"),
                         only_problem(l.doc, "listener[0].adress").reason);
    auto m = load("[[listener]]\nprotocol = \"imap\"\nport = 143\nadress = \"::1\"\n");
    // ...and with a hint when the key it should have been is missing.
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key; did you mean 'address'?"),
                         only_problem(m.doc, "listener[0].adress").reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, only_problem(m.doc, "listener[0].adress").line);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(server_settings_test);

}  // namespace

// hamail-proxy's configuration: a complete file is read into the right values,
// and every mistake is reported with its key instead of starting a proxy that
// cannot work.

#include "hamail/proxy/config.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <fstream>
#include <string>

#include "hamail/test/temp_dir.hpp"

using hamail::tls_mode;
using hamail::proxy::load_proxy_config;

class config_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(config_test);
  CPPUNIT_TEST(complete_file_is_read);
  CPPUNIT_TEST(defaults_cover_a_failover);
  CPPUNIT_TEST(each_mistake_names_its_key);
  CPPUNIT_TEST(unreadable_or_empty_password_file_is_refused);
  CPPUNIT_TEST(smtp_routing_is_read_and_checked);
  CPPUNIT_TEST_SUITE_END();

  hamail::test::temp_dir dir_;

  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir_.path() / name;
    std::ofstream(p) << text;
    return p.string();
  }

  /// A valid file with `extra` appended (TOML tables after the required ones).
  std::string config(const std::string& backend_extra = {}, const std::string& extra = {}) {
    const auto secret = write("proxy.secret", "s3cret\n");
    return write("proxy.toml",
                 "[proxy]\nname = \"proxy-1\"\nhostname = \"mail.test\"\n"
                 "runtime_dir = \"" +
                     (dir_.path() / "run").string() +
                     "\"\n\n[backend]\nlogin = \"hamail-proxy\"\n"
                     "password_file = \"" +
                     secret + "\"\n" + backend_extra +
                     "\n[directory]\ntype = \"file\"\naccounts_file = \"/dev/null\"\n" + extra +
                     "\n[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1\"\n"
                     "port = 0\n");
  }

  static std::string problems(const std::string& path) {
    auto r = load_proxy_config(path);
    return r ? std::string() : r.err().detail;
  }

 public:
  void complete_file_is_read() {
    auto cfg = load_proxy_config(
        config("tls = \"starttls\"\nretry_for = \"20s\"\nmax_hops = 2\n"
               "[[backend.store]]\nname = \"store-a\"\naddress = \"10.0.0.21\"\nimap_port = 1143\n",
               "[imap]\nlogin_without_tls = true\n[pop3]\nmax_errors_before_login = 3\n"));
    CPPUNIT_ASSERT_MESSAGE(cfg ? "" : cfg.err().detail, cfg.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("proxy-1"), cfg->instance.name);
    CPPUNIT_ASSERT_EQUAL(std::string("s3cret"), cfg->backend.password);
    CPPUNIT_ASSERT(cfg->backend.tls == tls_mode::starttls);
    CPPUNIT_ASSERT(cfg->backend.retry_for == std::chrono::seconds(20));
    CPPUNIT_ASSERT_EQUAL(2u, cfg->backend.max_hops);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, cfg->backend.stores.size());
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{1143}, cfg->backend.stores[0].imap_port);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{110}, cfg->backend.stores[0].pop3_port);
    CPPUNIT_ASSERT(cfg->imap.login_without_tls);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, cfg->pop3.max_errors_before_login);
    CPPUNIT_ASSERT((dir_.path() / "run" / "hamail-proxy.pid") == cfg->instance.pid_file);
  }

  void defaults_cover_a_failover() {
    auto cfg = load_proxy_config(config());
    CPPUNIT_ASSERT(cfg.has_value());
    CPPUNIT_ASSERT(cfg->backend.tls == tls_mode::none);
    CPPUNIT_ASSERT(cfg->backend.retry_for == std::chrono::seconds(15));
    CPPUNIT_ASSERT(cfg->backend.relay_idle_timeout >= std::chrono::minutes(30));
    CPPUNIT_ASSERT(!cfg->imap.login_without_tls && !cfg->pop3.login_without_tls);
  }

  void each_mistake_names_its_key() {
    struct bad {
      std::string backend_extra, extra, key;
    };
    const bad cases[] = {
        {"tls = \"sometimes\"\n", "", "backend.tls"},
        {"relay_idle_timeout = \"5m\"\n", "", "backend.relay_idle_timeout"},
        {"retry_delay = \"2s\"\nretry_max_delay = \"1s\"\n", "", "backend.retry_max_delay"},
        {"connect_timeout = \"0s\"\n", "", "backend.connect_timeout"},
        {"max_hops = 0\n", "", "backend.max_hops"},
        {"ca_file = \"relative.pem\"\n", "", "backend.ca_file"},
        {"[[backend.store]]\nname = \"Bad Name\"\naddress = \"10.0.0.1\"\n", "", "name"},
        {"[[backend.store]]\nname = \"a\"\naddress = \"10.0.0.1\"\n[[backend.store]]\nname = "
         "\"a\"\naddress = \"10.0.0.2\"\n",
         "", "listed twice"},
        {"[[backend.store]]\nname = \"a\"\naddress = \"10.0.0.1\"\nimap_port = 70000\n", "",
         "imap_port"},
        {"", "[imap]\nidle_timeout_before_login = \"0s\"\n", "imap.idle_timeout_before_login"},
    };
    for (const auto& c : cases) {
      const auto text = problems(config(c.backend_extra, c.extra));
      CPPUNIT_ASSERT_MESSAGE(c.key + " not reported in: " + text,
                             text.find(c.key) != std::string::npos);
    }
    // [proxy] trusted_proxies takes addresses only.
    const auto secret = write("proxy.secret", "s3cret\n");
    auto text = problems(write("p.toml",
                               "[proxy]\ntrusted_proxies = [\"proxy.example\"]\n"
                               "[backend]\nlogin = \"p\"\npassword_file = \"" +
                                   secret +
                                   "\"\n[directory]\ntype = \"file\"\naccounts_file = "
                                   "\"/dev/null\"\n[[listener]]\nprotocol = \"pop2\"\n"
                                   "address = \"127.0.0.1\"\nport = 0\n"));
    CPPUNIT_ASSERT_MESSAGE(text, text.find("trusted_proxies") != std::string::npos);
    // A protocol the proxy does not serve is refused, not ignored.
    CPPUNIT_ASSERT_MESSAGE(text, text.find("\"pop2\" is not served") != std::string::npos);
    // Without [backend] the proxy cannot log in anywhere.
    text = problems(write("q.toml",
                          "[directory]\ntype = \"file\"\naccounts_file = \"/dev/null\"\n"
                          "[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1\"\n"
                          "port = 0\n"));
    CPPUNIT_ASSERT_MESSAGE(text, text.find("[backend]") != std::string::npos);
  }

  void unreadable_or_empty_password_file_is_refused() {
    const auto path = config();
    CPPUNIT_ASSERT(problems(path).empty());
    write("proxy.secret", "");
    auto text = problems(path);
    CPPUNIT_ASSERT_MESSAGE(
        text, text.find("password_file: the first line is empty") != std::string::npos);
    std::filesystem::remove(dir_.path() / "proxy.secret");
    text = problems(path);
    CPPUNIT_ASSERT_MESSAGE(text, text.find("password_file: cannot read") != std::string::npos);
  }

  void smtp_routing_is_read_and_checked() {
    auto cfg = load_proxy_config(
        config({},
               "[smtp]\nlocal_domains = [\"Example.ORG\", \"b.test\"]\n"
               "smarthost = \"relay.example.org:587\"\nsmarthost_tls = \"required\"\n"
               "max_message_size = \"10MiB\"\n"));
    CPPUNIT_ASSERT_MESSAGE(cfg ? "" : cfg.err().detail, cfg.has_value());
    const auto& r = cfg->smtp_routing;
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, r.local_domains.size());
    CPPUNIT_ASSERT_EQUAL(std::string("example.org"), r.local_domains[0]);
    CPPUNIT_ASSERT_EQUAL(std::string("relay.example.org"), r.smarthost_host);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{587}, r.smarthost_port);
    CPPUNIT_ASSERT_EQUAL(std::string("required"), r.smarthost_tls);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{10} << 20, cfg->smtp.max_message_size);
    // The shared [smtp] defaults: postmaster@ the proxy's host name's domain.
    CPPUNIT_ASSERT_EQUAL(std::string("postmaster@mail.test"), cfg->smtp.postmaster);
    CPPUNIT_ASSERT_EQUAL(cfg->instance.runtime_dir / "spool", cfg->instance.spool_dir);

    auto plain = load_proxy_config(config({}, "[smtp]\nsmarthost = \"10.0.0.9\"\n"));
    CPPUNIT_ASSERT(plain.has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{25}, plain->smtp_routing.smarthost_port);

    const auto bad = problems(config({},
                                     "[smtp]\nlocal_domains = [\"user@example.org\"]\n"
                                     "smarthost = \"relay:99999\"\nsmarthost_tls = \"maybe\"\n"));
    CPPUNIT_ASSERT_MESSAGE(bad, bad.find("local_domains") != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(bad, bad.find("smarthost:") != std::string::npos ||
                                    bad.find("smarthost: ") != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(bad, bad.find("smarthost_tls") != std::string::npos);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(config_test);

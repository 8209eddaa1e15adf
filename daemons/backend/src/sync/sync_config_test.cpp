// [sync] and sync listeners in the backend's configuration file: implicit TLS and a secret
// file are required with a sync listener, addresses are kept in connection form, and the
// secret file's first line must be a usable secret.

#include <cppunit/extensions/HelperMacros.h>

#include <fstream>
#include <string>
#include <vector>

#include "hamail/backend/config.hpp"
#include "hamail/backend/sync_service.hpp"
#include "hamail/test/temp_dir.hpp"

namespace {

hamail::result<hamail::backend::backend_config> load(const hamail::test::temp_dir& dir,
                                                     const std::string& tls_mode,
                                                     const std::string& sync) {
  const auto path = dir.path() / "backend.toml";
  std::ofstream(dir.path() / "cert.pem") << "not checked here\n";
  std::ofstream(dir.path() / "key.pem") << "not checked here\n";
  std::ofstream(path) << "[store]\nname = \"store-a\"\ndata_dir = \"" << dir.path().string()
                      << "/data\"\nhostname = \"store.test\"\n\n[tls]\ncert = \""
                      << dir.path().string() << "/cert.pem\"\nkey = \"" << dir.path().string()
                      << "/key.pem\"\n\n[[listener]]\nname = \"sync\"\n"
                      << "protocol = \"sync\"\naddress = \"127.0.0.1\"\nport = 0\ntls = \""
                      << tls_mode << "\"\n\n[directory]\n"
                      << "type = \"file\"\naccounts_file = \"" << dir.path().string()
                      << "/accounts.toml\"\n\n"
                      << sync;
  return hamail::backend::load_backend_config(path);
}

bool mentions(const hamail::result<hamail::backend::backend_config>& cfg, const char* what) {
  return !cfg && cfg.err().describe().find(what) != std::string::npos;
}

}  // namespace

class sync_config_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(sync_config_test);
  CPPUNIT_TEST(sync_settings_are_read);
  CPPUNIT_TEST(sync_listener_without_implicit_tls_is_refused);
  CPPUNIT_TEST(sync_listener_without_secret_file_is_refused);
  CPPUNIT_TEST(allowed_from_must_be_addresses);
  CPPUNIT_TEST(secret_file_first_line_is_the_secret);
  CPPUNIT_TEST_SUITE_END();

 public:
  void sync_settings_are_read() {
    hamail::test::temp_dir dir;
    auto cfg = load(dir, "implicit",
                    "[sync]\nsecret_file = \"/etc/hamail/sync.secret\"\n"
                    "allowed_from = [\"192.0.2.10\", \"::ffff:192.0.2.11\", \"2001:DB8::1\"]\n"
                    "rate_limit = \"10M\"\nca_file = \"/etc/ca.pem\"\nverify_hostname = false\n"
                    "timeout = \"5s\"\n");
    CPPUNIT_ASSERT_MESSAGE(cfg ? "" : cfg.err().describe(), cfg.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/hamail/sync.secret"), cfg->sync.secret_file.string());
    const std::vector<std::string> allowed{"192.0.2.10", "192.0.2.11", "2001:db8::1"};
    CPPUNIT_ASSERT(allowed == cfg->sync.allowed_from);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(10) << 20, cfg->sync.rate_limit);
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/ca.pem"), cfg->sync.ca_file);
    CPPUNIT_ASSERT(!cfg->sync.verify_hostname);
    CPPUNIT_ASSERT(cfg->sync.timeout == std::chrono::seconds(5));
    CPPUNIT_ASSERT(hamail::backend::has_sync_listener(*cfg));
  }

  void sync_listener_without_implicit_tls_is_refused() {
    hamail::test::temp_dir dir;
    for (const char* mode : {"none", "starttls"}) {
      auto cfg = load(dir, mode, "[sync]\nsecret_file = \"/etc/hamail/sync.secret\"\n");
      CPPUNIT_ASSERT_MESSAGE(mode, mentions(cfg, "implicit"));
    }
  }

  void sync_listener_without_secret_file_is_refused() {
    hamail::test::temp_dir dir;
    CPPUNIT_ASSERT(mentions(load(dir, "implicit", ""), "secret_file"));
    CPPUNIT_ASSERT(mentions(load(dir, "implicit", "[sync]\nrate_limit = 0\n"), "secret_file"));
    CPPUNIT_ASSERT(
        mentions(load(dir, "implicit", "[sync]\nsecret_file = \"relative\"\n"), "absolute"));
  }

  void allowed_from_must_be_addresses() {
    hamail::test::temp_dir dir;
    auto cfg = load(dir, "implicit",
                    "[sync]\nsecret_file = \"/s\"\nallowed_from = [\"store-b.example\"]\n");
    CPPUNIT_ASSERT(mentions(cfg, "allowed_from"));
  }

  void secret_file_first_line_is_the_secret() {
    hamail::test::temp_dir dir;
    const auto file = dir.path() / "secret";
    std::ofstream(file) << "0123456789abcdef-x  \r\nsecond line ignored\n";
    auto s = hamail::backend::load_sync_secret(file);
    CPPUNIT_ASSERT_MESSAGE(s ? "" : s.err().describe(), s.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("0123456789abcdef-x"), *s);
    std::ofstream(file) << "short\n";
    CPPUNIT_ASSERT(!hamail::backend::load_sync_secret(file).has_value());
    std::ofstream(file) << "";
    CPPUNIT_ASSERT(!hamail::backend::load_sync_secret(file).has_value());
    CPPUNIT_ASSERT(!hamail::backend::load_sync_secret(dir.path() / "missing").has_value());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(sync_config_test);

// [smtp] trusted_proxies in the backend's configuration file: IP addresses,
// kept in the form connections show them; anything else is a configuration error.

#include <cppunit/extensions/HelperMacros.h>

#include <fstream>
#include <string>
#include <vector>

#include "hamail/backend/config.hpp"
#include "hamail/test/temp_dir.hpp"

namespace {

hamail::result<hamail::backend::backend_config> load(const hamail::test::temp_dir& dir,
                                                     const std::string& smtp) {
  const auto path = dir.path() / "backend.toml";
  std::ofstream(path) << "[store]\nname = \"store-a\"\ndata_dir = \"" << dir.path().string()
                      << "/data\"\nhostname = \"store.test\"\n\n[[listener]]\nname = \"lmtp\"\n"
                      << "protocol = \"lmtp\"\naddress = \"127.0.0.1\"\nport = 0\n\n[directory]\n"
                      << "type = \"file\"\naccounts_file = \"" << dir.path().string()
                      << "/accounts.toml\"\n\n[smtp]\n"
                      << smtp;
  return hamail::backend::load_backend_config(path);
}

}  // namespace

class smtp_config_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(smtp_config_test);
  CPPUNIT_TEST(trusted_proxies_are_addresses_in_connection_form);
  CPPUNIT_TEST(trusted_proxy_that_is_not_an_address_is_refused);
  CPPUNIT_TEST(no_trusted_proxies_by_default);
  CPPUNIT_TEST_SUITE_END();

 public:
  void trusted_proxies_are_addresses_in_connection_form() {
    hamail::test::temp_dir dir;
    auto cfg = load(dir, "trusted_proxies = [\"192.0.2.10\", \"2001:DB8::1\"]\n");
    CPPUNIT_ASSERT_MESSAGE(cfg ? "" : cfg.err().describe(), cfg.has_value());
    const std::vector<std::string> expected = {"192.0.2.10", "2001:db8::1"};
    CPPUNIT_ASSERT(cfg->smtp_trusted_proxies == expected);
  }

  void trusted_proxy_that_is_not_an_address_is_refused() {
    hamail::test::temp_dir dir;
    auto cfg = load(dir, "trusted_proxies = [\"proxy.example\"]\n");
    CPPUNIT_ASSERT(!cfg);
    CPPUNIT_ASSERT_MESSAGE(cfg.err().describe(),
                           cfg.err().describe().find("trusted_proxies") != std::string::npos);
  }

  void no_trusted_proxies_by_default() {
    hamail::test::temp_dir dir;
    auto cfg = load(dir, "max_recipients = 10\n");
    CPPUNIT_ASSERT_MESSAGE(cfg ? "" : cfg.err().describe(), cfg.has_value());
    CPPUNIT_ASSERT(cfg->smtp_trusted_proxies.empty());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(smtp_config_test);

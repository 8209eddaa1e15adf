#include <cppunit/extensions/HelperMacros.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "hamail/core/config.hpp"
#include "hamail/directory/ldap_directory.hpp"
#include "hamail/test/temp_dir.hpp"

using namespace hamail;
using namespace hamail::directory;
using namespace std::chrono_literals;

namespace {

/// Reads `text` as a config file and its [directory] table into `out`; returns
/// the document's report ("" when there was no problem).
std::string read(const std::string& text, ldap_settings& out) {
  auto doc = config::document::parse(text, "proxy.toml");
  CPPUNIT_ASSERT_MESSAGE(doc ? "" : doc.err().detail, doc.has_value());
  auto root = doc->root();
  auto section = root.table("directory");
  CPPUNIT_ASSERT(section.has_value());
  read_ldap_settings(*section, out);
  doc->finish();
  return doc->report();
}

void write_file(const std::filesystem::path& p, const std::string& text, mode_t mode = 0600) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  CPPUNIT_ASSERT(static_cast<bool>(out));
  CPPUNIT_ASSERT_EQUAL(0, ::chmod(p.c_str(), mode));
}

ldap_settings loopback_settings() {
  ldap_settings s;
  s.uris = {"ldap://127.0.0.1:1/"};
  s.base_dn = "dc=example,dc=org";
  return s;
}

std::string create_error(ldap_settings s) {
  auto d = ldap_directory::create(std::move(s));
  if (d) return "";
  CPPUNIT_ASSERT(d.err().code == errc::config_error);
  CPPUNIT_ASSERT(d.err().is_permanent());
  return d.err().detail;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

class ldap_settings_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ldap_settings_test);
  CPPUNIT_TEST(full_section_is_read);
  CPPUNIT_TEST(defaults_apply_to_absent_keys);
  CPPUNIT_TEST(every_mistake_is_reported_at_once);
  CPPUNIT_TEST(plaintext_bind_to_a_remote_server_is_refused_unless_allowed);
  CPPUNIT_TEST(unknown_key_is_reported);
  CPPUNIT_TEST(secret_file_trailing_newline_is_stripped_and_secret_not_in_errors);
  CPPUNIT_TEST(create_refuses_bad_settings);
  CPPUNIT_TEST(dn_syntax_check_agrees_with_libldap);
  CPPUNIT_TEST(uri_syntax_check_agrees_with_libldap);
  CPPUNIT_TEST_SUITE_END();

 public:
  void full_section_is_read() {
    ldap_settings s;
    const std::string report = read(R"([directory]
type = "ldap"
uris = ["ldaps://ldap1.example.org", "ldap://ldap2.example.org:389/"]
base_dn = "dc=example,dc=org"
bind_dn = "cn=hamail-proxy,ou=services,dc=example,dc=org"
bind_secret_file = "/etc/hamail/ldap.secret"
starttls = true
ca_file = "/etc/hamail/ldap-ca.pem"
timeout = "2500ms"
pool_size = 8
retry_interval = "1m"
cache_ttl = "45s"
negative_cache_ttl = "2s"
cache_size = 500
)",
                                    s);
    CPPUNIT_ASSERT_EQUAL(std::string(), report);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, s.uris.size());
    CPPUNIT_ASSERT_EQUAL(std::string("ldap://ldap2.example.org:389/"), s.uris[1]);
    CPPUNIT_ASSERT_EQUAL(std::string("dc=example,dc=org"), s.base_dn);
    CPPUNIT_ASSERT_EQUAL(std::string("cn=hamail-proxy,ou=services,dc=example,dc=org"), s.bind_dn);
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/hamail/ldap.secret"), s.bind_secret_file.string());
    CPPUNIT_ASSERT(s.starttls);
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/hamail/ldap-ca.pem"), s.ca_file);
    CPPUNIT_ASSERT(s.timeout == 2500ms);
    CPPUNIT_ASSERT_EQUAL(std::size_t{8}, s.pool_size);
    CPPUNIT_ASSERT(s.retry_interval == 60s);
    CPPUNIT_ASSERT(s.cache.positive_ttl == 45s);
    CPPUNIT_ASSERT(s.cache.negative_ttl == 2s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{500}, s.cache.max_entries);
  }

  void defaults_apply_to_absent_keys() {
    ldap_settings s;
    const std::string report = read(R"([directory]
type = "ldap"
uris = ["ldapi://%2Frun%2Fslapd%2Fldapi"]
base_dn = "dc=example,dc=org"
)",
                                    s);
    CPPUNIT_ASSERT_EQUAL(std::string(), report);
    CPPUNIT_ASSERT(s.bind_dn.empty());
    CPPUNIT_ASSERT(!s.starttls);
    CPPUNIT_ASSERT(s.timeout == 5s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{4}, s.pool_size);
    CPPUNIT_ASSERT(s.cache.positive_ttl == 30s);
    CPPUNIT_ASSERT(s.cache.negative_ttl == 5s);
  }

  void every_mistake_is_reported_at_once() {
    ldap_settings s;
    const std::string report = read(R"([directory]
type = "file"
uris = ["http://example.org", "ldap://a ldap://b"]
base_dn = "not a dn"
bind_dn = "cn=x,dc=example,dc=org"
timeout = "0s"
pool_size = 0
)",
                                    s);
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "proxy.toml:2: directory.type"));
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "\"http://example.org\""));
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "one server per URI"));
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "directory.base_dn: not a valid DN"));
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "directory.bind_secret_file: required"));
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "directory.timeout: must be more than 0"));
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "directory.pool_size"));
  }

  void plaintext_bind_to_a_remote_server_is_refused_unless_allowed() {
    const std::string text = R"([directory]
uris = ["ldap://ldap1.example.org", "ldap://127.0.0.1:389"]
base_dn = "dc=example,dc=org"
bind_dn = "cn=x,dc=example,dc=org"
bind_secret_file = "/etc/hamail/ldap.secret"
)";
    ldap_settings s;
    std::string report = read(text, s);
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "\"ldap://ldap1.example.org\" would carry"));
    CPPUNIT_ASSERT_MESSAGE(report, !contains(report, "127.0.0.1"));  // loopback is fine
    ldap_settings allowed;
    CPPUNIT_ASSERT_EQUAL(std::string(), read(text + "allow_plaintext_bind = true\n", allowed));
    ldap_settings tls;
    CPPUNIT_ASSERT_EQUAL(std::string(), read(text + "starttls = true\n", tls));
  }

  void unknown_key_is_reported() {
    ldap_settings s;
    const std::string report = read(R"([directory]
uris = ["ldap://127.0.0.1"]
base_dn = "dc=example,dc=org"
bind_password = "secret"
)",
                                    s);
    CPPUNIT_ASSERT_MESSAGE(report, contains(report, "directory.bind_password"));
  }

  void secret_file_trailing_newline_is_stripped_and_secret_not_in_errors() {
    hamail::test::temp_dir dir;
    const auto secret = dir.path() / "secret";
    auto s = loopback_settings();
    s.bind_dn = "cn=admin,dc=example,dc=org";
    s.bind_secret_file = secret;
    write_file(secret, "s3cr3t-value\n");
    CPPUNIT_ASSERT_EQUAL(std::string(), create_error(s));
    write_file(secret, "s3cr3t-value\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string(), create_error(s));
    write_file(secret, "s3cr3t-value\nsecond line\n");
    std::string e = create_error(s);
    CPPUNIT_ASSERT_MESSAGE(e, contains(e, "more than one line"));
    CPPUNIT_ASSERT_MESSAGE(e, !contains(e, "s3cr3t"));
    write_file(secret, "\n");
    e = create_error(s);
    CPPUNIT_ASSERT_MESSAGE(e, contains(e, "is empty"));
    s.bind_secret_file = dir.path() / "missing";
    e = create_error(s);
    CPPUNIT_ASSERT_MESSAGE(e, contains(e, "cannot read bind_secret_file"));
  }

  void create_refuses_bad_settings() {
    auto s = loopback_settings();
    s.uris.clear();
    CPPUNIT_ASSERT(contains(create_error(s), "uris"));
    s = loopback_settings();
    s.uris = {"ldap://ldap1.example.org"};
    s.bind_dn = "cn=admin,dc=example,dc=org";
    s.bind_secret_file = "/nonexistent";
    CPPUNIT_ASSERT(contains(create_error(s), "plaintext"));
    s = loopback_settings();
    s.base_dn = "";
    CPPUNIT_ASSERT(contains(create_error(s), "base_dn"));
    s = loopback_settings();
    s.bind_dn = "cn=admin,dc=example,dc=org";
    CPPUNIT_ASSERT(contains(create_error(s), "bind_secret_file is required"));
    s = loopback_settings();
    s.pool_size = 0;
    CPPUNIT_ASSERT(contains(create_error(s), "pool_size"));
    s = loopback_settings();
    s.ca_file = "/nonexistent/ca.pem";
    CPPUNIT_ASSERT(contains(create_error(s), "ca_file"));
    CPPUNIT_ASSERT_EQUAL(std::string(), create_error(loopback_settings()));
  }

  void dn_syntax_check_agrees_with_libldap() {
    // The config reader's check (no libldap) and libldap's parser, run by create(),
    // must agree on these, good and bad.
    for (const std::string dn :
         {"dc=example,dc=org", "cn=a\\,b+uid=x,dc=example,dc=org", "1.2.840.1=x,dc=org",
          "cn=with space,dc=org", "cn=a=b,dc=org", "cn=\\23hash,dc=org", "cn=\\C3\\BC,dc=org"}) {
      CPPUNIT_ASSERT_MESSAGE(dn, !dn_syntax_problem(dn));
      auto s = loopback_settings();
      s.base_dn = dn;
      CPPUNIT_ASSERT_EQUAL_MESSAGE(dn, std::string(), create_error(s));
    }
    for (const std::string dn : {"", "not a dn", "cn=x,", "cn=x\\", "cn=x\\4", "=x,dc=org", "c n=x",
                                 "cn=\"q\",dc=org", "cn=a;b", "cn=x,,dc=org"}) {
      CPPUNIT_ASSERT_MESSAGE(dn, dn_syntax_problem(dn).has_value());
      auto s = loopback_settings();
      s.base_dn = dn;
      CPPUNIT_ASSERT_MESSAGE(dn, !create_error(s).empty());
    }
  }

  void uri_syntax_check_agrees_with_libldap() {
    bool tls = false;
    bool local = false;
    for (const std::string uri :
         {"ldap://ldap1.example.org", "ldaps://ldap1.example.org:636/", "ldap://127.0.0.1:389",
          "ldap://[::1]:389", "ldapi://", "ldapi://%2Frun%2Fslapd%2Fldapi", "LDAP://host"}) {
      CPPUNIT_ASSERT_MESSAGE(uri, !ldap_uri_problem(uri, tls, local));
      auto s = loopback_settings();
      s.uris = {uri};
      s.bind_dn.clear();
      CPPUNIT_ASSERT_EQUAL_MESSAGE(uri, std::string(), create_error(s));
    }
    CPPUNIT_ASSERT(!ldap_uri_problem("ldaps://h", tls, local) && tls && !local);
    // Stricter than libldap, which takes any port number here and fails to connect later.
    CPPUNIT_ASSERT(ldap_uri_problem("ldap://h:70000", tls, local).has_value());
    CPPUNIT_ASSERT(!ldap_uri_problem("ldap://[::1]", tls, local) && !tls && local);
    for (const std::string uri : {"http://example.org", "ldap://", "ldap://a ldap://b",
                                  "ldap://a,ldap://b", "example.org", "ldap://h:x"}) {
      CPPUNIT_ASSERT_MESSAGE(uri, ldap_uri_problem(uri, tls, local).has_value());
      auto s = loopback_settings();
      s.uris = {uri};
      CPPUNIT_ASSERT_MESSAGE(uri, !create_error(s).empty());
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ldap_settings_test);

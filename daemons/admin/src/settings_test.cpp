#include "hamail/admin/settings.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <map>

#include "hamail/admin/errors.hpp"
#include "hamail/admin/output.hpp"

using namespace hamail::admin;

namespace {

std::function<const char*(const char*)> env_of(const std::map<std::string, std::string>& m) {
  return [m](const char* name) -> const char* {
    const auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}

exit_status status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const admin_error& e) {
    return e.status();
  }
  return exit_status::ok;
}

const char* file_text =
    "[ldap]\n"
    "uris = [\"ldap://one\", \"ldap://two\"]\n"
    "base_dn = \"dc=file,dc=org\"\n"
    "bind_dn = \"cn=file\"\n"
    "bind_secret_file = \"/file/secret\"\n"
    "starttls = true\n"
    "timeout = \"3s\"\n"
    "[accounts]\n"
    "password_scheme = \"ARGON2ID\"\n";

}  // namespace

class settings_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(settings_test);
  CPPUNIT_TEST(file_alone_is_used);
  CPPUNIT_TEST(environment_beats_file_and_flags_beat_environment);
  CPPUNIT_TEST(environment_uri_list_splits_on_spaces_and_commas);
  CPPUNIT_TEST(missing_uri_or_base_is_a_usage_error);
  CPPUNIT_TEST(bind_dn_without_secret_file_is_a_usage_error);
  CPPUNIT_TEST(unknown_key_and_bad_scheme_are_config_errors);
  CPPUNIT_TEST(json_output_is_escaped_and_ordered);
  CPPUNIT_TEST(table_pads_columns);
  CPPUNIT_TEST_SUITE_END();

 public:
  void file_alone_is_used() {
    const auto s = resolve_settings(parse_settings_file(file_text, "a.toml"), env_of({}), {});
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, s.uris.size());
    CPPUNIT_ASSERT_EQUAL(std::string("ldap://two"), s.uris[1]);
    CPPUNIT_ASSERT_EQUAL(std::string("dc=file,dc=org"), s.base_dn);
    CPPUNIT_ASSERT(s.starttls);
    CPPUNIT_ASSERT_EQUAL(3000L, static_cast<long>(s.timeout.count()));
    CPPUNIT_ASSERT_EQUAL(std::string("ARGON2ID"), s.password_scheme);
  }
  void environment_beats_file_and_flags_beat_environment() {
    const auto env = env_of({{"HAMAIL_LDAP_URI", "ldap://env"},
                             {"HAMAIL_LDAP_BASE_DN", "dc=env"},
                             {"HAMAIL_LDAP_BIND_DN", "cn=env"},
                             {"HAMAIL_LDAP_BIND_SECRET_FILE", "/env/secret"}});
    auto s = resolve_settings(parse_settings_file(file_text, "a.toml"), env, {});
    CPPUNIT_ASSERT_EQUAL(std::string("ldap://env"), s.uris.at(0));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, s.uris.size());
    CPPUNIT_ASSERT_EQUAL(std::string("dc=env"), s.base_dn);
    CPPUNIT_ASSERT_EQUAL(std::string("/env/secret"), s.bind_secret_file);
    settings_overrides flags;
    flags.uris = {"ldap://flag1", "ldap://flag2"};
    flags.base_dn = "dc=flag";
    flags.bind_dn = "cn=flag";
    flags.starttls = false;
    s = resolve_settings(parse_settings_file(file_text, "a.toml"), env, flags);
    CPPUNIT_ASSERT_EQUAL(std::string("ldap://flag1"), s.uris.at(0));
    CPPUNIT_ASSERT_EQUAL(std::string("dc=flag"), s.base_dn);
    CPPUNIT_ASSERT_EQUAL(std::string("cn=flag"), s.bind_dn);
    CPPUNIT_ASSERT_EQUAL(std::string("/env/secret"), s.bind_secret_file);
    CPPUNIT_ASSERT(!s.starttls);
  }
  void environment_uri_list_splits_on_spaces_and_commas() {
    const auto s = resolve_settings(
        {},
        env_of({{"HAMAIL_LDAP_URI", " ldap://a, ldap://b ldap://c"}, {"HAMAIL_LDAP_BASE_DN", "x"}}),
        {});
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, s.uris.size());
    CPPUNIT_ASSERT_EQUAL(std::string("ldap://c"), s.uris[2]);
  }
  void missing_uri_or_base_is_a_usage_error() {
    CPPUNIT_ASSERT(exit_status::usage == status_of([] {
                     (void)resolve_settings({}, env_of({{"HAMAIL_LDAP_BASE_DN", "x"}}), {});
                   }));
    CPPUNIT_ASSERT(exit_status::usage == status_of([] {
                     (void)resolve_settings({}, env_of({{"HAMAIL_LDAP_URI", "ldap://a"}}), {});
                   }));
  }
  void bind_dn_without_secret_file_is_a_usage_error() {
    settings_overrides flags;
    flags.uris = {"ldap://a"};
    flags.base_dn = "x";
    flags.bind_dn = "cn=admin";
    CPPUNIT_ASSERT(exit_status::usage ==
                   status_of([&] { (void)resolve_settings({}, env_of({}), flags); }));
  }
  void unknown_key_and_bad_scheme_are_config_errors() {
    CPPUNIT_ASSERT(exit_status::config_error == status_of([] {
                     (void)parse_settings_file("[ldap]\nurl = [\"x\"]\n", "a.toml");
                   }));
    CPPUNIT_ASSERT(exit_status::config_error == status_of([] {
                     (void)parse_settings_file("[accounts]\npassword_scheme = \"MD5\"\n", "a.toml");
                   }));
    CPPUNIT_ASSERT(exit_status::config_error ==
                   status_of([] { (void)parse_settings_file("[ldap\n", "a.toml"); }));
    try {
      (void)parse_settings_file("[ldap]\nbase_dn = \"x\"\nstarttls = \"yes\"\n", "a.toml");
      CPPUNIT_FAIL("accepted a string for starttls");
    } catch (const admin_error& e) {
      CPPUNIT_ASSERT(std::string(e.what()).find("a.toml:3") != std::string::npos);
    }
  }
  void json_output_is_escaped_and_ordered() {
    const json_value v = json_value::object{{"b", 1}, {"a", "q\"\\\n\x01"}, {"n", json_value()}};
    CPPUNIT_ASSERT_EQUAL(
        std::string("{\n  \"b\": 1,\n  \"a\": \"q\\\"\\\\\\n\\u0001\",\n  \"n\": null\n}"),
        v.dump());
  }
  void table_pads_columns() {
    CPPUNIT_ASSERT_EQUAL(std::string("A    BB\nxyz  1\n"),
                         format_table({"A", "BB"}, {{"xyz", "1"}}));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(settings_test);

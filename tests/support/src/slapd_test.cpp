#include "hamail/test/slapd.hpp"

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <ldap.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hamail/test/ports.hpp"
#include "hamail/test/process.hpp"
#include "hamail/test/temp_dir.hpp"

namespace {

using hamail::test::port_accepts;
using hamail::test::run_command;
using hamail::test::slapd_instance;
using hamail::test::ssha_hash;
using hamail::test::temp_dir;

const std::string alice_dn = "uid=alice,ou=people,dc=example,dc=org";
const std::string alice_password = "alice's password";

// An auxiliary class in OpenLDAP's experimental OID arc, to prove that
// `schema_ldifs` are loaded.
const char* const test_schema = R"(dn: cn=hamailtest,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: hamailtest
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'hamailTestStore'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.4203.666.11.99.2 NAME 'hamailTestAccount'
  SUP top AUXILIARY MAY hamailTestStore )
)";

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
  CPPUNIT_ASSERT_MESSAGE("cannot write " + p.string(), static_cast<bool>(out));
}

std::string people_ldif() {
  return "dn: ou=people,dc=example,dc=org\n"
         "objectClass: organizationalUnit\n"
         "ou: people\n"
         "\n"
         "dn: " +
         alice_dn +
         "\n"
         "objectClass: inetOrgPerson\n"
         "objectClass: hamailTestAccount\n"
         "uid: alice\n"
         "cn: Alice Example\n"
         "sn: Example\n"
         "mail: alice@example.org\n"
         "hamailTestStore: store-a\n"
         "userPassword: " +
         ssha_hash(alice_password) + "\n";
}

/// The LDAP handle of one libldap connection, unbound on destruction.
class ldap_conn {
 public:
  explicit ldap_conn(const std::string& uri) {
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, ldap_initialize(&ld_, uri.c_str()));
    int version = LDAP_VERSION3;
    CPPUNIT_ASSERT_EQUAL(LDAP_OPT_SUCCESS,
                         ldap_set_option(ld_, LDAP_OPT_PROTOCOL_VERSION, &version));
    timeval timeout{5, 0};
    CPPUNIT_ASSERT_EQUAL(LDAP_OPT_SUCCESS,
                         ldap_set_option(ld_, LDAP_OPT_NETWORK_TIMEOUT, &timeout));
  }
  ~ldap_conn() {
    if (ld_ != nullptr) ldap_unbind_ext_s(ld_, nullptr, nullptr);
  }
  ldap_conn(const ldap_conn&) = delete;
  ldap_conn& operator=(const ldap_conn&) = delete;

  /// Simple bind; returns the LDAP result code.
  int bind(const std::string& dn, const std::string& password) {
    berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
    return ldap_sasl_bind_s(ld_, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  }

  /// One entry found by a subtree search: its DN and the values of `attr`.
  struct found {
    std::string dn;
    std::vector<std::string> values;
  };

  /// Subtree search; returns the LDAP result code and fills `out`.
  int search(const std::string& base, const std::string& filter, const char* attr,
             std::vector<found>& out) {
    std::array<char*, 2> attrs{const_cast<char*>(attr), nullptr};
    timeval timeout{5, 0};
    LDAPMessage* res = nullptr;
    const int rc = ldap_search_ext_s(ld_, base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(),
                                     attrs.data(), 0, nullptr, nullptr, &timeout, 0, &res);
    std::unique_ptr<LDAPMessage, decltype(&ldap_msgfree)> guard(res, &ldap_msgfree);
    if (rc != LDAP_SUCCESS) return rc;
    for (LDAPMessage* e = ldap_first_entry(ld_, res); e != nullptr; e = ldap_next_entry(ld_, e)) {
      found f;
      char* dn = ldap_get_dn(ld_, e);
      f.dn = dn;
      ldap_memfree(dn);
      berval** vals = ldap_get_values_len(ld_, e, attr);
      for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i) {
        f.values.emplace_back(vals[i]->bv_val, vals[i]->bv_len);
      }
      ldap_value_free_len(vals);
      out.push_back(std::move(f));
    }
    return rc;
  }

 private:
  LDAP* ld_ = nullptr;
};

/// Values joined with '|', for equality assertions with readable failures.
std::string joined(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : "|") + v;
  return out;
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

}  // namespace

// At global scope so that tests are named "slapd_test::<name>" for the runner's filter.
class slapd_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(slapd_test);
  CPPUNIT_TEST(ldapsearch_cli_finds_user_from_data_ldif);
  CPPUNIT_TEST(libldap_binds_as_root_and_finds_user);
  CPPUNIT_TEST(wrong_root_password_is_refused);
  CPPUNIT_TEST(user_binds_with_ssha_password_but_not_another);
  CPPUNIT_TEST(extra_schema_ldif_is_loaded);
  CPPUNIT_TEST(user_password_is_hidden_from_anonymous);
  CPPUNIT_TEST(config_is_readable_by_root_dn_only);
  CPPUNIT_TEST(stop_ends_process_and_frees_port);
  CPPUNIT_TEST(destructor_stops_slapd);
  CPPUNIT_TEST(two_instances_run_at_once);
  CPPUNIT_TEST(invalid_data_ldif_throws_with_slapadd_output);
  CPPUNIT_TEST(non_empty_dir_is_refused);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    // Keep libldap and the CLI away from the machine's ldap.conf and ~/.ldaprc.
    ::setenv("LDAPNOINIT", "1", 1);
    dir_.emplace();
    write(dir_->path() / "schema.ldif", test_schema);
    write(dir_->path() / "people.ldif", people_ldif());
    std::filesystem::create_directory(dir_->path() / "slapd");
  }

  void tearDown() override {
    slapd_.reset();
    dir_.reset();
  }

  void ldapsearch_cli_finds_user_from_data_ldif() {
    start();
    const auto& o = slapd_->opts();
    auto r = run_command({"ldapsearch", "-x", "-LLL", "-H", slapd_->uri(), "-D", o.root_dn, "-w",
                          o.root_password, "-b", o.suffix, "(uid=alice)", "mail"},
                         std::chrono::seconds{20});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.err, 0, r.exit_code);
    CPPUNIT_ASSERT_EQUAL("dn: " + alice_dn + "\nmail: alice@example.org\n\n", r.out);

    auto none = run_command({"ldapsearch", "-x", "-LLL", "-H", slapd_->uri(), "-D", o.root_dn, "-w",
                             o.root_password, "-b", o.suffix, "(uid=bob)", "mail"},
                            std::chrono::seconds{20});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(none.err, 0, none.exit_code);
    CPPUNIT_ASSERT_EQUAL(std::string(), none.out);
  }

  void libldap_binds_as_root_and_finds_user() {
    start();
    ldap_conn ld(slapd_->uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS,
                         ld.bind(slapd_->opts().root_dn, slapd_->opts().root_password));
    std::vector<ldap_conn::found> found;
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS,
                         ld.search(slapd_->opts().suffix, "(uid=alice)", "mail", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT_EQUAL(alice_dn, found[0].dn);
    CPPUNIT_ASSERT_EQUAL(std::string("alice@example.org"), joined(found[0].values));
    // The base entry made from the suffix is there too.
    found.clear();
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS,
                         ld.search(slapd_->opts().suffix, "(objectClass=dcObject)", "dc", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT_EQUAL(std::string("dc=example,dc=org"), found[0].dn);
  }

  void wrong_root_password_is_refused() {
    start();
    ldap_conn ld(slapd_->uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_INVALID_CREDENTIALS, ld.bind(slapd_->opts().root_dn, "not-secret"));
    auto r = run_command({"ldapsearch", "-x", "-H", slapd_->uri(), "-D", slapd_->opts().root_dn,
                          "-w", "not-secret", "-b", slapd_->opts().suffix, "(uid=alice)"},
                         std::chrono::seconds{20});
    CPPUNIT_ASSERT_EQUAL(LDAP_INVALID_CREDENTIALS, r.exit_code);
  }

  void user_binds_with_ssha_password_but_not_another() {
    start();
    ldap_conn ld(slapd_->uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, ld.bind(alice_dn, alice_password));
    ldap_conn wrong(slapd_->uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_INVALID_CREDENTIALS, wrong.bind(alice_dn, "alice's passwore"));
  }

  void extra_schema_ldif_is_loaded() {
    start();
    ldap_conn ld(slapd_->uri());
    std::vector<ldap_conn::found> found;
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, ld.search(slapd_->opts().suffix, "(hamailTestStore=STORE-A)",
                                                 "hamailTestStore", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT_EQUAL(std::string("store-a"), joined(found[0].values));
  }

  void user_password_is_hidden_from_anonymous() {
    start();
    ldap_conn anon(slapd_->uri());
    std::vector<ldap_conn::found> found;
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS,
                         anon.search(slapd_->opts().suffix, "(uid=alice)", "userPassword", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT(found[0].values.empty());
    ldap_conn root(slapd_->uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, root.bind(slapd_->opts().root_dn, "secret"));
    found.clear();
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS,
                         root.search(slapd_->opts().suffix, "(uid=alice)", "userPassword", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found[0].values.size());
    CPPUNIT_ASSERT_EQUAL(std::string("{SSHA}"), found[0].values[0].substr(0, 6));
  }

  void config_is_readable_by_root_dn_only() {
    start();
    ldap_conn root(slapd_->uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, root.bind(slapd_->opts().root_dn, "secret"));
    std::vector<ldap_conn::found> found;
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, root.search("cn=config", "(olcSuffix=dc=example,dc=org)",
                                                   "olcDbMaxSize", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT_EQUAL(std::string("67108864"), joined(found[0].values));

    ldap_conn anon(slapd_->uri());
    found.clear();
    const int rc = anon.search("cn=config", "(objectClass=*)", "cn", found);
    CPPUNIT_ASSERT_MESSAGE(ldap_err2string(rc), rc == LDAP_NO_SUCH_OBJECT || found.empty());
    CPPUNIT_ASSERT(found.empty());
  }

  void stop_ends_process_and_frees_port() {
    start();
    const pid_t pid = slapd_->pid();
    const auto port = slapd_->port();
    CPPUNIT_ASSERT(pid > 0);
    CPPUNIT_ASSERT(!process_gone(pid));
    CPPUNIT_ASSERT(port_accepts("127.0.0.1", port));
    slapd_->stop();
    CPPUNIT_ASSERT(process_gone(pid));
    CPPUNIT_ASSERT(!port_accepts("127.0.0.1", port));
    CPPUNIT_ASSERT_EQUAL(pid_t{-1}, slapd_->pid());
    slapd_->stop();  // idempotent
    CPPUNIT_ASSERT(process_gone(pid));
  }

  void destructor_stops_slapd() {
    start();
    const pid_t pid = slapd_->pid();
    const auto port = slapd_->port();
    slapd_.reset();
    CPPUNIT_ASSERT(process_gone(pid));
    CPPUNIT_ASSERT(!port_accepts("127.0.0.1", port));
  }

  void two_instances_run_at_once() {
    start();
    temp_dir other_dir;
    const auto other_data = other_dir.path() / "other.ldif";
    write(other_data,
          "dn: uid=bob,dc=other,dc=test\n"
          "objectClass: account\n"
          "uid: bob\n");
    slapd_instance::options o;
    o.suffix = "dc=other,dc=test";
    o.root_dn = "cn=manager,dc=other,dc=test";
    o.root_password = "other secret";
    o.data_ldifs = {other_data};
    std::filesystem::create_directory(other_dir.path() / "slapd");
    slapd_instance other(other_dir.path() / "slapd", o);

    CPPUNIT_ASSERT(slapd_->port() != other.port());
    CPPUNIT_ASSERT(slapd_->pid() != other.pid());
    ldap_conn a(slapd_->uri());
    ldap_conn b(other.uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, a.bind(slapd_->opts().root_dn, "secret"));
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, b.bind(o.root_dn, o.root_password));
    // Each holds its own tree and not the other's.
    std::vector<ldap_conn::found> found;
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, b.search(o.suffix, "(uid=bob)", "uid", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    found.clear();
    CPPUNIT_ASSERT_EQUAL(LDAP_NO_SUCH_OBJECT,
                         b.search("dc=example,dc=org", "(uid=alice)", "uid", found));
    CPPUNIT_ASSERT_EQUAL(LDAP_NO_SUCH_OBJECT, a.search(o.suffix, "(uid=bob)", "uid", found));

    // Stopping one leaves the other serving.
    const pid_t first_pid = slapd_->pid();
    slapd_->stop();
    CPPUNIT_ASSERT(process_gone(first_pid));
    ldap_conn b2(other.uri());
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, b2.bind(o.root_dn, o.root_password));
    found.clear();
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, b2.search(o.suffix, "(uid=bob)", "uid", found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
  }

  void invalid_data_ldif_throws_with_slapadd_output() {
    // inetOrgPerson requires sn: slapadd's schema check must refuse the entry.
    const auto bad = dir_->path() / "bad.ldif";
    write(bad,
          "dn: uid=carol,dc=example,dc=org\n"
          "objectClass: inetOrgPerson\n"
          "uid: carol\n"
          "cn: Carol\n");
    slapd_instance::options o;
    o.data_ldifs = {bad};
    try {
      slapd_instance s(dir_->path() / "slapd", o);
      CPPUNIT_FAIL("slapd_instance started with an entry that violates the schema");
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      CPPUNIT_ASSERT_MESSAGE(what, what.find("slapadd") != std::string::npos);
      CPPUNIT_ASSERT_MESSAGE(what, what.find("sn") != std::string::npos);
    }
  }

  void non_empty_dir_is_refused() {
    write(dir_->path() / "slapd" / "leftover", "x");
    CPPUNIT_ASSERT_THROW(slapd_instance(dir_->path() / "slapd", {}), std::runtime_error);
    CPPUNIT_ASSERT_THROW(slapd_instance(dir_->path() / "missing", {}), std::runtime_error);
  }

 private:
  void start() {
    slapd_instance::options o;
    o.schema_ldifs = {dir_->path() / "schema.ldif"};
    o.data_ldifs = {dir_->path() / "people.ldif"};
    slapd_.emplace(dir_->path() / "slapd", o);
  }

  std::optional<temp_dir> dir_;
  std::optional<slapd_instance> slapd_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(slapd_test);

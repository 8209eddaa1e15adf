#pragma once

// Helpers shared by the directory's slapd tests: paths of the shipped schema and
// sample tree, a slapd loaded with them, and a small libldap client for checks
// and for changing a running server as its root DN.

#include <cppunit/TestAssert.h>
#include <ldap.h>
#include <sys/types.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hamail/test/slapd.hpp"

namespace hamail::test {

/// The repository's ldap-schema/ directory (compile definition from CMake).
inline std::filesystem::path ldap_schema_dir() { return HAMAIL_LDAP_SCHEMA_DIR; }

/// Options for a slapd holding misc + hamail schema and the sample tree, plus
/// `extra_data` LDIF files.
inline slapd_instance::options sample_slapd_options(
    std::vector<std::filesystem::path> extra_data = {}) {
  // Keep libldap away from the machine's ldap.conf and ~/.ldaprc.
  ::setenv("LDAPNOINIT", "1", 1);
  slapd_instance::options o;
  o.schema_ldifs = {"/etc/ldap/schema/misc.ldif", ldap_schema_dir() / "hamail.ldif"};
  o.data_ldifs = {ldap_schema_dir() / "sample-tree.ldif"};
  for (auto& p : extra_data) o.data_ldifs.push_back(std::move(p));
  return o;
}

/// Attribute values of one entry, attribute names as the server spelled them.
struct test_entry {
  std::string dn;
  std::map<std::string, std::vector<std::string>> values;
};

/// A synchronous libldap connection for test set-up and checks.
class test_ldap {
 public:
  /// Connects to `uri` and binds as `dn` (anonymously when empty).
  test_ldap(const std::string& uri, const std::string& dn = {}, const std::string& password = {}) {
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, ldap_initialize(&ld_, uri.c_str()));
    const int version = LDAP_VERSION3;
    CPPUNIT_ASSERT_EQUAL(LDAP_OPT_SUCCESS,
                         ldap_set_option(ld_, LDAP_OPT_PROTOCOL_VERSION, &version));
    const timeval timeout{10, 0};
    CPPUNIT_ASSERT_EQUAL(LDAP_OPT_SUCCESS,
                         ldap_set_option(ld_, LDAP_OPT_NETWORK_TIMEOUT, &timeout));
    CPPUNIT_ASSERT_EQUAL(LDAP_OPT_SUCCESS, ldap_set_option(ld_, LDAP_OPT_TIMEOUT, &timeout));
    berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
    const int rc =
        ldap_sasl_bind_s(ld_, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
    CPPUNIT_ASSERT_EQUAL_MESSAGE("bind as " + dn, LDAP_SUCCESS, rc);
  }
  ~test_ldap() {
    if (ld_ != nullptr) ldap_unbind_ext_s(ld_, nullptr, nullptr);
  }
  test_ldap(const test_ldap&) = delete;
  test_ldap& operator=(const test_ldap&) = delete;

  /// Searches and returns the entries; fails the test on an LDAP error.
  std::vector<test_entry> search(const std::string& base, int scope, const std::string& filter,
                                 std::vector<std::string> attributes = {}) {
    std::vector<char*> attrs;
    for (auto& a : attributes) attrs.push_back(a.data());
    attrs.push_back(nullptr);
    timeval timeout{10, 0};
    LDAPMessage* res = nullptr;
    const int rc = ldap_search_ext_s(ld_, base.c_str(), scope, filter.c_str(),
                                     attributes.empty() ? nullptr : attrs.data(), 0, nullptr,
                                     nullptr, &timeout, 0, &res);
    std::unique_ptr<LDAPMessage, int (*)(LDAPMessage*)> guard(res, ldap_msgfree);
    CPPUNIT_ASSERT_EQUAL_MESSAGE("search " + filter + " under " + base, LDAP_SUCCESS, rc);
    std::vector<test_entry> out;
    for (LDAPMessage* e = ldap_first_entry(ld_, res); e != nullptr; e = ldap_next_entry(ld_, e)) {
      test_entry entry;
      char* dn = ldap_get_dn(ld_, e);
      entry.dn = dn;
      ldap_memfree(dn);
      BerElement* ber = nullptr;
      for (char* a = ldap_first_attribute(ld_, e, &ber); a != nullptr;
           a = ldap_next_attribute(ld_, e, ber)) {
        berval** vals = ldap_get_values_len(ld_, e, a);
        auto& list = entry.values[a];
        for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i) {
          list.emplace_back(vals[i]->bv_val, vals[i]->bv_len);
        }
        ldap_value_free_len(vals);
        ldap_memfree(a);
      }
      if (ber != nullptr) ber_free(ber, 0);
      out.push_back(std::move(entry));
    }
    return out;
  }

  /// One modification: LDAP_MOD_ADD, LDAP_MOD_REPLACE or LDAP_MOD_DELETE.
  struct change {
    int op;
    std::string attribute;
    std::vector<std::string> values;
  };

  /// Modifies `dn`; returns the LDAP result code.
  int modify(const std::string& dn, std::vector<change> changes) {
    std::vector<std::vector<char*>> value_ptrs(changes.size());
    std::vector<LDAPMod> mods(changes.size());
    std::vector<LDAPMod*> mod_ptrs;
    for (std::size_t i = 0; i < changes.size(); ++i) {
      for (auto& v : changes[i].values) value_ptrs[i].push_back(v.data());
      value_ptrs[i].push_back(nullptr);
      mods[i].mod_op = changes[i].op;
      mods[i].mod_type = changes[i].attribute.data();
      mods[i].mod_values = value_ptrs[i].data();
      mod_ptrs.push_back(&mods[i]);
    }
    mod_ptrs.push_back(nullptr);
    return ldap_modify_ext_s(ld_, dn.c_str(), mod_ptrs.data(), nullptr, nullptr);
  }

  /// Adds `dn` with `attributes`; returns the LDAP result code.
  int add(const std::string& dn,
          std::vector<std::pair<std::string, std::vector<std::string>>> attributes) {
    std::vector<change> as_changes;
    for (auto& [name, values] : attributes) as_changes.push_back({LDAP_MOD_ADD, name, values});
    std::vector<std::vector<char*>> value_ptrs(as_changes.size());
    std::vector<LDAPMod> mods(as_changes.size());
    std::vector<LDAPMod*> mod_ptrs;
    for (std::size_t i = 0; i < as_changes.size(); ++i) {
      for (auto& v : as_changes[i].values) value_ptrs[i].push_back(v.data());
      value_ptrs[i].push_back(nullptr);
      mods[i].mod_op = LDAP_MOD_ADD;
      mods[i].mod_type = as_changes[i].attribute.data();
      mods[i].mod_values = value_ptrs[i].data();
      mod_ptrs.push_back(&mods[i]);
    }
    mod_ptrs.push_back(nullptr);
    return ldap_add_ext_s(ld_, dn.c_str(), mod_ptrs.data(), nullptr, nullptr);
  }

  /// Simple bind on this connection; returns the LDAP result code.
  int bind(const std::string& dn, const std::string& password) {
    berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
    return ldap_sasl_bind_s(ld_, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  }

 private:
  LDAP* ld_ = nullptr;
};

/// A test_ldap bound as the instance's root DN (which is also cn=config's).
inline std::unique_ptr<test_ldap> root_ldap(const slapd_instance& s) {
  return std::make_unique<test_ldap>(s.uri(), s.opts().root_dn, s.opts().root_password);
}

}  // namespace hamail::test

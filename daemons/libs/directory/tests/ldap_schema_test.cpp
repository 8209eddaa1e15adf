// ldap-schema/ against SCHEMA-CONTRACT.md and a real slapd: both schema forms
// define what the contract says, slapd accepts them, and the sample tree loads
// and answers the contract's lookup filters.

#include <cppunit/extensions/HelperMacros.h>
#include <ldap_schema.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hamail/directory/password.hpp"
#include "hamail/test/process.hpp"
#include "hamail/test/temp_dir.hpp"
#include "ldap_test_support.hpp"

using namespace hamail::test;

namespace {

const std::string suffix = "dc=example,dc=org";

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  CPPUNIT_ASSERT_MESSAGE("cannot read " + p.string(), static_cast<bool>(in));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string collapse_spaces(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\n';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

/// One attribute row of the contract's table.
struct contract_attribute {
  std::string name;
  std::string oid;       // full OID
  std::string syntax;    // numeric syntax OID
  std::string equality;  // matching rule name, or "" when the contract names none
};

/// One object class of the contract.
struct contract_class {
  std::string name;
  std::string oid;
  std::string kind;  // AUXILIARY or STRUCTURAL
  std::set<std::string> must;
  std::set<std::string> may;
};

struct contract {
  std::string arc;
  std::vector<contract_attribute> attributes;
  std::vector<contract_class> classes;
};

std::set<std::string> name_list(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    if (word != "$") out.insert(word);
  }
  return out;
}

/// Parses ldap-schema/SCHEMA-CONTRACT.md: the OID arc, the attribute table and
/// the object class list.
contract parse_contract() {
  const std::string text = read_text(ldap_schema_dir() / "SCHEMA-CONTRACT.md");
  contract c;
  std::smatch m;
  CPPUNIT_ASSERT(std::regex_search(text, m, std::regex("OID arc: `([0-9.]+)`")));
  c.arc = m[1];
  // The contract's ".1.1.N" and ".1.2.N" hang off the enterprise number
  // (1.3.6.1.4.1.32473), whose ".1" is the hamail arc: hamailOwningStore is
  // 1.3.6.1.4.1.32473.1.1.1, attributes are <arc>.1.N and classes <arc>.2.N.
  const std::string enterprise = c.arc.substr(0, c.arc.rfind('.'));
  const std::map<std::string, std::string> syntaxes = {
      {"Directory String", "1.3.6.1.4.1.1466.115.121.1.15"},
      {"IA5 String", "1.3.6.1.4.1.1466.115.121.1.26"},
      {"Integer", "1.3.6.1.4.1.1466.115.121.1.27"}};
  const std::regex row(R"(\| (hamail\w+) \| (\.[0-9.]+) \| ([A-Za-z0-9 ]+?)(?:, (\w+))? \|)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), row); it != std::sregex_iterator();
       ++it) {
    const auto& r = *it;
    CPPUNIT_ASSERT_MESSAGE("unknown syntax " + r[3].str(), syntaxes.count(r[3]) == 1);
    c.attributes.push_back({r[1], enterprise + r[2].str(), syntaxes.at(r[3]), r[4]});
  }
  // Object classes span lines: join the text first.
  const std::string flat = collapse_spaces(text);
  const std::regex cls(
      R"(`(hamail\w+)` \((\.[0-9.]+)\) (AUXILIARY|STRUCTURAL), MUST `([^`]+)`, MAY `([^`]+)`)");
  for (auto it = std::sregex_iterator(flat.begin(), flat.end(), cls); it != std::sregex_iterator();
       ++it) {
    const auto& r = *it;
    c.classes.push_back({r[1], enterprise + r[2].str(), r[3], name_list(r[4]), name_list(r[5])});
  }
  return c;
}

/// Definitions in a schema file: "olcAttributeTypes"/"attributetype" etc.
/// mapped to one kind, each definition with whitespace collapsed.
std::set<std::string> definitions_in_schema_file(const std::string& text) {
  std::set<std::string> out;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) out.insert(collapse_spaces(current));
    current.clear();
  };
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      flush();
    } else if (line[0] == ' ' || line[0] == '\t') {
      current += " " + line;
    } else {
      flush();
      current = line;
    }
  }
  flush();
  std::set<std::string> defs;
  for (const auto& d : out) {
    const auto space = d.find(' ');
    const std::string keyword = d.substr(0, space);
    const std::string body = d.substr(space + 1);
    if (keyword == "objectIdentifier") defs.insert("oid " + body);
    if (keyword == "attributetype") defs.insert("at " + body);
    if (keyword == "objectclass") defs.insert("oc " + body);
  }
  return defs;
}

std::set<std::string> definitions_in_ldif(const std::string& text) {
  // LDIF folding: a line starting with one space continues the previous line,
  // without that space.
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    if (!line.empty() && line[0] == ' ' && !lines.empty()) {
      lines.back() += line.substr(1);
    } else {
      lines.push_back(line);
    }
  }
  std::set<std::string> defs;
  for (const auto& l : lines) {
    const auto colon = l.find(": ");
    if (colon == std::string::npos) continue;
    const std::string key = l.substr(0, colon);
    const std::string body = collapse_spaces(l.substr(colon + 2));
    if (key == "olcObjectIdentifier") defs.insert("oid " + body);
    if (key == "olcAttributeTypes") defs.insert("at " + body);
    if (key == "olcObjectClasses") defs.insert("oc " + body);
  }
  return defs;
}

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const auto& v : s) out += (out.empty() ? "" : " ") + v;
  return out;
}

std::set<std::string> names_of(char** list) {
  std::set<std::string> out;
  for (char** p = list; p != nullptr && *p != nullptr; ++p) out.insert(*p);
  return out;
}

const std::map<std::string, std::string> documented_passwords = {
    {"alice", "alice-example-password"},
    {"bob", "bob-example-password"},
    {"carol", "carol-example-password"}};

}  // namespace

class ldap_schema_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ldap_schema_test);
  CPPUNIT_TEST(contract_lists_every_attribute_and_class);
  CPPUNIT_TEST(schema_and_ldif_forms_define_the_same_schema);
  CPPUNIT_TEST(slapd_conf_form_passes_slaptest);
  CPPUNIT_TEST(loaded_schema_and_sample_tree_follow_the_contract);
  CPPUNIT_TEST_SUITE_END();

 public:
  void contract_lists_every_attribute_and_class() {
    const auto c = parse_contract();
    CPPUNIT_ASSERT_EQUAL(std::string("1.3.6.1.4.1.32473.1"), c.arc);
    CPPUNIT_ASSERT_EQUAL(std::size_t{15}, c.attributes.size());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, c.classes.size());
    CPPUNIT_ASSERT_EQUAL(std::string("1.3.6.1.4.1.32473.1.1.1"), c.attributes.front().oid);
  }

  void schema_and_ldif_forms_define_the_same_schema() {
    const auto from_schema =
        definitions_in_schema_file(read_text(ldap_schema_dir() / "hamail.schema"));
    const auto from_ldif = definitions_in_ldif(read_text(ldap_schema_dir() / "hamail.ldif"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{3 + 15 + 2}, from_schema.size());
    std::vector<std::string> differences;
    std::set_symmetric_difference(from_schema.begin(), from_schema.end(), from_ldif.begin(),
                                  from_ldif.end(), std::back_inserter(differences));
    std::string report;
    for (const auto& d : differences) report += "\n  " + d;
    CPPUNIT_ASSERT_MESSAGE("definitions differ:" + report, differences.empty());
  }

  void slapd_conf_form_passes_slaptest() {
    temp_dir dir;
    std::filesystem::create_directory(dir.path() / "db");
    std::ofstream conf(dir.path() / "slapd.conf");
    for (const char* name : {"core", "cosine", "inetorgperson", "misc"}) {
      conf << "include /etc/ldap/schema/" << name << ".schema\n";
    }
    conf << "include " << (ldap_schema_dir() / "hamail.schema").string() << "\n"
         << "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
         << "database mdb\nsuffix \"" << suffix << "\"\ndirectory " << (dir.path() / "db").string()
         << "\n";
    conf.close();
    // -u: check the configuration without opening the (still empty) database.
    const std::string conf_file = (dir.path() / "slapd.conf").string();
    auto r = run_command({"/usr/sbin/slaptest", "-u", "-f", conf_file}, std::chrono::seconds{30});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.out + r.err, 0, r.exit_code);
    // The sample tree loads under the slapd.conf form too (slapadd checks the schema).
    std::ofstream base(dir.path() / "base.ldif");
    base << "dn: " << suffix << "\nobjectClass: dcObject\nobjectClass: organization\n"
         << "dc: example\no: example\n";
    base.close();
    for (const auto& ldif : {dir.path() / "base.ldif", ldap_schema_dir() / "sample-tree.ldif"}) {
      r = run_command({"/usr/sbin/slapadd", "-f", conf_file, "-l", ldif.string()},
                      std::chrono::seconds{30});
      CPPUNIT_ASSERT_EQUAL_MESSAGE(ldif.string() + ": " + r.out + r.err, 0, r.exit_code);
    }
    r = run_command({"/usr/sbin/slapcat", "-f", conf_file, "-a", "(objectClass=hamailAccount)"},
                    std::chrono::seconds{30});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.err, 0, r.exit_code);
    for (const auto& uid : {"alice", "bob", "carol"}) {
      CPPUNIT_ASSERT_MESSAGE(r.out, r.out.find(std::string("dn: uid=") + uid) != std::string::npos);
    }
  }

  void loaded_schema_and_sample_tree_follow_the_contract() {
    temp_dir dir;
    slapd_instance slapd(dir.path(), sample_slapd_options());
    auto ld = root_ldap(slapd);
    check_subschema(*ld);
    check_sample_tree(*ld);
    check_contract_filters(*ld);
    check_schema_enforcement(*ld);
  }

 private:
  /// The running server's subschema has every contract attribute and class with
  /// the contract's OID, syntax, matching rule and SINGLE-VALUE.
  static void check_subschema(test_ldap& ld) {
    const auto c = parse_contract();
    auto sub = ld.search("cn=Subschema", LDAP_SCOPE_BASE, "(objectClass=subschema)",
                         {"attributeTypes", "objectClasses"});
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, sub.size());
    std::map<std::string, LDAPAttributeType*> types;
    for (const auto& text : sub[0].values["attributeTypes"]) {
      int code = 0;
      const char* err = nullptr;
      LDAPAttributeType* at =
          ldap_str2attributetype(text.c_str(), &code, &err, LDAP_SCHEMA_ALLOW_ALL);
      if (at == nullptr) continue;
      bool kept = false;
      for (const auto& n : names_of(at->at_names)) {
        if (n.rfind("hamail", 0) == 0) {
          types[n] = at;
          kept = true;
        }
      }
      if (!kept) ldap_attributetype_free(at);
    }
    for (const auto& a : c.attributes) {
      CPPUNIT_ASSERT_MESSAGE(a.name + " missing from the subschema", types.count(a.name) == 1);
      const LDAPAttributeType* at = types[a.name];
      CPPUNIT_ASSERT_EQUAL_MESSAGE(a.name, a.oid, std::string(at->at_oid));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(a.name, a.syntax,
                                   std::string(at->at_syntax_oid ? at->at_syntax_oid : ""));
      CPPUNIT_ASSERT_MESSAGE(a.name + " must be SINGLE-VALUE", at->at_single_value != 0);
      const std::string equality = at->at_equality_oid ? at->at_equality_oid : "";
      if (!a.equality.empty()) CPPUNIT_ASSERT_EQUAL_MESSAGE(a.name, a.equality, equality);
      // Every attribute can be used in an equality filter.
      CPPUNIT_ASSERT_MESSAGE(a.name + " has no EQUALITY rule", !equality.empty());
    }
    CPPUNIT_ASSERT_EQUAL_MESSAGE("only the contract's attributes", c.attributes.size(),
                                 types.size());
    for (auto& [name, at] : types) ldap_attributetype_free(at);

    std::map<std::string, LDAPObjectClass*> classes;
    for (const auto& text : sub[0].values["objectClasses"]) {
      int code = 0;
      const char* err = nullptr;
      LDAPObjectClass* oc = ldap_str2objectclass(text.c_str(), &code, &err, LDAP_SCHEMA_ALLOW_ALL);
      if (oc == nullptr) continue;
      const auto names = names_of(oc->oc_names);
      if (!names.empty() && names.begin()->rfind("hamail", 0) == 0) {
        classes[*names.begin()] = oc;
      } else {
        ldap_objectclass_free(oc);
      }
    }
    for (const auto& k : c.classes) {
      CPPUNIT_ASSERT_MESSAGE(k.name + " missing from the subschema", classes.count(k.name) == 1);
      const LDAPObjectClass* oc = classes[k.name];
      CPPUNIT_ASSERT_EQUAL_MESSAGE(k.name, k.oid, std::string(oc->oc_oid));
      const int kind = k.kind == "AUXILIARY" ? LDAP_SCHEMA_AUXILIARY : LDAP_SCHEMA_STRUCTURAL;
      CPPUNIT_ASSERT_EQUAL_MESSAGE(k.name, kind, oc->oc_kind);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(k.name + " MUST", joined(k.must),
                                   joined(names_of(oc->oc_at_oids_must)));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(k.name + " MAY", joined(k.may),
                                   joined(names_of(oc->oc_at_oids_may)));
    }
    CPPUNIT_ASSERT_EQUAL(c.classes.size(), classes.size());
    for (auto& [name, oc] : classes) ldap_objectclass_free(oc);
  }

  /// Two stores and three accounts (one with aliases, one locked), mailHost equal
  /// to the owning store's service host, {SSHA512} passwords as documented.
  static void check_sample_tree(test_ldap& ld) {
    auto stores =
        ld.search("ou=stores," + suffix, LDAP_SCOPE_ONELEVEL, "(objectClass=hamailStore)");
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, stores.size());
    std::map<std::string, std::string> host_of_store;
    for (auto& s : stores) {
      const std::string name = s.values["hamailStoreName"].at(0);
      CPPUNIT_ASSERT_EQUAL("hamailStoreName=" + name + ",ou=stores," + suffix, s.dn);
      host_of_store[name] = s.values["hamailServiceHost"].at(0);
    }
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, host_of_store.count("store-a"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, host_of_store.count("store-b"));

    auto accounts =
        ld.search("ou=accounts," + suffix, LDAP_SCOPE_ONELEVEL, "(objectClass=hamailAccount)");
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, accounts.size());
    int locked = 0;
    int with_aliases = 0;
    for (auto& a : accounts) {
      const std::string uid = a.values["uid"].at(0);
      CPPUNIT_ASSERT_EQUAL("uid=" + uid + ",ou=accounts," + suffix, a.dn);
      const auto& classes = a.values["objectClass"];
      for (const char* needed : {"inetOrgPerson", "hamailAccount", "inetLocalMailRecipient"}) {
        CPPUNIT_ASSERT_MESSAGE(uid + " lacks " + needed,
                               std::count(classes.begin(), classes.end(), needed) == 1);
      }
      const std::string mail = a.values["mail"].at(0);
      const auto& local = a.values["mailLocalAddress"];
      CPPUNIT_ASSERT_MESSAGE(uid + ": mail must be a mailLocalAddress",
                             std::count(local.begin(), local.end(), mail) == 1);
      if (local.size() > 1) ++with_aliases;
      const std::string store = a.values["hamailOwningStore"].at(0);
      CPPUNIT_ASSERT_MESSAGE(uid + ": unknown store " + store, host_of_store.count(store) == 1);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(uid, host_of_store[store], a.values["mailHost"].at(0));
      if (a.values.count("hamailAccountState") != 0 &&
          a.values["hamailAccountState"].at(0) == "locked") {
        ++locked;
      }
      const std::string hash = a.values["userPassword"].at(0);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(uid, std::string("{SSHA512}"), hash.substr(0, 9));
      auto ok = hamail::directory::verify_password(hash, documented_passwords.at(uid));
      CPPUNIT_ASSERT_MESSAGE(uid + "'s documented password", ok && *ok);
      auto wrong = hamail::directory::verify_password(hash, documented_passwords.at(uid) + "x");
      CPPUNIT_ASSERT(wrong && !*wrong);
    }
    CPPUNIT_ASSERT_EQUAL(1, locked);
    CPPUNIT_ASSERT_EQUAL(1, with_aliases);
  }

  /// The lookup filters of the contract find the sample accounts.
  static void check_contract_filters(test_ldap& ld) {
    auto by_alias =
        ld.search(suffix, LDAP_SCOPE_SUBTREE,
                  "(&(objectClass=hamailAccount)(mailLocalAddress=A.Smith@example.org))", {"uid"});
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, by_alias.size());
    CPPUNIT_ASSERT_EQUAL(std::string("alice"), by_alias[0].values["uid"].at(0));
    for (const std::string login : {"bob", "bob@example.org", "BOB@EXAMPLE.ORG"}) {
      auto found = ld.search(
          suffix, LDAP_SCOPE_SUBTREE,
          "(&(objectClass=hamailAccount)(|(uid=" + login + ")(mail=" + login + ")))", {"uid"});
      CPPUNIT_ASSERT_EQUAL_MESSAGE(login, std::size_t{1}, found.size());
      CPPUNIT_ASSERT_EQUAL(std::string("bob"), found[0].values["uid"].at(0));
    }
    auto store = ld.search(suffix, LDAP_SCOPE_SUBTREE,
                           "(&(objectClass=hamailStore)(hamailStoreName=STORE-B))", {"cn"});
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, store.size());
  }

  /// slapd enforces MUST and SINGLE-VALUE from the schema.
  static void check_schema_enforcement(test_ldap& ld) {
    const std::string alice = "uid=alice,ou=accounts," + suffix;
    CPPUNIT_ASSERT_EQUAL(LDAP_CONSTRAINT_VIOLATION,
                         ld.modify(alice, {{LDAP_MOD_ADD, "hamailOwningStore", {"store-b"}}}));
    CPPUNIT_ASSERT_EQUAL(LDAP_OBJECT_CLASS_VIOLATION,
                         ld.modify(alice, {{LDAP_MOD_DELETE, "hamailOwningStore", {}}}));
    CPPUNIT_ASSERT_EQUAL(
        LDAP_OBJECT_CLASS_VIOLATION,
        ld.add("hamailStoreName=store-c,ou=stores," + suffix,
               {{"objectClass", {"hamailStore"}}, {"hamailStoreName", {"store-c"}}}));
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, ld.add("hamailStoreName=store-c,ou=stores," + suffix,
                                              {{"objectClass", {"hamailStore"}},
                                               {"hamailStoreName", {"store-c"}},
                                               {"hamailServiceHost", {"store-c.example.org"}}}));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ldap_schema_test);

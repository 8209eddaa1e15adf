#include "hamail/directory/memory_directory.hpp"

#include <cppunit/extensions/HelperMacros.h>

using namespace hamail::directory;

namespace {

account make(std::string id, std::string addr, std::vector<std::string> aliases = {}) {
  account a;
  a.id = std::move(id);
  a.primary_address = std::move(addr);
  a.aliases = std::move(aliases);
  a.owning_store = "store-a";
  return a;
}

}  // namespace

class memory_directory_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(memory_directory_test);
  CPPUNIT_TEST(finds_by_primary_address_and_alias_case_insensitively);
  CPPUNIT_TEST(alias_is_not_a_login_name);
  CPPUNIT_TEST(id_lookup_finds_only_the_id);
  CPPUNIT_TEST(unknown_address_is_empty_not_error);
  CPPUNIT_TEST(duplicate_address_is_refused_and_nothing_written);
  CPPUNIT_TEST(replacing_an_account_forgets_old_aliases);
  CPPUNIT_TEST(outage_is_a_temporary_error);
  CPPUNIT_TEST(subaddress_is_stripped_only_when_present);
  CPPUNIT_TEST(account_state_names_round_trip);
  CPPUNIT_TEST_SUITE_END();

 public:
  void finds_by_primary_address_and_alias_case_insensitively() {
    memory_directory d;
    CPPUNIT_ASSERT(d.put(make("alice", "alice@example.org", {"a.smith@example.org"})).has_value());
    auto r = d.lookup_address("ALICE@Example.ORG");
    CPPUNIT_ASSERT(r && r->has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("alice"), (*r)->id);
    r = d.lookup_address("a.smith@example.org");
    CPPUNIT_ASSERT(r && r->has_value() && (*r)->id == "alice");
  }
  void alias_is_not_a_login_name() {
    memory_directory d;
    CPPUNIT_ASSERT(d.put(make("alice", "alice@example.org", {"a.smith@example.org"})).has_value());
    auto r = d.lookup_login("a.smith@example.org");
    CPPUNIT_ASSERT(r && !r->has_value());
    r = d.lookup_login("alice@example.org");
    CPPUNIT_ASSERT(r && r->has_value());
  }
  void id_lookup_finds_only_the_id() {
    memory_directory d;
    CPPUNIT_ASSERT(d.put(make("alice", "alice@example.org")).has_value());
    auto r = d.lookup_id("alice");
    CPPUNIT_ASSERT(r && r->has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("store-a"), (*r)->owning_store);
    // The id is not a login, and a login is not an id.
    r = d.lookup_login("alice");
    CPPUNIT_ASSERT(r && !r->has_value());
    r = d.lookup_id("alice@example.org");
    CPPUNIT_ASSERT(r && !r->has_value());
    d.set_unavailable(true);
    r = d.lookup_id("alice");
    CPPUNIT_ASSERT(!r && r.err().is_temporary());
  }
  void unknown_address_is_empty_not_error() {
    memory_directory d;
    auto r = d.lookup_address("nobody@example.org");
    CPPUNIT_ASSERT(r.has_value());
    CPPUNIT_ASSERT(!r->has_value());
  }
  void duplicate_address_is_refused_and_nothing_written() {
    memory_directory d;
    CPPUNIT_ASSERT(d.put(make("alice", "alice@example.org")).has_value());
    auto r = d.put(make("bob", "bob@example.org", {"Alice@example.org"}));
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT(r.err().code == hamail::errc::already_exists);
    auto bob = d.lookup_address("bob@example.org");
    CPPUNIT_ASSERT(bob && !bob->has_value());
  }
  void replacing_an_account_forgets_old_aliases() {
    memory_directory d;
    CPPUNIT_ASSERT(d.put(make("alice", "alice@example.org", {"old@example.org"})).has_value());
    CPPUNIT_ASSERT(d.put(make("alice", "alice@example.org", {"new@example.org"})).has_value());
    auto r = d.lookup_address("old@example.org");
    CPPUNIT_ASSERT(r && !r->has_value());
    r = d.lookup_address("new@example.org");
    CPPUNIT_ASSERT(r && r->has_value());
  }
  void outage_is_a_temporary_error() {
    memory_directory d;
    CPPUNIT_ASSERT(d.put(make("alice", "alice@example.org")).has_value());
    d.set_unavailable(true);
    auto r = d.lookup_address("alice@example.org");
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT(r.err().is_temporary());
  }
  void subaddress_is_stripped_only_when_present() {
    CPPUNIT_ASSERT_EQUAL(std::string("user@example.org"),
                         *strip_subaddress("user+tag+more@example.org", "+"));
    CPPUNIT_ASSERT(!strip_subaddress("user@example.org", "+"));
    CPPUNIT_ASSERT(!strip_subaddress("+tag@example.org", "+"));
    CPPUNIT_ASSERT(!strip_subaddress("user+tag", "+"));
    CPPUNIT_ASSERT_EQUAL(std::string("a@b"), *strip_subaddress("a-x@b", "+-"));
  }
  void account_state_names_round_trip() {
    for (auto s : {account_state::active, account_state::locked, account_state::moving,
                   account_state::disabled}) {
      CPPUNIT_ASSERT(parse_account_state(to_string(s)) == s);
    }
    CPPUNIT_ASSERT(!parse_account_state("Active"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(memory_directory_test);

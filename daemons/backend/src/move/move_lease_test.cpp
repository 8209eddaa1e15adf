// The end of a locked fence's lease: with every directory server naming this store the fence
// goes (an abandoned move), with any naming another it becomes moved (the switch happened),
// and while a server cannot answer or does not know the account it stays. Reviewed with a
// fake directory and a fake clock.

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/backend/account_gate.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hamail::errc;
using hamail::error;
using hamail::backend::account_gate;
using hamail::backend::decide_lease_end;
using hamail::backend::fence_state;
using hamail::backend::lease_decision;
using hamail::backend::placement_answer;
using action = lease_decision::action_t;
using kind_t = fence_state::kind_t;

namespace {

placement_answer names(const std::string& store) { return std::optional<std::string>(store); }
placement_answer unknown() { return std::optional<std::string>(); }
placement_answer unreachable() {
  return error::temporary(errc::unavailable, "directory unavailable", "ldap://b: timed out");
}

/// Directory servers whose answers a test sets per account.
class fake_placement final : public hamail::backend::placement_source {
 public:
  asio::awaitable<std::vector<placement_answer>> ask(std::string account) override {
    ++asked[account];
    co_return answers[account];
  }
  std::map<std::string, std::vector<placement_answer>> answers;
  std::map<std::string, int> asked;
};

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "hamail-lease-XXXXXX").string();
    CPPUNIT_ASSERT(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct fixture {
  fixture() {
    account_gate::options o;
    o.fsync = false;
    o.now = [this] { return now; };
    auto g = account_gate::open(dir.path, "store-a", blocking, o);
    CPPUNIT_ASSERT(g.has_value());
    gate = std::move(*g);
  }
  ~fixture() { blocking.join(); }

  template <class T>
  T run(asio::awaitable<T> a) {
    std::optional<T> out;
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    while (!out) {
      if (io.stopped()) io.restart();
      io.run_one_for(2ms);
    }
    return std::move(*out);
  }
  void review() {
    bool done = false;
    asio::co_spawn(io, gate->review_leases(directory), [&](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
      done = true;
    });
    while (!done) {
      if (io.stopped()) io.restart();
      io.run_one_for(2ms);
    }
  }
  std::string file(const std::string& account) {
    std::ifstream in(dir.path / "fences" / account);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  temp_dir dir;
  asio::io_context io;
  asio::thread_pool blocking{1};
  std::chrono::system_clock::time_point now =
      std::chrono::system_clock::time_point(std::chrono::seconds(1764770000));
  fake_placement directory;
  std::unique_ptr<account_gate> gate;
};

}  // namespace

class move_lease_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(move_lease_test);
  CPPUNIT_TEST(every_server_naming_this_store_unlocks);
  CPPUNIT_TEST(any_server_naming_another_store_marks_moved);
  CPPUNIT_TEST(unreachable_or_unknown_keeps_the_fence);
  CPPUNIT_TEST(review_acts_only_on_expired_locked_fences);
  CPPUNIT_TEST(review_unlocks_an_abandoned_move);
  CPPUNIT_TEST(review_marks_a_switched_move_moved);
  CPPUNIT_TEST(review_keeps_the_fence_while_the_directory_is_down);
  CPPUNIT_TEST_SUITE_END();

 public:
  void every_server_naming_this_store_unlocks() {
    const std::vector<placement_answer> all = {names("store-a"), names("store-a")};
    CPPUNIT_ASSERT(decide_lease_end(all, "store-a").action == action::unlock);
    const std::vector<placement_answer> one = {names("store-a")};
    CPPUNIT_ASSERT(decide_lease_end(one, "store-a").action == action::unlock);
  }

  void any_server_naming_another_store_marks_moved() {
    // A provider that has the switch wins over one that has not replicated it yet, and
    // over one that cannot answer.
    const std::vector<placement_answer> a = {names("store-a"), names("store-b")};
    auto d = decide_lease_end(a, "store-a");
    CPPUNIT_ASSERT(d.action == action::mark_moved);
    CPPUNIT_ASSERT_EQUAL(std::string("store-b"), d.store);
    const std::vector<placement_answer> b = {unreachable(), names("store-b")};
    CPPUNIT_ASSERT(decide_lease_end(b, "store-a").action == action::mark_moved);
  }

  void unreachable_or_unknown_keeps_the_fence() {
    const std::vector<std::vector<placement_answer>> cases = {
        {},
        {unreachable()},
        {names("store-a"), unreachable()},
        {unknown()},
        {names("store-a"), unknown()},
        {names("")},
    };
    for (const auto& c : cases) {
      auto d = decide_lease_end(c, "store-a");
      CPPUNIT_ASSERT_MESSAGE(d.why, d.action == action::keep);
      CPPUNIT_ASSERT(!d.why.empty());
    }
  }

  void review_acts_only_on_expired_locked_fences() {
    fixture f;
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    CPPUNIT_ASSERT(f.run(f.gate->mark_moved("bob", "store-b")).has_value());
    f.directory.answers["alice"] = {names("store-a")};
    f.directory.answers["bob"] = {names("store-a")};
    f.now += 59s;
    f.review();
    CPPUNIT_ASSERT(f.directory.asked.empty());
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::locked);
    CPPUNIT_ASSERT(f.gate->current("bob").kind == kind_t::moved);
  }

  void review_unlocks_an_abandoned_move() {
    fixture f;
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    f.directory.answers["alice"] = {names("store-a"), names("store-a")};
    f.now += 61s;
    f.review();
    CPPUNIT_ASSERT_EQUAL(1, f.directory.asked["alice"]);
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::none);
    CPPUNIT_ASSERT(!fs::exists(f.dir.path / "fences" / "alice"));
    CPPUNIT_ASSERT(f.gate->enter("alice", nullptr).refused == kind_t::none);
  }

  void review_marks_a_switched_move_moved() {
    fixture f;
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    f.directory.answers["alice"] = {names("store-a"), names("store-b")};
    f.now += 61s;
    f.review();
    auto s = f.gate->current("alice");
    CPPUNIT_ASSERT(s.kind == kind_t::moved);
    CPPUNIT_ASSERT_EQUAL(std::string("store-b"), s.store);
    CPPUNIT_ASSERT_EQUAL(std::string("moved store-b\n"), f.file("alice"));
  }

  void review_keeps_the_fence_while_the_directory_is_down() {
    fixture f;
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    f.directory.answers["alice"] = {names("store-a"), unreachable()};
    f.now += 61s;
    f.review();
    f.review();
    CPPUNIT_ASSERT_EQUAL(2, f.directory.asked["alice"]);
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::locked);
    CPPUNIT_ASSERT_EQUAL(std::string("locked store-b 1764770060\n"), f.file("alice"));
    // Back: the next review settles it.
    f.directory.answers["alice"] = {names("store-a"), names("store-a")};
    f.review();
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::none);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(move_lease_test);

// The account gate on its own: fences survive a restart (written durably, loaded at start),
// a damaged fence file never unfences its account, enter() is refused while an account is
// fenced, lock() waits for work in progress and fails (unfenced) when it stays, and the
// transitions between none, locked and moved are the ADR's.

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/backend/account_gate.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hamail::errc;
using hamail::result;
using hamail::backend::account_gate;
using hamail::backend::fence_state;
using kind_t = fence_state::kind_t;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "hamail-gate-XXXXXX").string();
    CPPUNIT_ASSERT(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

struct fixture {
  fixture() { reopen(); }
  ~fixture() { blocking.join(); }

  /// (Re)opens the gate on the same data directory, as a daemon restart does.
  void reopen() {
    gate.reset();
    account_gate::options o;
    o.fsync = false;
    o.drain_wait = drain_wait;
    o.now = [this] { return now; };
    auto g = account_gate::open(dir.path, "store-a", blocking, o);
    CPPUNIT_ASSERT_MESSAGE(g ? "" : g.err().describe(), g.has_value());
    gate = std::move(*g);
  }

  /// Runs `a` on the loop to its end; while it runs, `meanwhile` is called once after
  /// `after` (to release a token, say).
  template <class T>
  T run(asio::awaitable<T> a, std::function<void()> meanwhile = {},
        std::chrono::milliseconds after = 0ms) {
    std::optional<T> out;
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    const auto start = std::chrono::steady_clock::now();
    bool called = !meanwhile;
    while (!out) {
      CPPUNIT_ASSERT(std::chrono::steady_clock::now() - start < 20s);
      if (!called && std::chrono::steady_clock::now() - start >= after) {
        called = true;
        meanwhile();
      }
      if (io.stopped()) io.restart();
      io.run_one_for(2ms);
    }
    elapsed = std::chrono::steady_clock::now() - start;
    return std::move(*out);
  }

  fs::path fence(const std::string& account) const { return dir.path / "fences" / account; }

  temp_dir dir;
  asio::io_context io;
  asio::thread_pool blocking{1};
  std::chrono::milliseconds drain_wait = 5s;
  std::chrono::system_clock::time_point now =
      std::chrono::system_clock::time_point(std::chrono::seconds(1764770000));
  std::chrono::steady_clock::duration elapsed{};
  std::unique_ptr<account_gate> gate;
};

}  // namespace

class move_account_gate_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(move_account_gate_test);
  CPPUNIT_TEST(fences_survive_a_restart);
  CPPUNIT_TEST(damaged_fence_file_keeps_the_account_fenced);
  CPPUNIT_TEST(leftovers_and_foreign_names_are_not_fences);
  CPPUNIT_TEST(enter_is_refused_while_fenced);
  CPPUNIT_TEST(lock_waits_for_work_in_progress);
  CPPUNIT_TEST(lock_fails_and_unfences_when_work_stays);
  CPPUNIT_TEST(lock_is_idempotent_and_renews_the_lease);
  CPPUNIT_TEST(transitions_between_locked_and_moved);
  CPPUNIT_TEST(bad_arguments_are_refused);
  CPPUNIT_TEST_SUITE_END();

 public:
  void fences_survive_a_restart() {
    fixture f;
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    CPPUNIT_ASSERT(f.run(f.gate->mark_moved("bob", "store-c")).has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("locked store-b 1764770060\n"), read_file(f.fence("alice")));
    CPPUNIT_ASSERT_EQUAL(std::string("moved store-c\n"), read_file(f.fence("bob")));
    f.reopen();
    auto a = f.gate->current("alice");
    CPPUNIT_ASSERT(a.kind == kind_t::locked);
    CPPUNIT_ASSERT_EQUAL(std::string("store-b"), a.store);
    CPPUNIT_ASSERT(a.until == f.now + 60s);
    auto b = f.gate->current("bob");
    CPPUNIT_ASSERT(b.kind == kind_t::moved);
    CPPUNIT_ASSERT_EQUAL(std::string("store-c"), b.store);
    CPPUNIT_ASSERT(f.gate->current("carol").kind == kind_t::none);
    CPPUNIT_ASSERT_EQUAL(std::size_t(2), f.gate->fences().size());
  }

  void damaged_fence_file_keeps_the_account_fenced() {
    fixture f;
    fs::create_directories(f.dir.path / "fences");
    write_file(f.fence("alice"), "locked store-b soon\n");
    write_file(f.fence("bob"), "");
    f.reopen();
    for (const char* account : {"alice", "bob"}) {
      auto s = f.gate->current(account);
      // Locked with a lease long run out: the lease review asks the directory.
      CPPUNIT_ASSERT_MESSAGE(account, s.kind == kind_t::locked);
      CPPUNIT_ASSERT_MESSAGE(account, s.until < f.now);
      CPPUNIT_ASSERT_MESSAGE(account, !f.gate->enter(account, nullptr).token);
    }
    // The file stays as it was for the operator to see.
    CPPUNIT_ASSERT_EQUAL(std::string("locked store-b soon\n"), read_file(f.fence("alice")));
  }

  void leftovers_and_foreign_names_are_not_fences() {
    fixture f;
    write_file(f.dir.path / "fences" / ".alice.tmp", "moved store-b\n");
    write_file(f.dir.path / "fences" / "Not-An-Id", "moved store-b\n");
    f.reopen();
    CPPUNIT_ASSERT(f.gate->fences().empty());
    CPPUNIT_ASSERT(!fs::exists(f.dir.path / "fences" / ".alice.tmp"));
  }

  void enter_is_refused_while_fenced() {
    fixture f;
    {
      auto in = f.gate->enter("alice", nullptr);
      CPPUNIT_ASSERT(in.refused == kind_t::none);
      CPPUNIT_ASSERT(static_cast<bool>(in.token));
      CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.gate->work_in_progress("alice"));
    }
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), f.gate->work_in_progress("alice"));
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    auto in = f.gate->enter("alice", nullptr);
    CPPUNIT_ASSERT(in.refused == kind_t::locked);
    CPPUNIT_ASSERT_EQUAL(std::string("store-b"), in.store);
    CPPUNIT_ASSERT(!in.token);
    CPPUNIT_ASSERT(f.gate->enter("bob", nullptr).refused == kind_t::none);
    CPPUNIT_ASSERT(f.run(f.gate->mark_moved("alice", "store-b")).has_value());
    CPPUNIT_ASSERT(f.gate->enter("alice", nullptr).refused == kind_t::moved);
  }

  void lock_waits_for_work_in_progress() {
    fixture f;
    auto in = f.gate->enter("alice", nullptr);
    auto token = std::move(in.token);
    auto r = f.run(
        f.gate->lock("alice", "store-b", 60s), [&] { token.reset(); }, 200ms);
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
    // It returned only once the token was released, and only then was the fence written.
    CPPUNIT_ASSERT(f.elapsed >= 200ms);
    CPPUNIT_ASSERT(fs::exists(f.fence("alice")));
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::locked);
  }

  void lock_fails_and_unfences_when_work_stays() {
    fixture f;
    f.drain_wait = 300ms;
    f.reopen();
    auto in = f.gate->enter("alice", nullptr);
    auto r = f.run(f.gate->lock("alice", "store-b", 60s));
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT(r.err().is_temporary());
    CPPUNIT_ASSERT(f.elapsed >= 300ms);
    // Not fenced: no file, nothing in memory, logins admitted again.
    CPPUNIT_ASSERT(!fs::exists(f.fence("alice")));
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::none);
    CPPUNIT_ASSERT(f.gate->enter("alice", nullptr).refused == kind_t::none);
    // The session that was asked to end knows why.
    CPPUNIT_ASSERT(in.token.ended_by_fence());
  }

  void lock_is_idempotent_and_renews_the_lease() {
    fixture f;
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    f.now += 30s;
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    CPPUNIT_ASSERT(f.gate->current("alice").until == f.now + 60s);
    CPPUNIT_ASSERT_EQUAL(std::string("locked store-b 1764770090\n"), read_file(f.fence("alice")));
  }

  void transitions_between_locked_and_moved() {
    fixture f;
    // unlock and forget of an unfenced account: nothing to do.
    CPPUNIT_ASSERT(f.run(f.gate->unlock("alice")).has_value());
    CPPUNIT_ASSERT(f.run(f.gate->forget("alice")).has_value());
    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    // forget is for moved fences only.
    auto r = f.run(f.gate->forget("alice"));
    CPPUNIT_ASSERT(!r && r.err().code == errc::permission_denied);
    CPPUNIT_ASSERT(f.run(f.gate->unlock("alice")).has_value());
    CPPUNIT_ASSERT(!fs::exists(f.fence("alice")));
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::none);

    CPPUNIT_ASSERT(f.run(f.gate->lock("alice", "store-b", 60s)).has_value());
    CPPUNIT_ASSERT(f.run(f.gate->mark_moved("alice", "store-b")).has_value());
    CPPUNIT_ASSERT(f.run(f.gate->mark_moved("alice", "store-b")).has_value());
    // A moved account cannot be locked again nor unlocked (rollback is over).
    r = f.run(f.gate->lock("alice", "store-b", 60s));
    CPPUNIT_ASSERT(!r && r.err().code == errc::already_exists);
    r = f.run(f.gate->unlock("alice"));
    CPPUNIT_ASSERT(!r && r.err().code == errc::permission_denied);
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::moved);
    CPPUNIT_ASSERT(f.run(f.gate->forget("alice")).has_value());
    CPPUNIT_ASSERT(!fs::exists(f.fence("alice")));
    CPPUNIT_ASSERT(f.gate->current("alice").kind == kind_t::none);
  }

  void bad_arguments_are_refused() {
    fixture f;
    for (const char* account : {"", "../etc", "Alice", ".alice", "a/b", "a..b"}) {
      auto r = f.run(f.gate->lock(account, "store-b", 60s));
      CPPUNIT_ASSERT_MESSAGE(account, !r && r.err().code == errc::invalid_input);
      r = f.run(f.gate->mark_moved(account, "store-b"));
      CPPUNIT_ASSERT_MESSAGE(account, !r && r.err().code == errc::invalid_input);
      r = f.run(f.gate->unlock(account));
      CPPUNIT_ASSERT_MESSAGE(account, !r && r.err().code == errc::invalid_input);
    }
    for (const char* store : {"", "Store B", "store-b\nmoved", "store-a"}) {
      auto r = f.run(f.gate->lock("alice", store, 60s));
      CPPUNIT_ASSERT_MESSAGE(store, !r && r.err().code == errc::invalid_input);
    }
    auto r = f.run(f.gate->lock("alice", "store-b", 0s));
    CPPUNIT_ASSERT(!r && r.err().code == errc::invalid_input);
    r = f.run(f.gate->lock("alice", "store-b", std::chrono::hours(48)));
    CPPUNIT_ASSERT(!r && r.err().code == errc::invalid_input);
    CPPUNIT_ASSERT(f.gate->fences().empty());
    CPPUNIT_ASSERT(fs::is_empty(f.dir.path / "fences"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(move_account_gate_test);

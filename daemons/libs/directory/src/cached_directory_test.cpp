#include "hamail/directory/cached_directory.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "hamail/directory/memory_directory.hpp"

using namespace hamail::directory;
using namespace std::chrono_literals;
using lookup_result = hamail::result<std::optional<account>>;

namespace {

/// Runs one lookup to completion on a private io_context.
lookup_result await_now(boost::asio::awaitable<lookup_result> op) {
  boost::asio::io_context io;
  std::optional<lookup_result> out;
  auto body = [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(op)); };
  boost::asio::co_spawn(io, body(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  CPPUNIT_ASSERT(out.has_value());
  return std::move(*out);
}

/// A memory directory that counts the lookups that reach it and can run a hook in
/// the middle of one (to act while a lookup is in flight).
class counting_directory final : public directory {
 public:
  boost::asio::awaitable<lookup_result> find_by_address(std::string_view address) override {
    ++address_lookups;
    if (during_lookup) during_lookup();
    co_return data.lookup_address(address);
  }
  boost::asio::awaitable<lookup_result> find_by_login(std::string_view login) override {
    ++login_lookups;
    if (during_lookup) during_lookup();
    co_return data.lookup_login(login);
  }

  memory_directory data;
  std::atomic<int> address_lookups{0};
  std::atomic<int> login_lookups{0};
  std::function<void()> during_lookup;
};

account make(std::string id, std::string addr, std::vector<std::string> aliases = {}) {
  account a;
  a.id = id;
  a.login = std::move(id);
  a.primary_address = std::move(addr);
  a.aliases = std::move(aliases);
  a.owning_store = "store-a";
  return a;
}

/// A cache over a counting directory with alice in it and a hand-driven clock.
struct fixture {
  explicit fixture(cache_settings s = {}) : cache(inner, s, [this] { return now; }) {
    CPPUNIT_ASSERT(inner.data.put(make("alice", "alice@example.org", {"a.smith@example.org"})));
  }
  bool found(const lookup_result& r) const { return r.has_value() && r->has_value(); }
  bool not_found(const lookup_result& r) const { return r.has_value() && !r->has_value(); }

  counting_directory inner;
  std::chrono::steady_clock::time_point now{};
  cached_directory cache;
};

}  // namespace

class cached_directory_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(cached_directory_test);
  CPPUNIT_TEST(found_account_is_served_from_cache_until_ttl_expires);
  CPPUNIT_TEST(not_found_is_cached_for_the_shorter_negative_ttl);
  CPPUNIT_TEST(errors_are_never_cached);
  CPPUNIT_TEST(address_and_login_lookups_are_cached_apart);
  CPPUNIT_TEST(lookup_key_is_case_insensitive);
  CPPUNIT_TEST(invalidate_by_alias_drops_the_account_under_every_key);
  CPPUNIT_TEST(invalidate_drops_a_cached_not_found);
  CPPUNIT_TEST(invalidate_leaves_other_accounts_cached);
  CPPUNIT_TEST(clear_forgets_everything);
  CPPUNIT_TEST(answer_in_flight_during_invalidate_is_not_cached);
  CPPUNIT_TEST(size_bound_evicts_least_recently_used);
  CPPUNIT_TEST(zero_ttl_disables_caching_of_that_kind);
  CPPUNIT_TEST(concurrent_lookups_and_invalidations_are_safe);
  CPPUNIT_TEST_SUITE_END();

 public:
  void found_account_is_served_from_cache_until_ttl_expires() {
    fixture f;
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    f.now += 29s;
    auto r = await_now(f.cache.find_by_address("alice@example.org"));
    CPPUNIT_ASSERT(f.found(r));
    CPPUNIT_ASSERT_EQUAL(std::string("alice"), (*r)->id);
    CPPUNIT_ASSERT_EQUAL(1, f.inner.address_lookups.load());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1}, f.cache.stats().hits);
    f.now += 1s;  // 30 s after it was cached: expired
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
  }

  void not_found_is_cached_for_the_shorter_negative_ttl() {
    fixture f;
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_address("new@example.org"))));
    // The account appears in the directory; the cache still says "no" for 5 s.
    CPPUNIT_ASSERT(f.inner.data.put(make("new", "new@example.org")));
    f.now += 4999ms;
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_address("new@example.org"))));
    CPPUNIT_ASSERT_EQUAL(1, f.inner.address_lookups.load());
    f.now += 1ms;
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("new@example.org"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
  }

  void errors_are_never_cached() {
    fixture f;
    f.inner.data.set_unavailable(true);
    auto r = await_now(f.cache.find_by_address("alice@example.org"));
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT(r.err().is_temporary());
    r = await_now(f.cache.find_by_address("alice@example.org"));
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, f.cache.stats().entries);
    f.inner.data.set_unavailable(false);
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT_EQUAL(3, f.inner.address_lookups.load());
  }

  void address_and_login_lookups_are_cached_apart() {
    fixture f;
    // An alias is an address, not a login: the cached "found" by address must
    // not answer the login lookup.
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("a.smith@example.org"))));
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_login("a.smith@example.org"))));
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_login("a.smith@example.org"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("a.smith@example.org"))));
    CPPUNIT_ASSERT_EQUAL(1, f.inner.address_lookups.load());
    CPPUNIT_ASSERT_EQUAL(1, f.inner.login_lookups.load());
  }

  void lookup_key_is_case_insensitive() {
    fixture f;
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("Alice@Example.ORG"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT_EQUAL(1, f.inner.address_lookups.load());
  }

  void invalidate_by_alias_drops_the_account_under_every_key() {
    fixture f;
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_login("alice"))));
    // The admin tool removes the alias and invalidates it: both cached answers
    // about alice go, although neither was cached under the alias.
    f.cache.invalidate("A.Smith@example.org");
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, f.cache.stats().entries);
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_login("alice"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
    CPPUNIT_ASSERT_EQUAL(2, f.inner.login_lookups.load());
  }

  void invalidate_drops_a_cached_not_found() {
    fixture f;
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_address("new@example.org"))));
    CPPUNIT_ASSERT(f.inner.data.put(make("new", "new@example.org")));
    f.cache.invalidate("new@example.org");
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("new@example.org"))));
  }

  void invalidate_leaves_other_accounts_cached() {
    fixture f;
    CPPUNIT_ASSERT(f.inner.data.put(make("bob", "bob@example.org")));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("bob@example.org"))));
    f.cache.invalidate("alice");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, f.cache.stats().entries);
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("bob@example.org"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
  }

  void clear_forgets_everything() {
    fixture f;
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_login("nobody"))));
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, f.cache.stats().entries);
    f.cache.clear();
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, f.cache.stats().entries);
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
  }

  void answer_in_flight_during_invalidate_is_not_cached() {
    fixture f;
    // The admin change lands between the directory's answer and its caching: the
    // old answer is returned to this caller but must not be served to the next.
    f.inner.during_lookup = [&] { f.cache.invalidate("alice@example.org"); };
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    f.inner.during_lookup = nullptr;
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, f.cache.stats().entries);
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
  }

  void size_bound_evicts_least_recently_used() {
    fixture f(cache_settings{.max_entries = 2});
    CPPUNIT_ASSERT(f.inner.data.put(make("bob", "bob@example.org")));
    CPPUNIT_ASSERT(f.inner.data.put(make("carol", "carol@example.org")));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("bob@example.org"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));  // hit
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("carol@example.org"))));  // evicts bob
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, f.cache.stats().entries);
    CPPUNIT_ASSERT_EQUAL(3, f.inner.address_lookups.load());
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));  // hit
    CPPUNIT_ASSERT_EQUAL(3, f.inner.address_lookups.load());
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("bob@example.org"))));  // miss
    CPPUNIT_ASSERT_EQUAL(4, f.inner.address_lookups.load());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, f.cache.stats().entries);
  }

  void zero_ttl_disables_caching_of_that_kind() {
    fixture f(cache_settings{.positive_ttl = 30s, .negative_ttl = 0s});
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_address("nobody@example.org"))));
    CPPUNIT_ASSERT(f.not_found(await_now(f.cache.find_by_address("nobody@example.org"))));
    CPPUNIT_ASSERT_EQUAL(2, f.inner.address_lookups.load());
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT(f.found(await_now(f.cache.find_by_address("alice@example.org"))));
    CPPUNIT_ASSERT_EQUAL(3, f.inner.address_lookups.load());
  }

  void concurrent_lookups_and_invalidations_are_safe() {
    counting_directory inner;
    for (int i = 0; i < 50; ++i) {
      const std::string id = "user" + std::to_string(i);
      CPPUNIT_ASSERT(inner.data.put(make(id, id + "@example.org")));
    }
    cached_directory cache(inner, cache_settings{.max_entries = 20});
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 2000; ++i) {
          const int n = (i * 7 + t) % 60;  // 50..59 do not exist
          const std::string addr = "user" + std::to_string(n) + "@example.org";
          auto r = await_now(cache.find_by_address(addr));
          const bool ok = r.has_value() && (n < 50 ? r->has_value() && (*r)->primary_address == addr
                                                   : !r->has_value());
          if (!ok) ++wrong;
          if (i % 97 == 0) cache.invalidate(addr);
          if (i % 501 == 0) cache.clear();
        }
      });
    }
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(0, wrong.load());
    CPPUNIT_ASSERT(cache.stats().entries <= 20);
    CPPUNIT_ASSERT(cache.stats().hits > 0);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(cached_directory_test);

// The structure cache: hits and misses, LRU eviction by estimated size,
// replacement, and several threads sharing it.

#include "imap/structure_cache.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace hamail::backend::imap_fetch {

namespace {

std::shared_ptr<const mime::message_structure> parsed(const std::string& raw) {
  return std::make_shared<const mime::message_structure>(mime::parse(raw));
}

const std::string small = "Subject: s\r\n\r\nbody\r\n";

std::string multipart(int parts) {
  std::string m = "Subject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (int i = 0; i < parts; ++i) {
    m += "--b\r\nContent-Type: text/plain; name=\"a-rather-long-file-name-" + std::to_string(i) +
         ".txt\"\r\n\r\nx\r\n";
  }
  return m + "--b--\r\n";
}

}  // namespace

class structure_cache_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(structure_cache_test);
  CPPUNIT_TEST(keys_do_not_collide);
  CPPUNIT_TEST(hit_and_miss_counters);
  CPPUNIT_TEST(parse_and_insert_fills_the_cache);
  CPPUNIT_TEST(estimated_size_grows_with_the_tree);
  CPPUNIT_TEST(evicts_least_recently_used_by_size);
  CPPUNIT_TEST(too_large_is_not_kept_and_replace_updates_bytes);
  CPPUNIT_TEST(shrinking_the_budget_evicts);
  CPPUNIT_TEST(evicted_entry_stays_alive_for_its_holder);
  CPPUNIT_TEST(threads_share_it);
  CPPUNIT_TEST_SUITE_END();

 public:
  void keys_do_not_collide() {
    CPPUNIT_ASSERT(structure_cache::key("a", "bc", 1, 2) != structure_cache::key("ab", "c", 1, 2));
    CPPUNIT_ASSERT(structure_cache::key("a", "b", 1, 23) != structure_cache::key("a", "b", 12, 3));
    CPPUNIT_ASSERT(structure_cache::key("a", "b", 1, 2) == structure_cache::key("a", "b", 1, 2));
  }

  void hit_and_miss_counters() {
    structure_cache cache(1 << 20);
    const auto k = structure_cache::key("acct", "INBOX", 7, 1);
    CPPUNIT_ASSERT(cache.find(k) == nullptr);
    const auto s = parsed(small);
    cache.insert(k, s);
    CPPUNIT_ASSERT(cache.find(k) == s);
    CPPUNIT_ASSERT(cache.find(k) == s);
    CPPUNIT_ASSERT(cache.find(structure_cache::key("acct", "INBOX", 8, 1)) == nullptr);
    const auto c = cache.counters();
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, c.hits);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, c.misses);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, c.entries);
    CPPUNIT_ASSERT(c.bytes >= estimated_size(*s));
    cache.erase(k);
    CPPUNIT_ASSERT(cache.find(k) == nullptr);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, cache.counters().bytes);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, cache.counters().entries);
  }

  void parse_and_insert_fills_the_cache() {
    structure_cache cache(1 << 20);
    const auto raw = multipart(3);
    const auto s = cache.parse_and_insert("k", raw);
    CPPUNIT_ASSERT(s != nullptr);
    CPPUNIT_ASSERT_EQUAL(raw.size(), s->size);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, s->root.children.size());
    CPPUNIT_ASSERT(cache.find("k") == s);
  }

  void estimated_size_grows_with_the_tree() {
    const auto one = estimated_size(*parsed(small));
    const auto ten = estimated_size(*parsed(multipart(10)));
    const auto hundred = estimated_size(*parsed(multipart(100)));
    CPPUNIT_ASSERT(one >= sizeof(mime::message_structure));
    CPPUNIT_ASSERT(ten > one);
    // every part costs at least its node and its parameter
    CPPUNIT_ASSERT(hundred - ten >= 90 * (sizeof(mime::part) + sizeof(mime::param)));
  }

  void evicts_least_recently_used_by_size() {
    const auto s = parsed(small);
    structure_cache probe(1 << 20);
    probe.insert("k0", s);
    const std::size_t one = probe.counters().bytes;  // the cost of one entry with a 2-octet key
    structure_cache cache(3 * one);
    cache.insert("k1", s);
    cache.insert("k2", s);
    cache.insert("k3", s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, cache.counters().entries);
    CPPUNIT_ASSERT(cache.find("k1") != nullptr);  // k1 is now the most recent: k2 goes next
    cache.insert("k4", s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, cache.counters().entries);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1}, cache.counters().evictions);
    CPPUNIT_ASSERT(cache.find("k2") == nullptr);
    CPPUNIT_ASSERT(cache.find("k1") != nullptr);
    CPPUNIT_ASSERT(cache.find("k3") != nullptr);
    CPPUNIT_ASSERT(cache.find("k4") != nullptr);
    CPPUNIT_ASSERT(cache.counters().bytes <= cache.max_bytes());
    // a big entry pushes out as many as it needs: here every other one
    const auto big = parsed(multipart(20));
    const std::size_t overhead = one - estimated_size(*s) - 2;
    const std::size_t big_cost = estimated_size(*big) + 2 + overhead;
    CPPUNIT_ASSERT(big_cost >= 3 * one);
    structure_cache sized(big_cost);
    for (int i = 0; i < 3; ++i) sized.insert("s" + std::to_string(i), s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, sized.counters().entries);
    sized.insert("kb", big);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, sized.counters().entries);
    CPPUNIT_ASSERT_EQUAL(big_cost, sized.counters().bytes);
    CPPUNIT_ASSERT(sized.find("kb") == big);
  }

  void too_large_is_not_kept_and_replace_updates_bytes() {
    const auto s = parsed(small);
    structure_cache cache(estimated_size(*s) / 2);
    cache.insert("k", s);
    CPPUNIT_ASSERT(cache.find("k") == nullptr);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, cache.counters().bytes);

    structure_cache roomy(1 << 20);
    roomy.insert("k", s);
    const auto before = roomy.counters().bytes;
    const auto bigger = parsed(multipart(5));
    roomy.insert("k", bigger);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, roomy.counters().entries);
    CPPUNIT_ASSERT_EQUAL(before - estimated_size(*s) + estimated_size(*bigger),
                         roomy.counters().bytes);
    CPPUNIT_ASSERT(roomy.find("k") == bigger);
    roomy.clear();
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, roomy.counters().bytes);
    CPPUNIT_ASSERT(roomy.find("k") == nullptr);
  }

  void shrinking_the_budget_evicts() {
    structure_cache cache(1 << 20);
    const auto s = parsed(small);
    for (int i = 0; i < 10; ++i) cache.insert("k" + std::to_string(i), s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{10}, cache.counters().entries);
    cache.set_max_bytes(cache.counters().bytes / 2);
    CPPUNIT_ASSERT(cache.counters().entries <= 5);
    CPPUNIT_ASSERT(cache.counters().bytes <= cache.max_bytes());
    CPPUNIT_ASSERT(cache.find("k9") != nullptr);  // the newest stay
    CPPUNIT_ASSERT(cache.find("k0") == nullptr);
  }

  void evicted_entry_stays_alive_for_its_holder() {
    const auto s = parsed(small);
    structure_cache probe(1 << 20);
    probe.insert("k0", s);
    structure_cache cache(probe.counters().bytes);
    cache.insert("k0", parsed(small));
    auto held = cache.find("k0");
    cache.insert("k1", s);
    CPPUNIT_ASSERT(cache.find("k0") == nullptr);
    CPPUNIT_ASSERT(held != nullptr);
    CPPUNIT_ASSERT_EQUAL(small.size(), held->size);
  }

  void threads_share_it() {
    const auto s = parsed(multipart(2));
    structure_cache probe(1 << 20);
    probe.insert(structure_cache::key("a", "INBOX", 1, 10), s);
    // room for about 20 of the 97 keys: evictions are certain; each key is
    // asked 7 times in a row, so hits are too
    structure_cache cache(20 * probe.counters().bytes);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 2000; ++i) {
          const auto k =
              structure_cache::key("a", "INBOX", 1, static_cast<std::uint32_t>(i / 7 % 97));
          auto got = cache.find(k);
          if (!got) {
            cache.insert(k, s);
          } else if (got->size != s->size) {
            ++wrong;
          }
          if ((i + t) % 500 == 0) cache.erase(k);
        }
      });
    }
    for (auto& th : threads) th.join();
    const auto c = cache.counters();
    CPPUNIT_ASSERT_EQUAL(0, wrong.load());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{8000}, c.hits + c.misses);
    CPPUNIT_ASSERT(c.hits > 0 && c.evictions > 0);
    CPPUNIT_ASSERT(c.bytes <= cache.max_bytes());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(structure_cache_test);

}  // namespace hamail::backend::imap_fetch

// Concurrent readers, deliveries, flag changes and expunges from 8 threads for a
// few seconds, with invariants checked during and after, for both stores.
// HAMAIL_STORE_STRESS_SECONDS overrides the duration (default 2 per store).

#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hamail/store/maildir_store.hpp"
#include "hamail/store/memory_store.hpp"
#include "hamail/test/temp_dir.hpp"
#include "store_test_util.hpp"

namespace hamail::store {

using namespace testing;

namespace {

struct maildir_stress_fixture {
  hamail::test::temp_dir dir;
  std::unique_ptr<maildir_store> store;
  maildir_stress_fixture() { reopen(); }
  void reopen() {
    store.reset();
    maildir_options o;
    o.hostname = "stress.example";
    o.compact_slack = 200;  // compact now and then during the run
    // This test says so: it is about concurrency invariants, and without syncs
    // it gets through many more interleavings. Durability has its own tests.
    o.fsync = false;
    store = must(maildir_store::open(dir.path() / "data", o), "open");
  }
  mail_store& get() { return *store; }
};

struct memory_stress_fixture {
  memory_store store;
  mail_store& get() { return store; }
};

std::chrono::milliseconds stress_duration() {
  if (const char* s = std::getenv("HAMAIL_STORE_STRESS_SECONDS"))
    return std::chrono::seconds(std::atoi(s));
  return std::chrono::seconds(2);
}

/// Collects problems from any thread; the test fails if there are any.
struct problems {
  std::mutex mutex;
  std::vector<std::string> list;
  void add(std::string p) {
    std::lock_guard lock(mutex);
    if (list.size() < 20) list.push_back(std::move(p));
  }
};

std::string check_snapshot(const mailbox_snapshot& s) {
  imap_uid last = 0;
  for (const auto& m : s.messages) {
    if (m.uid <= last) return "snapshot not strictly ascending at uid " + std::to_string(m.uid);
    if (m.uid >= s.uid_next) return "uid " + std::to_string(m.uid) + " >= uidnext";
    if (m.modseq > s.highest_modseq) return "modseq above highestmodseq";
    last = m.uid;
  }
  return {};
}

}  // namespace

template <class Fixture>
class store_stress_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(store_stress_test);
  CPPUNIT_TEST(eight_threads_keep_uids_unique_snapshots_sorted_and_notifications_ordered);
  CPPUNIT_TEST_SUITE_END();

 public:
  void eight_threads_keep_uids_unique_snapshots_sorted_and_notifications_ordered() {
    Fixture f;
    mail_store& store = f.get();
    const std::string account = "stress";
    auto box = must(store.open_mailbox(account, "INBOX"));
    problems bad;

    // What notifications say, replayed: must end equal to the final snapshot.
    std::mutex notes_mutex;
    std::map<imap_uid, message_flags> notified;
    mod_seq last_modseq = 0;
    imap_uid last_exists = 0;
    auto sub = box->subscribe([&](std::span<const mailbox_change> changes) {
      std::lock_guard lock(notes_mutex);
      for (const auto& c : changes) {
        if (c.modseq <= last_modseq)
          bad.add("notification modseq " + std::to_string(c.modseq) + " after " +
                  std::to_string(last_modseq));
        last_modseq = c.modseq;
        switch (c.kind) {
          case mailbox_change::kind_t::exists:
            if (c.uid <= last_exists) bad.add("exists uid not ascending: " + std::to_string(c.uid));
            last_exists = c.uid;
            if (!notified.emplace(c.uid, c.flags).second)
              bad.add("duplicate exists " + std::to_string(c.uid));
            break;
          case mailbox_change::kind_t::flags:
            if (!notified.count(c.uid)) bad.add("flags for unknown uid " + std::to_string(c.uid));
            notified[c.uid] = c.flags;
            break;
          case mailbox_change::kind_t::expunge:
            if (notified.erase(c.uid) != 1)
              bad.add("expunge of unknown uid " + std::to_string(c.uid));
            break;
        }
      }
    });

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> delivered{0}, expunged{0}, flag_changes{0}, reads{0};
    std::mutex uid_mutex;
    std::set<imap_uid> delivered_uids;
    auto random_uid = [&](std::mt19937& rng) -> imap_uid {
      auto snap = box->snapshot();
      if (!snap || snap->messages.empty()) return 0;
      return snap->messages[rng() % snap->messages.size()].uid;
    };

    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          auto in = store.begin_delivery();
          if (!in) {
            bad.add("begin_delivery: " + in.err().describe());
            return;
          }
          (void)in->write("msg " + std::to_string(t) + "/" + std::to_string(i) + "\r\n");
          auto sealed = in->finish();
          if (!sealed) {
            bad.add("finish: " + sealed.err().describe());
            return;
          }
          delivery_target target;
          target.account = account;
          if (i % 3 == 0) target.flags = flags_of(seen);
          auto r = store.deliver(*sealed, std::span<const delivery_target>(&target, 1));
          if (!r[0]) {
            bad.add("deliver: " + r[0].err().describe());
            return;
          }
          std::lock_guard lock(uid_mutex);
          if (!delivered_uids.insert(r[0]->uid).second)
            bad.add("uid handed out twice: " + std::to_string(r[0]->uid));
          ++delivered;
        }
      });
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(t + 1));
        while (!stop) {
          const imap_uid uid = random_uid(rng);
          if (uid == 0) continue;
          const imap_uid uids[] = {uid};
          const auto mode = (rng() % 2) ? flag_mode::add : flag_mode::remove;
          auto flags = flags_of((rng() % 2) ? flagged : answered, {(rng() % 2) ? "K1" : "K2"});
          auto r = box->set_flags(uids, mode, flags);
          if (!r)
            bad.add("set_flags: " + r.err().describe());
          else
            flag_changes += r->changed.size();
        }
      });
    threads.emplace_back([&] {
      std::mt19937 rng(7);
      while (!stop) {
        // Keep a working set of messages for the other threads to race on.
        auto st = box->status();
        if (!st || st->messages < 30) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        const imap_uid uid = random_uid(rng);
        if (uid == 0) continue;
        const imap_uid uids[] = {uid};
        auto r = box->expunge(uids);
        if (!r)
          bad.add("expunge: " + r.err().describe());
        else
          expunged += r->size();
      }
    });
    threads.emplace_back([&] {
      std::mt19937 rng(11);
      while (!stop) {
        auto snap = box->snapshot();
        if (!snap) {
          bad.add("snapshot: " + snap.err().describe());
          continue;
        }
        if (auto p = check_snapshot(*snap); !p.empty()) bad.add(p);
        if (snap->messages.empty()) continue;
        const imap_uid uid = snap->messages[rng() % snap->messages.size()].uid;
        auto file = box->read_message(uid);
        if (file) {
          if (read_body(*file).rfind("msg ", 0) != 0)
            bad.add("wrong body for uid " + std::to_string(uid));
          ++reads;
        } else if (!(file.err().is_permanent() && file.err().code == errc::not_found)) {
          bad.add("read_message: " +
                  file.err().describe());  // only "expunged meanwhile" is acceptable
        }
      }
    });
    threads.emplace_back([&] {
      while (!stop) {
        auto st = box->status();
        if (!st) bad.add("status: " + st.err().describe());
        auto claimed = box->claim_recent();
        if (!claimed) bad.add("claim_recent: " + claimed.err().describe());
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    CPPUNIT_ASSERT_EQUAL(std::size_t{8}, threads.size());

    std::this_thread::sleep_for(stress_duration());
    stop = true;
    for (auto& th : threads) th.join();
    sub.reset();

    for (const auto& p : bad.list) std::cerr << "problem: " << p << "\n";
    CPPUNIT_ASSERT(bad.list.empty());
    CPPUNIT_ASSERT(delivered > 0);
    CPPUNIT_ASSERT(expunged > 0);
    CPPUNIT_ASSERT(flag_changes > 0);

    const auto final_snap = must(box->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::string(), check_snapshot(final_snap));
    CPPUNIT_ASSERT_EQUAL(delivered - expunged,
                         static_cast<std::uint64_t>(final_snap.messages.size()));
    {
      std::lock_guard lock(notes_mutex);
      CPPUNIT_ASSERT_EQUAL(notified.size(), final_snap.messages.size());
      for (const auto& m : final_snap.messages) {
        auto it = notified.find(m.uid);
        CPPUNIT_ASSERT(it != notified.end());
        CPPUNIT_ASSERT(it->second.same_as(m.flags));
      }
      CPPUNIT_ASSERT_EQUAL(final_snap.highest_modseq, last_modseq);
    }
    if constexpr (requires { f.store->verify(account); }) {
      auto found = must(f.store->verify(account));
      for (const auto& d : found)
        std::cerr << "discrepancy: uid " << d.uid << ": " << d.detail << "\n";
      CPPUNIT_ASSERT(found.empty());
      box.reset();
      f.reopen();
      auto reopened = must(must(f.store->open_mailbox(account, "INBOX"))->snapshot());
      CPPUNIT_ASSERT_EQUAL(final_snap.messages.size(), reopened.messages.size());
      CPPUNIT_ASSERT_EQUAL(final_snap.uid_validity, reopened.uid_validity);
      CPPUNIT_ASSERT_EQUAL(final_snap.highest_modseq, reopened.highest_modseq);
      for (std::size_t i = 0; i < reopened.messages.size(); ++i) {
        CPPUNIT_ASSERT_EQUAL(final_snap.messages[i].uid, reopened.messages[i].uid);
        CPPUNIT_ASSERT(final_snap.messages[i].flags.same_as(reopened.messages[i].flags));
        CPPUNIT_ASSERT_EQUAL(final_snap.messages[i].modseq, reopened.messages[i].modseq);
      }
    }
    std::cerr << "stress: " << delivered << " delivered, " << expunged << " expunged, "
              << flag_changes << " flag changes, " << reads << " reads\n";
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(store_stress_test<maildir_stress_fixture>);
CPPUNIT_TEST_SUITE_REGISTRATION(store_stress_test<memory_stress_fixture>);

}  // namespace hamail::store

// What only the on-disk store does: file names, the store lock, group commit,
// crash artefacts (simulated by editing the files a crash would leave), rebuild,
// verify, maildirsize and compaction.

#include "hamail/store/maildir_store.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "hamail/test/temp_dir.hpp"
#include "posix_io.hpp"
#include "store_test_util.hpp"

namespace hamail::store {

using namespace testing;
namespace fs = std::filesystem;

namespace {

/// File names in one subdirectory of a mailbox, sorted.
std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t count_lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

struct message_view {
  imap_uid uid;
  std::uint8_t system;
  std::set<std::string> keywords;
  std::int64_t date;
  std::uint64_t size;
  bool operator==(const message_view&) const = default;
};

std::vector<message_view> view(const mailbox_snapshot& s) {
  std::vector<message_view> out;
  for (const auto& m : s.messages)
    out.push_back({m.uid, m.flags.system,
                   std::set<std::string>(m.flags.keywords.begin(), m.flags.keywords.end()),
                   m.date.time_since_epoch().count(), m.size});
  return out;
}

/// A door a test hook can stop threads at until the test opens it.
class gate {
 public:
  /// Blocks the calling thread until open() (marks it as having arrived).
  void arrive_and_wait() {
    std::unique_lock lock(m_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  /// Waits (bounded, only against a hang) until a thread has arrived.
  bool wait_arrived(std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, limit, [&] { return arrived_ > 0; });
  }
  void open() {
    std::lock_guard lock(m_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  bool open_ = false;
};

/// Runs `fn` on a thread; done() tells (bounded wait) whether it has returned.
class background {
 public:
  explicit background(std::function<void()> fn)
      : thread_([this, fn = std::move(fn)] {
          try {
            fn();
          } catch (...) {
            threw_ = true;
          }
          std::lock_guard lock(m_);
          finished_ = true;
          cv_.notify_all();
        }) {}
  ~background() {
    if (thread_.joinable()) thread_.join();
  }
  bool done(std::chrono::seconds limit) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, limit, [&] { return finished_; });
  }
  bool threw() const { return threw_; }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::atomic<bool> threw_{false};
  std::thread thread_;
};

/// Set on a thread whose commits a test hook should hold.
thread_local bool hold_this_thread = false;

}  // namespace

class maildir_store_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(maildir_store_test);
  CPPUNIT_TEST(delivered_file_named_with_uid_and_size_and_dated_by_mtime);
  CPPUNIT_TEST(uids_strictly_increase_across_reopen_even_after_top_expunge);
  CPPUNIT_TEST(second_open_of_same_store_refused_naming_pid);
  CPPUNIT_TEST(concurrent_deliveries_share_directory_and_index_syncs);
  CPPUNIT_TEST(leader_takes_every_queued_commit_in_one_batch);
  CPPUNIT_TEST(leader_that_throws_fails_its_batch_and_later_deliveries_complete);
  CPPUNIT_TEST(subscriber_that_throws_does_not_wedge_commits);
  CPPUNIT_TEST(commit_of_one_account_does_not_wait_for_another);
  CPPUNIT_TEST(quota_rescan_of_one_account_does_not_block_another);
  CPPUNIT_TEST(leader_hands_reload_and_rescan_back_to_the_delivering_thread);
  CPPUNIT_TEST(torn_last_index_line_truncated_nothing_lost);
  CPPUNIT_TEST(mid_file_index_corruption_rebuilds_keeping_uids);
  CPPUNIT_TEST(deleted_index_rebuilt_keeping_uids_and_uidvalidity);
  CPPUNIT_TEST(lost_uidvalidity_and_index_get_a_new_uidvalidity);
  CPPUNIT_TEST(lost_uidvalidity_restored_from_index);
  CPPUNIT_TEST(file_renamed_without_index_record_is_reconciled_with_its_uid);
  CPPUNIT_TEST(foreign_file_without_uid_gets_next_uid_and_is_renamed);
  CPPUNIT_TEST(duplicate_uid_files_both_kept_one_renumbered);
  CPPUNIT_TEST(restored_file_with_an_expunged_uid_gets_a_new_uid);
  CPPUNIT_TEST(file_with_the_largest_uid_does_not_exhaust_the_mailbox);
  CPPUNIT_TEST(leftover_tmp_files_ignored_and_cleaned);
  CPPUNIT_TEST(vanished_file_expunged_on_open);
  CPPUNIT_TEST(flags_changed_by_hand_are_adopted_on_open);
  CPPUNIT_TEST(reload_publishes_what_reconcile_found);
  CPPUNIT_TEST(verify_reports_discrepancies_without_repairing);
  CPPUNIT_TEST(rebuild_of_open_mailbox_keeps_uids_and_raises_modseqs);
  CPPUNIT_TEST(rebuild_all_covers_every_account);
  CPPUNIT_TEST(removed_account_is_gone_and_its_open_mailboxes_refuse);
  CPPUNIT_TEST(maildirsize_tracks_deliveries_expunges_and_recalculates);
  CPPUNIT_TEST(quota_usage_reads_maildirsize_and_never_scans);
  CPPUNIT_TEST(hostile_and_odd_names_stay_inside_the_account);
  CPPUNIT_TEST(keywords_survive_reopen);
  CPPUNIT_TEST(claimed_recent_stays_claimed_after_reopen_and_reload);
  CPPUNIT_TEST(claimed_recent_survives_sigkill);
  CPPUNIT_TEST(recent_claim_cut_short_by_a_crash);
  CPPUNIT_TEST(unfinished_and_used_tmp_bodies_are_removed);
  CPPUNIT_TEST(compaction_bounds_the_index_and_keeps_state);
  CPPUNIT_TEST(rename_keeps_open_sessions_working);
  CPPUNIT_TEST(failed_fsync_stops_the_process);
  CPPUNIT_TEST(wire_size_named_in_the_file_and_kept_by_reopen_rebuild_copy_and_move);
  CPPUNIT_TEST(foreign_file_wire_size_counted_once_and_named);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    dir_ = std::make_unique<hamail::test::temp_dir>();
    open();
  }
  void tearDown() override {
    store_.reset();
    dir_.reset();
  }

  void open(maildir_options o = {}) {
    store_.reset();
    if (o.hostname.empty()) o.hostname = "test.example";
    store_ = must(maildir_store::open(data(), std::move(o)), "open store");
  }
  fs::path data() const { return dir_->path() / "data"; }
  fs::path box_dir(const std::string& account, const std::string& name = "INBOX") {
    return must(maildir_store::mailbox_dir(data(), account, name));
  }
  maildir_store& s() { return *store_; }

  void delivered_file_named_with_uid_and_size_and_dated_by_mtime() {
    deliver_one(s(), "alice", "hello", "INBOX", {}, test_date(1'000'000'000));
    deliver_one(s(), "alice", "world!", "INBOX", flags_of(seen | flagged, {"Work"}),
                test_date(1'100'000'000));
    const fs::path box = box_dir("alice");
    CPPUNIT_ASSERT(box.string().find("/accounts/") != std::string::npos);
    auto in_new = files_in(box / "new");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, in_new.size());
    const std::string& n = in_new[0];
    CPPUNIT_ASSERT_MESSAGE(n, n.ends_with(",S=5,U=1"));
    CPPUNIT_ASSERT_MESSAGE(n, n.find(".test.example,") != std::string::npos);
    struct stat st {};
    CPPUNIT_ASSERT_EQUAL(0, ::stat((box / "new" / n).c_str(), &st));
    CPPUNIT_ASSERT_EQUAL(static_cast<time_t>(1'000'000'000), st.st_mtime);
    CPPUNIT_ASSERT_EQUAL(std::string("hello"), slurp(box / "new" / n));
    auto in_cur = files_in(box / "cur");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, in_cur.size());
    CPPUNIT_ASSERT_MESSAGE(in_cur[0], in_cur[0].ends_with(",S=6,U=2:2,FSa"));
    CPPUNIT_ASSERT_EQUAL(std::string("0 Work\n"), slurp(box / "hamail-keywords"));
    CPPUNIT_ASSERT(fs::exists(box / "hamail-uidvalidity"));
    CPPUNIT_ASSERT(fs::exists(box / "hamail-index"));

    auto inbox = must(s().open_mailbox("alice", "INBOX"));
    const imap_uid one[] = {1};
    must(inbox->set_flags(one, flag_mode::add, flags_of(answered, {"$Forwarded"})));
    CPPUNIT_ASSERT(files_in(box / "new").empty());
    in_cur = files_in(box / "cur");
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, in_cur.size());
    CPPUNIT_ASSERT(std::any_of(in_cur.begin(), in_cur.end(),
                               [](const std::string& f) { return f.ends_with(",U=1:2,PR"); }));
    // A folder has its marker file.
    must_ok(s().create_mailbox("alice", "Sent"));
    CPPUNIT_ASSERT(fs::exists(box_dir("alice", "Sent") / "maildirfolder"));
    CPPUNIT_ASSERT(verify_clean("alice"));
  }

  void uids_strictly_increase_across_reopen_even_after_top_expunge() {
    maildir_options o;
    o.compact_slack = 0;  // compact after every change: UIDNEXT must survive in the N record
    open(o);
    for (int i = 0; i < 3; ++i) deliver_one(s(), "bob", "m");
    const auto uv = must(s().status("bob", "INBOX")).uid_validity;
    {
      auto box = must(s().open_mailbox("bob", "INBOX"));
      const imap_uid top[] = {3};
      must(box->expunge(top));
    }
    open(o);
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, must(s().status("bob", "INBOX")).uid_next);
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, deliver_one(s(), "bob", "m").uid);
    open();
    CPPUNIT_ASSERT_EQUAL(imap_uid{5}, deliver_one(s(), "bob", "m").uid);
    CPPUNIT_ASSERT_EQUAL(uv, must(s().status("bob", "INBOX")).uid_validity);
  }

  void second_open_of_same_store_refused_naming_pid() {
    auto again = maildir_store::open(data());
    CPPUNIT_ASSERT(!again);
    CPPUNIT_ASSERT(again.err().is_temporary());
    CPPUNIT_ASSERT(again.err().code == errc::already_exists);
    const std::string pid = "pid " + std::to_string(::getpid());
    CPPUNIT_ASSERT_MESSAGE(again.err().detail, again.err().detail.find(pid) != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::to_string(::getpid()) + "\n", slurp(data() / "hamail-store.lock"));
    store_.reset();
    open();  // released with the first store
  }

  void concurrent_deliveries_share_directory_and_index_syncs() {
    constexpr int threads = 32;
    constexpr int per_thread = 10;
    const auto before = s().counters();
    std::vector<std::thread> pool;
    std::atomic<int> failures{0};
    std::mutex uid_mutex;
    std::vector<imap_uid> uids;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          auto in = s().begin_delivery();
          if (!in || !in->write("message " + std::to_string(t) + "/" + std::to_string(i))) {
            ++failures;
            continue;
          }
          auto sealed = in->finish();
          if (!sealed) {
            ++failures;
            continue;
          }
          delivery_target target;
          target.account = "group";
          auto r = s().deliver(*sealed, std::span<const delivery_target>(&target, 1));
          if (!r[0]) {
            ++failures;
            continue;
          }
          std::lock_guard lock(uid_mutex);
          uids.push_back(r[0]->uid);
        }
      });
    }
    for (auto& th : pool) th.join();
    CPPUNIT_ASSERT_EQUAL(0, failures.load());
    constexpr std::uint64_t n = threads * per_thread;
    std::sort(uids.begin(), uids.end());
    CPPUNIT_ASSERT_EQUAL(std::size_t{n}, uids.size());
    for (std::size_t i = 0; i < uids.size(); ++i)
      CPPUNIT_ASSERT_EQUAL(static_cast<imap_uid>(i + 1), uids[i]);
    const auto c = s().counters();
    std::cerr << "group commit: " << n << " deliveries, " << (c.batches - before.batches)
              << " batches, " << (c.dir_syncs - before.dir_syncs) << " dir syncs, "
              << (c.index_syncs - before.index_syncs) << " index syncs\n";
    CPPUNIT_ASSERT_EQUAL(n, c.commits - before.commits);
    CPPUNIT_ASSERT_EQUAL(n, c.file_syncs - before.file_syncs);
    // The behaviour under test: committing together, not one sync per message.
    CPPUNIT_ASSERT(c.batches - before.batches < n);
    CPPUNIT_ASSERT(c.dir_syncs - before.dir_syncs < n);
    CPPUNIT_ASSERT(c.index_syncs - before.index_syncs < n);
    CPPUNIT_ASSERT_EQUAL(std::size_t{n}, files_in(box_dir("group") / "new").size());
    CPPUNIT_ASSERT(verify_clean("group"));
  }

  void leader_takes_every_queued_commit_in_one_batch() {
    std::mutex m;
    std::vector<std::size_t> sizes;
    std::atomic<maildir_store*> self{nullptr};
    std::atomic<bool> armed{false};
    maildir_options o;
    o.on_commit_batch = [&](std::size_t n) {
      if (!armed) return;
      {
        std::lock_guard lock(m);
        sizes.push_back(n);
        if (sizes.size() != 1) return;
      }
      // Hold the first leader until seven more commits wait behind it.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (self.load()->queued_commits() < 7 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    open(o);
    self = store_.get();
    deliver_one(s(), "batch", "warm up");  // creates the account outside the measurement
    armed = true;
    const auto before = s().counters();
    std::thread first([&] { deliver_one(s(), "batch", "first"); });
    for (;;) {
      {
        std::lock_guard lock(m);
        if (!sizes.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::vector<std::thread> rest;
    for (int i = 0; i < 7; ++i)
      rest.emplace_back([&, i] { deliver_one(s(), "batch", "m" + std::to_string(i)); });
    first.join();
    for (auto& t : rest) t.join();
    const auto c = s().counters();
    std::lock_guard lock(m);
    CPPUNIT_ASSERT((sizes == std::vector<std::size_t>{1, 7}));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{8}, c.commits - before.commits);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, c.batches - before.batches);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, c.dir_syncs - before.dir_syncs);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, c.index_syncs - before.index_syncs);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{9}, must(s().status("batch", "INBOX")).messages);
  }

  void leader_that_throws_fails_its_batch_and_later_deliveries_complete() {
    std::atomic<bool> armed{false};
    std::atomic<int> calls{0};
    std::atomic<int> loads{0};
    std::atomic<maildir_store*> self{nullptr};
    maildir_options o;
    o.on_commit_batch = [&](std::size_t) {
      if (!armed || ++calls != 1) return;
      // Hold the first leader until three commits queue behind it, then fail it.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (self.load()->queued_commits() < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      throw std::runtime_error("injected leader failure");
    };
    o.on_maintenance = [&](std::string_view, std::string_view what) {
      if (armed && what == "load") ++loads;
    };
    open(o);
    self = store_.get();
    deliver_one(s(), "boom", "warm up");
    armed = true;
    std::vector<std::optional<result<delivered>>> got(4);
    std::vector<std::unique_ptr<background>> threads;
    auto deliver_to = [&](std::size_t i) {
      auto sealed = seal(s(), "message " + std::to_string(i));
      delivery_target t;
      t.account = "boom";
      got[i] = std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]);
    };
    threads.push_back(std::make_unique<background>([&] { deliver_to(0); }));
    while (calls.load() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (std::size_t i = 1; i < 4; ++i)
      threads.push_back(std::make_unique<background>([&, i] { deliver_to(i); }));
    for (auto& t : threads) {
      if (!t->done(std::chrono::seconds(30))) {
        // A leader flag left set: nothing can unblock these threads.
        std::cerr << "deliveries hang after a group-commit leader threw\n";
        std::_Exit(1);
      }
      CPPUNIT_ASSERT_MESSAGE("deliver() threw", !t->threw());
    }
    threads.clear();
    // The failed batch's commit gets a temporary error...
    CPPUNIT_ASSERT(got[0] && !got[0]->has_value());
    CPPUNIT_ASSERT(got[0]->err().is_temporary());
    // ...and the commits queued behind it go in, after their submitters
    // reloaded the mailbox the failure invalidated (not the next leader).
    std::set<imap_uid> uids;
    for (std::size_t i = 1; i < 4; ++i) {
      CPPUNIT_ASSERT(got[i] && got[i]->has_value());
      uids.insert((*got[i])->uid);
    }
    CPPUNIT_ASSERT((uids == std::set<imap_uid>{2, 3, 4}));
    CPPUNIT_ASSERT(loads.load() >= 1);
    CPPUNIT_ASSERT(files_in(box_dir("boom") / "tmp").empty());
    background later([&] { deliver_one(s(), "boom", "later"); });
    if (!later.done(std::chrono::seconds(30))) {
      std::cerr << "a delivery after the failed batch hangs\n";
      std::_Exit(1);
    }
    CPPUNIT_ASSERT(!later.threw());
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{5}, must(s().status("boom", "INBOX")).messages);
    CPPUNIT_ASSERT(verify_clean("boom"));
  }

  void subscriber_that_throws_does_not_wedge_commits() {
    deliver_one(s(), "sub", "one");
    auto box = must(s().open_mailbox("sub", "INBOX"));
    std::atomic<int> calls{0};
    auto sub = box->subscribe([&](std::span<const mailbox_change>) {
      if (++calls == 1) throw std::bad_alloc();
    });
    // The message was durable before the callback threw: it is delivered.
    std::optional<delivered> d;
    background first([&] { d = deliver_one(s(), "sub", "two"); });
    if (!first.done(std::chrono::seconds(30))) {
      std::cerr << "delivery hangs after a subscriber threw\n";
      std::_Exit(1);
    }
    CPPUNIT_ASSERT_MESSAGE("deliver() threw", !first.threw());
    CPPUNIT_ASSERT(d && d->uid == 2);
    background second([&] { deliver_one(s(), "sub", "three"); });
    if (!second.done(std::chrono::seconds(30))) {
      std::cerr << "deliveries hang after a subscriber threw\n";
      std::_Exit(1);
    }
    CPPUNIT_ASSERT(!second.threw());
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{3}, must(box->status()).messages);
    CPPUNIT_ASSERT_EQUAL(2, calls.load());
    CPPUNIT_ASSERT(verify_clean("sub"));
  }

  void commit_of_one_account_does_not_wait_for_another() {
    gate g;
    maildir_options o;
    o.on_commit_batch = [&](std::size_t) {
      if (hold_this_thread) g.arrive_and_wait();
    };
    open(o);
    deliver_one(s(), "stuck", "warm up");
    deliver_one(s(), "free", "warm up");
    background stuck([&] {
      hold_this_thread = true;
      deliver_one(s(), "stuck", "held in its commit");
    });
    CPPUNIT_ASSERT(g.wait_arrived());
    // Deterministic: "stuck"'s leader stays held until the gate opens, so this
    // delivery can only finish if it does not wait for that leader.
    background other([&] { deliver_one(s(), "free", "independent"); });
    const bool independent = other.done(std::chrono::seconds(20));
    g.open();
    CPPUNIT_ASSERT(stuck.done(std::chrono::seconds(30)) && other.done(std::chrono::seconds(30)));
    CPPUNIT_ASSERT_MESSAGE("a delivery to another account waited for a held commit", independent);
    CPPUNIT_ASSERT(!stuck.threw() && !other.threw());
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, must(s().status("stuck", "INBOX")).messages);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, must(s().status("free", "INBOX")).messages);
  }

  void quota_rescan_of_one_account_does_not_block_another() {
    gate g;
    std::atomic<bool> armed{false};
    maildir_options o;
    o.on_maintenance = [&](std::string_view account, std::string_view what) {
      if (armed && account == "slow" && what == "quota rescan") g.arrive_and_wait();
    };
    open(o);
    auto deliver_limited = [&](const quota_limits& q) {
      auto sealed = seal(s(), "counted");
      delivery_target t;
      t.account = "slow";
      t.quota = q;
      return std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]);
    };
    must(deliver_limited(quota_limits{1000, 0}));
    deliver_one(s(), "fast", "warm up");
    armed = true;
    // A changed limit makes "slow"'s maildirsize due for a rescan from its files.
    std::optional<result<delivered>> slow_result;
    background slow([&] { slow_result = deliver_limited(quota_limits{2000, 0}); });
    CPPUNIT_ASSERT(g.wait_arrived());
    background fast([&] { deliver_one(s(), "fast", "not behind the rescan"); });
    const bool independent = fast.done(std::chrono::seconds(20));
    g.open();
    CPPUNIT_ASSERT(slow.done(std::chrono::seconds(30)) && fast.done(std::chrono::seconds(30)));
    CPPUNIT_ASSERT_MESSAGE("a delivery to another account waited for a quota rescan", independent);
    CPPUNIT_ASSERT(!fast.threw() && slow_result && slow_result->has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("2000S\n"),
                         slurp(box_dir("slow") / "maildirsize").substr(0, 6));
    CPPUNIT_ASSERT(*must(s().quota_usage("slow")) == (quota_usage{14, 2}));
  }

  void leader_hands_reload_and_rescan_back_to_the_delivering_thread() {
    std::mutex m;
    std::vector<std::string> events;
    std::atomic<bool> armed{false};
    std::atomic<bool> drop_maildirsize{false};
    fs::path maildirsize;
    maildir_options o;
    o.on_commit_batch = [&](std::size_t) {
      if (!armed) return;
      // Removed after the delivering thread checked it: the leader finds it missing.
      if (drop_maildirsize.exchange(false)) fs::remove(maildirsize);
      std::lock_guard lock(m);
      events.push_back("batch");
    };
    o.on_maintenance = [&](std::string_view, std::string_view what) {
      if (!armed) return;
      std::lock_guard lock(m);
      events.emplace_back(what);
    };
    open(o);
    auto deliver_limited = [&](std::string_view body) {
      auto sealed = seal(s(), body);
      delivery_target t;
      t.account = "hand";
      t.quota = quota_limits{1000, 0};
      return must(std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]));
    };
    deliver_limited("one");
    maildirsize = box_dir("hand") / "maildirsize";
    armed = true;
    drop_maildirsize = true;
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, deliver_limited("two").uid);
    {
      std::lock_guard lock(m);
      // Bounced, rescanned outside any leader, committed by a second batch.
      CPPUNIT_ASSERT_EQUAL(std::string("batch,quota rescan,batch"), [&] {
        std::string j;
        for (const auto& e : events) j += (j.empty() ? "" : ",") + e;
        return j;
      }());
    }
    CPPUNIT_ASSERT(*must(s().quota_usage("hand")) == (quota_usage{6, 2}));
  }

  void torn_last_index_line_truncated_nothing_lost() {
    for (int i = 0; i < 3; ++i) deliver_one(s(), "carl", "m" + std::to_string(i));
    store_.reset();
    const fs::path index = box_dir("carl") / "hamail-index";
    const std::string good = slurp(index);
    // A crash mid-append: half a record, no newline.
    spit(index, good + "A 4 4 - 1000 5 n 1000.M1P1Q9.x,S=5,U=");
    open();
    auto snap = must(must(s().open_mailbox("carl", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(good, slurp(index));  // cut back to the last good line
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, deliver_one(s(), "carl", "m").uid);
    CPPUNIT_ASSERT(verify_clean("carl"));

    // The same with a complete last line that fails its CRC (unwritten block).
    store_.reset();
    const std::string good2 = slurp(index);
    spit(index, good2 + "A 9 9 - 1000 5 n garbage deadbeef\n");
    open();
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, must(s().status("carl", "INBOX")).messages);
    CPPUNIT_ASSERT_EQUAL(good2, slurp(index));
  }

  void mid_file_index_corruption_rebuilds_keeping_uids() {
    for (int i = 0; i < 5; ++i)
      deliver_one(s(), "dina", "message " + std::to_string(i), "INBOX", {}, test_date(1000 + i));
    auto box = must(s().open_mailbox("dina", "INBOX"));
    const imap_uid some[] = {2, 4};
    must(box->set_flags(some, flag_mode::add, flags_of(seen, {"Later"})));
    const auto before = must(box->snapshot());
    box.reset();
    store_.reset();
    const fs::path index = box_dir("dina") / "hamail-index";
    std::string text = slurp(index);
    const auto line2 = text.find('\n') + 1;
    text[line2 + 2] = text[line2 + 2] == '1' ? '7' : '1';  // flip the UID of the first record
    spit(index, text);
    open();
    auto after = must(must(s().open_mailbox("dina", "INBOX"))->snapshot());
    CPPUNIT_ASSERT(view(before) == view(after));
    CPPUNIT_ASSERT_EQUAL(before.uid_validity, after.uid_validity);
    CPPUNIT_ASSERT_EQUAL(before.uid_next, after.uid_next);
    // New modseqs start above anything the damaged index had handed out.
    for (const auto& m : after.messages) CPPUNIT_ASSERT(m.modseq > before.highest_modseq);
    CPPUNIT_ASSERT(after.highest_modseq > before.highest_modseq);
    CPPUNIT_ASSERT(verify_clean("dina"));
    CPPUNIT_ASSERT_EQUAL(imap_uid{6}, deliver_one(s(), "dina", "next").uid);
  }

  void deleted_index_rebuilt_keeping_uids_and_uidvalidity() {
    for (int i = 0; i < 3; ++i)
      deliver_one(s(), "emil", "m" + std::to_string(i), "INBOX", {}, test_date(2000 + i));
    must_ok(s().create_mailbox("emil", "Archive"));
    deliver_one(s(), "emil", "archived", "Archive", flags_of(seen));
    auto box = must(s().open_mailbox("emil", "INBOX"));
    const imap_uid one[] = {1};
    must(box->set_flags(one, flag_mode::add, flags_of(flagged)));
    const auto before = must(box->snapshot());
    const auto archive_before = must(must(s().open_mailbox("emil", "Archive"))->snapshot());
    box.reset();
    store_.reset();
    fs::remove(box_dir("emil") / "hamail-index");
    fs::remove(box_dir("emil", "Archive") / "hamail-index");
    open();
    const auto after = must(must(s().open_mailbox("emil", "INBOX"))->snapshot());
    CPPUNIT_ASSERT(view(before) == view(after));
    CPPUNIT_ASSERT_EQUAL(before.uid_validity, after.uid_validity);
    const auto archive_after = must(must(s().open_mailbox("emil", "Archive"))->snapshot());
    CPPUNIT_ASSERT(view(archive_before) == view(archive_after));
    CPPUNIT_ASSERT_EQUAL(archive_before.uid_validity, archive_after.uid_validity);
    CPPUNIT_ASSERT(verify_clean("emil"));

    // The same through the operator's entry point, on a closed store.
    store_.reset();
    fs::remove(box_dir("emil") / "hamail-index");
    open();
    auto report = must(s().rebuild_index("emil"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, report.mailboxes);
    CPPUNIT_ASSERT_EQUAL(std::size_t{4}, report.messages);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, report.uid_validity_renewed);
    CPPUNIT_ASSERT(view(before) == view(must(must(s().open_mailbox("emil", "INBOX"))->snapshot())));
  }

  void lost_uidvalidity_and_index_get_a_new_uidvalidity() {
    deliver_one(s(), "fay", "a");
    deliver_one(s(), "fay", "b");
    const auto uv = must(s().status("fay", "INBOX")).uid_validity;
    store_.reset();
    fs::remove(box_dir("fay") / "hamail-index");
    fs::remove(box_dir("fay") / "hamail-uidvalidity");
    open();
    auto report = must(s().rebuild_index("fay"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, report.uid_validity_renewed);
    const auto snap = must(must(s().open_mailbox("fay", "INBOX"))->snapshot());
    CPPUNIT_ASSERT(snap.uid_validity != uv);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, snap.messages[0].uid);  // UIDs still come from the names
    CPPUNIT_ASSERT(fs::exists(box_dir("fay") / "hamail-uidvalidity"));
    CPPUNIT_ASSERT(verify_clean("fay"));
  }

  void lost_uidvalidity_restored_from_index() {
    deliver_one(s(), "gus", "a");
    const auto uv = must(s().status("gus", "INBOX")).uid_validity;
    store_.reset();
    fs::remove(box_dir("gus") / "hamail-uidvalidity");
    open();
    CPPUNIT_ASSERT_EQUAL(uv, must(s().status("gus", "INBOX")).uid_validity);
    CPPUNIT_ASSERT_EQUAL(std::to_string(uv) + "\n", slurp(box_dir("gus") / "hamail-uidvalidity"));
  }

  void file_renamed_without_index_record_is_reconciled_with_its_uid() {
    deliver_one(s(), "hal", "one");
    deliver_one(s(), "hal", "two");
    store_.reset();
    // Crash after the rename into new/ and before the index append: the leader
    // had given UID 3.
    const fs::path f = box_dir("hal") / "new" / "1700000000.M1P1Q1.test.example,S=5,U=3";
    spit(f, "three");
    ::utimensat(AT_FDCWD, f.c_str(), std::array<timespec, 2>{{{1234, 0}, {1234, 0}}}.data(), 0);
    open();
    auto snap = must(must(s().open_mailbox("hal", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, snap.messages[2].uid);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, snap.messages[2].size);
    CPPUNIT_ASSERT(snap.messages[2].date == test_date(1234));
    CPPUNIT_ASSERT(snap.messages[2].recent);
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, deliver_one(s(), "hal", "four").uid);
    CPPUNIT_ASSERT(verify_clean("hal"));
  }

  void foreign_file_without_uid_gets_next_uid_and_is_renamed() {
    deliver_one(s(), "ida", "one");
    store_.reset();
    spit(box_dir("ida") / "cur" / "1600000000.12345.other-mda:2,S", "foreign!");
    open();
    auto box = must(s().open_mailbox("ida", "INBOX"));
    auto snap = must(box->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, snap.messages[1].uid);
    CPPUNIT_ASSERT(snap.messages[1].flags.has(system_flag::seen));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{8}, snap.messages[1].size);
    // No final line end: POP3 sends 2 octets more, and the new name says so.
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{10}, snap.messages[1].wire_size);
    auto cur = files_in(box_dir("ida") / "cur");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, cur.size());
    CPPUNIT_ASSERT_EQUAL(std::string("1600000000.12345.other-mda,W=10,S=8,U=2:2,S"), cur[0]);
    CPPUNIT_ASSERT_EQUAL(std::string("foreign!"), read_body(must(box->read_message(2))));
    CPPUNIT_ASSERT(verify_clean("ida"));
  }

  void duplicate_uid_files_both_kept_one_renumbered() {
    deliver_one(s(), "jan", "one");
    store_.reset();
    // An operator restored a copy of message 1 from a backup under another name.
    const fs::path box = box_dir("jan");
    spit(box / "cur" / "1500000000.M9P9Q9.backup,S=3,U=1:2,S", "one");
    open();
    auto snap = must(must(s().open_mailbox("jan", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, snap.messages[0].uid);
    CPPUNIT_ASSERT(!snap.messages[0].flags.has(system_flag::seen));  // the indexed file kept UID 1
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, snap.messages[1].uid);
    CPPUNIT_ASSERT(snap.messages[1].flags.has(system_flag::seen));
    CPPUNIT_ASSERT(verify_clean("jan"));
  }

  void restored_file_with_an_expunged_uid_gets_a_new_uid() {
    for (const char* body : {"one", "two", "three"}) deliver_one(s(), "ned", body);
    const fs::path box = box_dir("ned");
    std::string saved;
    for (const auto& f : files_in(box / "new"))
      if (f.ends_with(",U=2")) saved = f;
    CPPUNIT_ASSERT(!saved.empty());
    {
      auto inbox = must(s().open_mailbox("ned", "INBOX"));
      const imap_uid two[] = {2};
      must(inbox->expunge(two));
    }
    store_.reset();
    // Restored from a backup (or moved in by hand) under its old name: UID 2
    // was expunged and clients may have seen UID 3 since.
    spit(box / "cur" / (saved + ":2,S"), "two");
    open();
    auto inbox = must(s().open_mailbox("ned", "INBOX"));
    auto snap = must(inbox->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, snap.messages[0].uid);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, snap.messages[1].uid);
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, snap.messages[2].uid);
    CPPUNIT_ASSERT(snap.messages[2].flags.has(system_flag::seen));
    CPPUNIT_ASSERT_EQUAL(std::string("two"), read_body(must(inbox->read_message(4))));
    CPPUNIT_ASSERT_EQUAL(imap_uid{5}, snap.uid_next);
    // The file carries its new UID, so the next open agrees.
    auto cur = files_in(box / "cur");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, cur.size());
    CPPUNIT_ASSERT_MESSAGE(cur[0], cur[0].ends_with(",S=3,U=4:2,S"));
    CPPUNIT_ASSERT(verify_clean("ned"));
    CPPUNIT_ASSERT_EQUAL(imap_uid{5}, deliver_one(s(), "ned", "five").uid);
    inbox.reset();
    open();
    CPPUNIT_ASSERT_EQUAL(imap_uid{6}, must(s().status("ned", "INBOX")).uid_next);
    CPPUNIT_ASSERT(verify_clean("ned"));
  }

  void file_with_the_largest_uid_does_not_exhaust_the_mailbox() {
    deliver_one(s(), "oli", "one");
    store_.reset();
    const fs::path box = box_dir("oli");
    spit(box / "new" / "1700000000.M1P1Q1.elsewhere,S=3,U=4294967295", "max");
    spit(box / "new" / "1700000000.M1P1Q2.elsewhere,S=4,U=4294967294", "near");
    open();
    auto snap = must(must(s().open_mailbox("oli", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, snap.messages.size());
    CPPUNIT_ASSERT(snap.uid_next != 0);
    // U=4294967294 would leave UIDNEXT at 4294967295 and no UID to give: both renumbered.
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, snap.uid_next);
    std::set<std::string> names;
    for (const auto& f : files_in(box / "new")) names.insert(f.substr(f.find(",S=")));
    CPPUNIT_ASSERT((names == std::set<std::string>{",S=3,U=1", ",S=3,U=2", ",S=4,U=3"} ||
                    names == std::set<std::string>{",S=3,U=1", ",S=4,U=2", ",S=3,U=3"}));
    CPPUNIT_ASSERT(verify_clean("oli"));
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, deliver_one(s(), "oli", "four").uid);
  }

  void leftover_tmp_files_ignored_and_cleaned() {
    deliver_one(s(), "kim", "kept");
    store_.reset();
    spit(data() / "tmp" / "1700000000.M1P1Q1.crashed", "half a message");
    fs::create_directories(data() / "tmp" / "folder.1700000000.M1P1Q2.crashed" / "cur");
    spit(box_dir("kim") / "tmp" / "1700000000.M1P1Q3.crashed", "staged, never committed");
    open();
    CPPUNIT_ASSERT(files_in(data() / "tmp").empty());
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, must(s().status("kim", "INBOX")).messages);
    CPPUNIT_ASSERT(files_in(box_dir("kim") / "tmp").empty());
    CPPUNIT_ASSERT(verify_clean("kim"));
  }

  void vanished_file_expunged_on_open() {
    deliver_one(s(), "lou", "one");
    deliver_one(s(), "lou", "two");
    const auto before = must(must(s().open_mailbox("lou", "INBOX"))->snapshot());
    store_.reset();
    for (const auto& f : files_in(box_dir("lou") / "new"))
      if (f.ends_with(",U=1")) fs::remove(box_dir("lou") / "new" / f);
    open();
    auto after = must(must(s().open_mailbox("lou", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, after.messages.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, after.messages[0].uid);
    CPPUNIT_ASSERT(after.highest_modseq > before.highest_modseq);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, after.uid_next);
    CPPUNIT_ASSERT(verify_clean("lou"));
  }

  void flags_changed_by_hand_are_adopted_on_open() {
    deliver_one(s(), "max", "one");
    const auto before = must(must(s().open_mailbox("max", "INBOX"))->snapshot());
    store_.reset();
    const fs::path box = box_dir("max");
    const auto name = files_in(box / "new").at(0);
    fs::rename(box / "new" / name, box / "cur" / (name + ":2,ST"));
    open();
    auto after = must(must(s().open_mailbox("max", "INBOX"))->snapshot());
    CPPUNIT_ASSERT(after.messages[0].flags.has(system_flag::seen));
    CPPUNIT_ASSERT(after.messages[0].flags.has(system_flag::deleted));
    CPPUNIT_ASSERT(after.messages[0].modseq > before.highest_modseq);
    CPPUNIT_ASSERT(verify_clean("max"));
  }

  void reload_publishes_what_reconcile_found() {
    std::atomic<bool> fail_next{false};
    maildir_options o;
    o.on_commit_batch = [&](std::size_t) {
      if (fail_next.exchange(false)) throw std::runtime_error("injected leader failure");
    };
    open(o);
    for (const char* body : {"one", "two", "three"}) deliver_one(s(), "pub", body);
    auto box = must(s().open_mailbox("pub", "INBOX"));
    const mod_seq before = must(box->snapshot()).highest_modseq;
    std::mutex m;
    std::vector<std::vector<mailbox_change>> seen;
    auto sub = box->subscribe([&](std::span<const mailbox_change> changes) {
      std::lock_guard lock(m);
      seen.emplace_back(changes.begin(), changes.end());
    });
    // Changed by hand while the store runs: UID 1 removed, UID 2 flagged, a
    // foreign file dropped in.
    const fs::path dir = box_dir("pub");
    for (const auto& f : files_in(dir / "new")) {
      if (f.ends_with(",U=1")) fs::remove(dir / "new" / f);
      if (f.ends_with(",U=2")) fs::rename(dir / "new" / f, dir / "cur" / (f + ":2,F"));
    }
    spit(dir / "cur" / "1600000000.1.other-mda:2,S", "foreign");
    // A failed commit makes the store reload the mailbox before its next use.
    fail_next = true;
    auto sealed = seal(s(), "fails");
    delivery_target t;
    t.account = "pub";
    CPPUNIT_ASSERT(!s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]);
    CPPUNIT_ASSERT_EQUAL(imap_uid{5}, deliver_one(s(), "pub", "after").uid);
    {
      std::lock_guard lock(m);
      std::vector<mailbox_change> all;
      for (const auto& batch : seen) {
        for (std::size_t i = 1; i < batch.size(); ++i)
          CPPUNIT_ASSERT(batch[i - 1].modseq < batch[i].modseq);
        all.insert(all.end(), batch.begin(), batch.end());
      }
      using k = mailbox_change::kind_t;
      auto find = [&](k kind, imap_uid uid) -> const mailbox_change* {
        for (const auto& c : all)
          if (c.kind == kind && c.uid == uid) return &c;
        return nullptr;
      };
      CPPUNIT_ASSERT_EQUAL(std::size_t{4}, all.size());
      const auto* gone = find(k::expunge, 1);
      CPPUNIT_ASSERT(gone != nullptr && gone->modseq > before);
      const auto* flagged = find(k::flags, 2);
      CPPUNIT_ASSERT(flagged != nullptr && flagged->flags.has(system_flag::flagged));
      const auto* adopted = find(k::exists, 4);
      CPPUNIT_ASSERT(adopted != nullptr && adopted->flags.has(system_flag::seen));
      CPPUNIT_ASSERT(find(k::exists, 5) != nullptr);
      // In the order they happened: what the reload found, then the delivery.
      CPPUNIT_ASSERT_EQUAL(imap_uid{5}, all.back().uid);
      seen.clear();
    }
    // A rebuild gives every message a new MODSEQ: subscribers hear of each.
    const mod_seq rebuilt_above = must(box->snapshot()).highest_modseq;
    must(s().rebuild_index("pub"));
    std::lock_guard lock(m);
    std::set<imap_uid> changed;
    for (const auto& batch : seen)
      for (const auto& c : batch) {
        CPPUNIT_ASSERT(c.kind == mailbox_change::kind_t::flags && c.modseq > rebuilt_above);
        changed.insert(c.uid);
      }
    CPPUNIT_ASSERT((changed == std::set<imap_uid>{2, 3, 4, 5}));
  }

  void verify_reports_discrepancies_without_repairing() {
    deliver_one(s(), "ned", "one");
    deliver_one(s(), "ned", "two");
    CPPUNIT_ASSERT(verify_clean("ned"));
    const fs::path box = box_dir("ned");
    for (const auto& f : files_in(box / "new"))
      if (f.ends_with(",U=1")) fs::remove(box / "new" / f);
    spit(box / "new" / "1600000000.1.foreign", "x");
    fs::create_directories(box / "cur" / "stray-dir");
    auto found = must(s().verify("ned"));
    std::multiset<discrepancy::kind_t> kinds;
    for (const auto& d : found) kinds.insert(d.kind);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, kinds.count(discrepancy::kind_t::indexed_file_missing));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, kinds.count(discrepancy::kind_t::file_without_uid));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, kinds.count(discrepancy::kind_t::stray_file));
    for (const auto& d : found)
      if (d.kind == discrepancy::kind_t::indexed_file_missing)
        CPPUNIT_ASSERT_EQUAL(imap_uid{1}, d.uid);
    // Nothing was repaired by looking.
    CPPUNIT_ASSERT(fs::exists(box / "new" / "1600000000.1.foreign"));
    CPPUNIT_ASSERT_EQUAL(found.size(), must(s().verify("ned")).size());
    fs::remove(box / "cur" / "stray-dir");
    must(s().rebuild_index("ned"));
    CPPUNIT_ASSERT(verify_clean("ned"));
    auto snap = must(must(s().open_mailbox("ned", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, snap.messages[0].uid);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, snap.messages[1].uid);
  }

  void rebuild_of_open_mailbox_keeps_uids_and_raises_modseqs() {
    deliver_one(s(), "olga", "one");
    deliver_one(s(), "olga", "two", "INBOX", flags_of(seen));
    auto box = must(s().open_mailbox("olga", "INBOX"));
    const auto before = must(box->snapshot());
    auto report = must(s().rebuild_index("olga"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, report.mailboxes);
    const auto after = must(box->snapshot());
    CPPUNIT_ASSERT(view(before) == view(after));
    for (const auto& m : after.messages) CPPUNIT_ASSERT(m.modseq > before.highest_modseq);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, deliver_one(s(), "olga", "three").uid);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, must(box->snapshot()).messages.size());
    CPPUNIT_ASSERT(verify_clean("olga"));
  }

  void rebuild_all_covers_every_account() {
    for (const char* a : {"p1", "p2", "p3@example.org"}) deliver_one(s(), a, "x");
    store_.reset();
    for (const char* a : {"p1", "p2", "p3@example.org"}) fs::remove(box_dir(a) / "hamail-index");
    open();
    auto report = must(s().rebuild_all());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, report.mailboxes);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, report.messages);
    for (const char* a : {"p1", "p2", "p3@example.org"}) CPPUNIT_ASSERT(verify_clean(a));
  }

  void removed_account_is_gone_and_its_open_mailboxes_refuse() {
    deliver_one(s(), "gone", "x");
    must_ok(s().create_mailbox("gone", "Sent"));
    deliver_one(s(), "gone", "y", "Sent");
    deliver_one(s(), "kept", "z");
    auto inbox = must(s().open_mailbox("gone", "INBOX"));
    const fs::path root = box_dir("gone");
    must_ok(s().remove_account("gone"));
    CPPUNIT_ASSERT(!fs::exists(root));
    CPPUNIT_ASSERT(!inbox->snapshot().has_value());    // no stale view of a removed account
    CPPUNIT_ASSERT(files_in(data() / "tmp").empty());  // the renamed tree is removed too
    auto again = s().remove_account("gone");
    CPPUNIT_ASSERT(!again.has_value() && again.err().code == errc::not_found);
    CPPUNIT_ASSERT(!s().remove_account("../kept").has_value());
    CPPUNIT_ASSERT(verify_clean("kept"));
    // The account can be made again from nothing (a move back, say).
    deliver_one(s(), "gone", "new");
    auto fresh = must(must(s().open_mailbox("gone", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, fresh.messages.size());
  }

  void maildirsize_tracks_deliveries_expunges_and_recalculates() {
    const quota_limits q{100000, 50};
    auto deliver_q = [&](std::string_view body, const std::string& mailbox = "INBOX") {
      auto sealed = seal(s(), body);
      delivery_target t;
      t.account = "quin";
      t.mailbox = mailbox;
      t.quota = q;
      return must(std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]));
    };
    deliver_q("12345");
    must_ok(s().create_mailbox("quin", "Folder"));
    deliver_q("1234567890", "Folder");
    const fs::path file = box_dir("quin") / "maildirsize";
    auto usage = [&] {
      std::string text = slurp(file);
      std::int64_t bytes = 0;
      std::int64_t count = 0;
      std::size_t pos = text.find('\n') + 1;
      while (pos < text.size()) {
        const auto nl = text.find('\n', pos);
        const std::string line = text.substr(pos, nl - pos);
        bytes += std::stoll(line.substr(0, line.find(' ')));
        count += std::stoll(line.substr(line.find(' ') + 1));
        pos = nl + 1;
      }
      return std::make_pair(bytes, count);
    };
    CPPUNIT_ASSERT_EQUAL(std::string("100000S,50C\n"), slurp(file).substr(0, 12));
    CPPUNIT_ASSERT(usage() == std::make_pair(std::int64_t{15}, std::int64_t{2}));
    auto box = must(s().open_mailbox("quin", "INBOX"));
    const imap_uid one[] = {1};
    must(box->expunge(one));
    CPPUNIT_ASSERT(usage() == std::make_pair(std::int64_t{10}, std::int64_t{1}));
    // Over 5120 octets: recalculated from the files on the next check.
    {
      std::string text = slurp(file);
      for (int i = 0; i < 1500; ++i) text += "0 0\n";  // > 5120 octets
      text += "999 9\n";  // wrong on purpose: recalculation must not trust it
      spit(file, text);
    }
    deliver_q("abc");
    CPPUNIT_ASSERT_MESSAGE(slurp(file).substr(0, 200), slurp(file).size() < 100);
    CPPUNIT_ASSERT(usage() == std::make_pair(std::int64_t{13}, std::int64_t{2}));
    // Deleting a folder gives its space back.
    must_ok(s().delete_mailbox("quin", "Folder"));
    CPPUNIT_ASSERT(usage() == std::make_pair(std::int64_t{3}, std::int64_t{1}));
    // A changed limit rewrites the limits line.
    auto sealed = seal(s(), "z");
    delivery_target t;
    t.account = "quin";
    t.quota = quota_limits{500, 0};
    must(std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]));
    CPPUNIT_ASSERT_EQUAL(std::string("500S\n"), slurp(file).substr(0, 5));
    CPPUNIT_ASSERT(usage() == std::make_pair(std::int64_t{4}, std::int64_t{2}));
  }

  void quota_usage_reads_maildirsize_and_never_scans() {
    // Delivered without limits: no maildirsize, usage unknown (no scan to find it).
    deliver_one(s(), "free", "12345");
    CPPUNIT_ASSERT(!fs::exists(box_dir("free") / "maildirsize"));
    CPPUNIT_ASSERT(!must(s().quota_usage("free")).has_value());
    CPPUNIT_ASSERT(!fs::exists(box_dir("free") / "maildirsize"));
    // Under a limit the commit path keeps maildirsize; quota_usage reads it as it is.
    auto sealed = seal(s(), "1234567");
    delivery_target t;
    t.account = "free";
    t.quota = quota_limits{1000, 0};
    must(std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]));
    auto used = must(s().quota_usage("free"));
    CPPUNIT_ASSERT(used.has_value());
    CPPUNIT_ASSERT(*used == (quota_usage{12, 2}));
    // What the file says, not what the files are (no rescan on this path).
    spit(box_dir("free") / "maildirsize", "1000S\n12 2\n500 3\n7 1");  // torn last line
    used = must(s().quota_usage("free"));
    CPPUNIT_ASSERT(used.has_value());
    CPPUNIT_ASSERT(*used == (quota_usage{512, 5}));
    // Unparsable: unknown until the next delivery under a limit recalculates it.
    spit(box_dir("free") / "maildirsize", "1000S\ngarbage\n");
    CPPUNIT_ASSERT(!must(s().quota_usage("free")).has_value());
  }

  void hostile_and_odd_names_stay_inside_the_account() {
    for (const char* n : {"a.b", "..x", ".hidden", "x/.y", "Tom & Jerry",
                          "\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x93\xa7"})
      must_ok(s().create_mailbox("rex", n), n);
    const std::string hostile[] = {"../x", "a/../../b", "/etc", "INBOX/../../other",
                                   std::string("a\0b", 3)};
    for (const auto& n : hostile) CPPUNIT_ASSERT(!s().create_mailbox("rex", n));
    const fs::path root = box_dir("rex");
    // Every folder is one directory directly under the account root.
    std::size_t folders = 0;
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string name = e.path().filename().string();
      if (name[0] != '.') {
        CPPUNIT_ASSERT_MESSAGE(
            name,
            (std::set<std::string>{"cur", "new", "tmp", "hamail-index", "hamail-uidvalidity"}.count(
                name)));
        continue;
      }
      ++folders;
      CPPUNIT_ASSERT(fs::exists(e.path() / "maildirfolder"));
    }
    CPPUNIT_ASSERT_EQUAL(std::size_t{8}, folders);  // six names plus the parents "x" and "日本"
    // Nothing outside accounts/<h2>/<account>/ besides the store's own entries.
    for (const auto& e : fs::directory_iterator(data())) {
      const std::string name = e.path().filename().string();
      CPPUNIT_ASSERT_MESSAGE(name, name == "accounts" || name == "tmp" ||
                                       name == "hamail-store.lock" ||
                                       name == "hamail-uidvalidity-last");
    }
    CPPUNIT_ASSERT(files_in(dir_->path()).size() == 1);  // only data/
    auto list = must(s().list_mailboxes("rex"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{9}, list.size());
    must_ok(s().rename_mailbox("rex", "a.b", "c.d"));
    CPPUNIT_ASSERT(fs::exists(root / ".c&AC4-d"));
  }

  void keywords_survive_reopen() {
    deliver_one(s(), "sue", "x", "INBOX", flags_of(0, {"Alpha", "Beta"}));
    auto box = must(s().open_mailbox("sue", "INBOX"));
    const imap_uid one[] = {1};
    must(box->set_flags(one, flag_mode::remove, flags_of(0, {"alpha"})));
    must(box->set_flags(one, flag_mode::add, flags_of(0, {"Gamma"})));
    box.reset();
    open();
    auto m = must(must(s().open_mailbox("sue", "INBOX"))->snapshot()).messages.at(0);
    CPPUNIT_ASSERT((std::set<std::string>(m.flags.keywords.begin(), m.flags.keywords.end()) ==
                    std::set<std::string>{"Beta", "Gamma"}));
  }

  /// UIDs the snapshot of `account`'s INBOX shows as \Recent.
  std::vector<imap_uid> recent_uids(const std::string& account) {
    std::vector<imap_uid> out;
    for (const auto& m : must(must(s().open_mailbox(account, "INBOX"))->snapshot()).messages)
      if (m.recent) out.push_back(m.uid);
    return out;
  }

  // imap-bugs.md B2 / RFC 3501 §2.3.2: once a session has claimed \Recent, no
  // later session sees it, across a restart of the store and a reload too.
  void claimed_recent_stays_claimed_after_reopen_and_reload() {
    deliver_one(s(), "rita", "a");
    deliver_one(s(), "rita", "b");
    {
      auto box = must(s().open_mailbox("rita", "INBOX"));
      CPPUNIT_ASSERT((must(box->claim_recent()) == std::vector<imap_uid>{1, 2}));
    }
    deliver_one(s(), "rita", "c");  // arrives after the claim: still recent
    open();                         // a clean restart
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, must(s().status("rita", "INBOX")).recent);
    CPPUNIT_ASSERT((recent_uids("rita") == std::vector<imap_uid>{3}));
    {
      auto box = must(s().open_mailbox("rita", "INBOX"));
      CPPUNIT_ASSERT((must(box->claim_recent()) == std::vector<imap_uid>{3}));
    }
    open();
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{0}, must(s().status("rita", "INBOX")).recent);
    CPPUNIT_ASSERT(must(must(s().open_mailbox("rita", "INBOX"))->claim_recent()).empty());

    // Without a restart: a mailbox nobody holds leaves the cache and is
    // replayed from its index on the next open.
    maildir_options o;
    o.mailbox_cache = 0;
    open(o);
    deliver_one(s(), "rita", "d");
    CPPUNIT_ASSERT((must(must(s().open_mailbox("rita", "INBOX"))->claim_recent()) ==
                    std::vector<imap_uid>{4}));
    CPPUNIT_ASSERT(recent_uids("rita").empty());
    CPPUNIT_ASSERT(must(must(s().open_mailbox("rita", "INBOX"))->claim_recent()).empty());
    CPPUNIT_ASSERT(verify_clean("rita"));
  }

  // The claim is not synced, but it is written to the file before claim_recent
  // returns: a process killed right after it keeps it (page cache).
  void claimed_recent_survives_sigkill() {
    store_.reset();  // the child takes the store lock
    const int status = in_child([&] {
      maildir_options o;
      o.hostname = "test.example";
      auto store = maildir_store::open(data(), o);
      if (!store) ::_exit(4);
      for (const char* body : {"a", "b", "c"}) deliver_one(**store, "kurt", body);
      auto box = (*store)->open_mailbox("kurt", "INBOX");
      if (!box) ::_exit(5);
      auto claimed = (*box)->claim_recent();
      if (!claimed || claimed->size() != 3) ::_exit(6);
      deliver_one(**store, "kurt", "d");
      ::raise(SIGKILL);
    });
    CPPUNIT_ASSERT_MESSAGE(
        "child exited with " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1),
        WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    open();
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, must(s().status("kurt", "INBOX")).messages);
    CPPUNIT_ASSERT((recent_uids("kurt") == std::vector<imap_uid>{4}));
    CPPUNIT_ASSERT((must(must(s().open_mailbox("kurt", "INBOX"))->claim_recent()) ==
                    std::vector<imap_uid>{4}));
    CPPUNIT_ASSERT(verify_clean("kurt"));
  }

  // What a crash (or power loss) in the middle of a claim can leave: replay and
  // reconcile never make a claimed message that is in cur/ recent again, and
  // never corrupt the index; a claim whose rename was lost is simply undone.
  void recent_claim_cut_short_by_a_crash() {
    for (const char* body : {"a", "b", "c"}) deliver_one(s(), "lena", body);
    const fs::path index = box_dir("lena") / "hamail-index";
    const std::string before_claim = slurp(index);
    must(must(s().open_mailbox("lena", "INBOX"))->claim_recent());
    store_.reset();
    const std::string claimed = slurp(index);
    CPPUNIT_ASSERT_EQUAL(before_claim.size(), claimed.find("R 1 c "));
    CPPUNIT_ASSERT(files_in(box_dir("lena") / "new").empty());

    // 1. Killed during the record write: the last R record is torn (cut off on
    //    open); its file is in cur/ already, and reconcile records that again.
    spit(index, claimed.substr(0, claimed.size() - 12));
    open();
    CPPUNIT_ASSERT(recent_uids("lena").empty());
    CPPUNIT_ASSERT(verify_clean("lena"));
    store_.reset();

    // 2. Power loss: none of the unsynced R records reached the disk, the
    //    renames did.
    spit(index, before_claim);
    open();
    CPPUNIT_ASSERT(recent_uids("lena").empty());
    CPPUNIT_ASSERT(verify_clean("lena"));
    store_.reset();

    // 3. Power loss the other way round: the record survived, the rename of
    //    UID 2 did not. The file in new/ wins: UID 2 is recent again (the
    //    documented cost of not syncing a claim), and claimed once more.
    const fs::path cur = box_dir("lena") / "cur";
    for (const auto& f : files_in(cur))
      if (f.find(",U=2:2,") != std::string::npos)
        fs::rename(cur / f, box_dir("lena") / "new" / f.substr(0, f.find(":2,")));
    open();
    CPPUNIT_ASSERT((recent_uids("lena") == std::vector<imap_uid>{2}));
    CPPUNIT_ASSERT((must(must(s().open_mailbox("lena", "INBOX"))->claim_recent()) ==
                    std::vector<imap_uid>{2}));
    open();
    CPPUNIT_ASSERT(recent_uids("lena").empty());
    CPPUNIT_ASSERT(verify_clean("lena"));

    // 4. A recent message another program (or a lost F record) moved to cur/
    //    with flags: it has been seen, so it is no longer recent.
    deliver_one(s(), "lena", "d");
    CPPUNIT_ASSERT((recent_uids("lena") == std::vector<imap_uid>{4}));
    store_.reset();
    const fs::path fresh = box_dir("lena") / "new";
    for (const auto& f : files_in(fresh)) fs::rename(fresh / f, cur / (f + ":2,S"));
    open();
    CPPUNIT_ASSERT(recent_uids("lena").empty());
    CPPUNIT_ASSERT(must(must(s().open_mailbox("lena", "INBOX"))->snapshot())
                       .messages.back()
                       .flags.has(system_flag::seen));
    CPPUNIT_ASSERT(verify_clean("lena"));
  }

  void unfinished_and_used_tmp_bodies_are_removed() {
    {
      auto in = must(s().begin_delivery());
      must_ok(in.write("abandoned"));
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, files_in(data() / "tmp").size());
    }
    CPPUNIT_ASSERT(files_in(data() / "tmp").empty());
    {
      auto sealed = seal(s(), "kept");
      delivery_target t;
      t.account = "tim";
      must(std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]));
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, files_in(data() / "tmp").size());
    }
    CPPUNIT_ASSERT(files_in(data() / "tmp").empty());
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, files_in(box_dir("tim") / "new").size());
    CPPUNIT_ASSERT(files_in(box_dir("tim") / "tmp").empty());
  }

  void compaction_bounds_the_index_and_keeps_state() {
    maildir_options o;
    o.compact_slack = 5;
    open(o);
    for (int i = 0; i < 3; ++i) deliver_one(s(), "uli", "m");
    auto box = must(s().open_mailbox("uli", "INBOX"));
    const imap_uid all[] = {1, 2, 3};
    for (int i = 0; i < 40; ++i)
      must(box->set_flags(all, i % 2 ? flag_mode::remove : flag_mode::add, flags_of(seen)));
    const auto before = must(box->snapshot());
    const std::string index = slurp(box_dir("uli") / "hamail-index");
    CPPUNIT_ASSERT_MESSAGE(std::to_string(count_lines(index)), count_lines(index) <= 3 * 2 + 5 + 3);
    box.reset();
    open(o);
    const auto after = must(must(s().open_mailbox("uli", "INBOX"))->snapshot());
    CPPUNIT_ASSERT(view(before) == view(after));
    CPPUNIT_ASSERT_EQUAL(before.highest_modseq, after.highest_modseq);
    for (std::size_t i = 0; i < before.messages.size(); ++i)
      CPPUNIT_ASSERT_EQUAL(before.messages[i].modseq, after.messages[i].modseq);
  }

  void rename_keeps_open_sessions_working() {
    must_ok(s().create_mailbox("val", "Old/Child"));
    deliver_one(s(), "val", "x", "Old");
    auto box = must(s().open_mailbox("val", "Old"));
    auto child = must(s().open_mailbox("val", "Old/Child"));
    must_ok(s().rename_mailbox("val", "Old", "New"));
    CPPUNIT_ASSERT_EQUAL(std::string("New"), box->name());
    CPPUNIT_ASSERT_EQUAL(std::string("New/Child"), child->name());
    const imap_uid one[] = {1};
    CPPUNIT_ASSERT_EQUAL(std::size_t{1},
                         must(box->set_flags(one, flag_mode::add, flags_of(seen))).changed.size());
    deliver_one(s(), "val", "y", "New");
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, must(box->snapshot()).messages.size());
    CPPUNIT_ASSERT_EQUAL(std::string("x"), read_body(must(box->read_message(1))));
    CPPUNIT_ASSERT(verify_clean("val"));
  }

  /// Runs `body` in a forked child and returns its wait status.
  static int in_child(const std::function<void()>& body) {
    const pid_t pid = ::fork();
    CPPUNIT_ASSERT(pid >= 0);
    if (pid == 0) {
      const struct rlimit no_core {};
      ::setrlimit(RLIMIT_CORE, &no_core);
      try {
        body();
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);  // survived
    }
    int status = 0;
    CPPUNIT_ASSERT_EQUAL(pid, ::waitpid(pid, &status, 0));
    return status;
  }

  // CppUnit has no death tests: each case forks, the child injects EIO into
  // one kind of sync of a delivery and must die of SIGABRT, not report a
  // retryable error.
  void failed_fsync_stops_the_process() {
    struct fault_case {
      const char* what;
      std::function<bool(const fs::path&)> matches;
    };
    const std::vector<fault_case> cases = {
        {"message body fsync",
         [](const fs::path& p) { return p.parent_path().filename() == "tmp"; }},
        {"new/ directory fsync", [](const fs::path& p) { return p.filename() == "new"; }},
        {"index fdatasync", [](const fs::path& p) { return p.filename() == "hamail-index"; }},
    };
    int n = 0;
    for (const auto& c : cases) {
      const fs::path where = dir_->path() / ("death-" + std::to_string(n++));
      const int status = in_child([&] {
        maildir_options o;
        o.hostname = "test.example";
        auto store = maildir_store::open(where, o);
        if (!store) ::_exit(4);
        deliver_one(**store, "victim", "before the fault");
        posix::set_sync_fault_for_testing(
            [&](const fs::path& p) { return c.matches(p) ? EIO : 0; });
        auto in = (*store)->begin_delivery();
        if (!in || !in->write(std::string("after the fault"))) ::_exit(5);
        auto sealed = in->finish();
        if (!sealed) ::_exit(6);  // the body fsync returned an error instead of stopping
        delivery_target t;
        t.account = "victim";
        (void)(*store)->deliver(*sealed, std::span<const delivery_target>(&t, 1));
      });
      CPPUNIT_ASSERT_MESSAGE(std::string(c.what) + ": child exited with " +
                                 std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1),
                             WIFSIGNALED(status));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(c.what, SIGABRT, WTERMSIG(status));
    }
  }

 private:
  void wire_size_named_in_the_file_and_kept_by_reopen_rebuild_copy_and_move() {
    deliver_one(s(), "wen", "clean\r\n");  // uid 1: size 7, wire 7
    deliver_one(s(), "wen", "a\nb\n");     // uid 2: size 4, wire 6
    {
      // uid 3: a CRLF split across writes, no final line end: size 4, wire 6.
      const auto sealed = seal_pieces(s(), {"x\r", "\ny"});
      delivery_target t;
      t.account = "wen";
      must(std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]));
    }
    const fs::path inbox = box_dir("wen");
    auto names = files_in(inbox / "new");
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, names.size());
    for (const auto& n : names) {
      // Only a message whose wire size differs carries W=, before S= and U=.
      if (n.ends_with(",U=1")) CPPUNIT_ASSERT_MESSAGE(n, n.ends_with(".test.example,S=7,U=1"));
      if (n.ends_with(",U=2")) CPPUNIT_ASSERT_MESSAGE(n, n.ends_with(".test.example,W=6,S=4,U=2"));
      if (n.ends_with(",U=3")) CPPUNIT_ASSERT_MESSAGE(n, n.ends_with(".test.example,W=6,S=4,U=3"));
    }
    using sizes = std::vector<std::array<std::uint64_t, 3>>;  // uid, size, wire size
    auto sizes_of = [&](const std::string& mailbox) {
      sizes out;
      for (const auto& m : must(must(s().open_mailbox("wen", mailbox))->snapshot()).messages)
        out.push_back({m.uid, m.size, m.wire_size});
      return out;
    };
    const sizes expected = {{1, 7, 7}, {2, 4, 6}, {3, 4, 6}};
    CPPUNIT_ASSERT(sizes_of("INBOX") == expected);
    // A flag change renames the file and keeps W=.
    const imap_uid two[] = {2};
    must(must(s().open_mailbox("wen", "INBOX"))->set_flags(two, flag_mode::add, flags_of(seen)));
    names = files_in(inbox / "cur");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, names.size());
    CPPUNIT_ASSERT_MESSAGE(names[0], names[0].ends_with(",W=6,S=4,U=2:2,S"));

    // Replayed from the index, then rebuilt from the file names.
    open();
    CPPUNIT_ASSERT(sizes_of("INBOX") == expected);
    store_.reset();
    fs::remove(inbox / "hamail-index");
    open();
    CPPUNIT_ASSERT(sizes_of("INBOX") == expected);
    CPPUNIT_ASSERT(verify_clean("wen"));

    // Copies and moves carry the same W=.
    must_ok(s().create_mailbox("wen", "Archive"));
    auto box = must(s().open_mailbox("wen", "INBOX"));
    const imap_uid first_two[] = {1, 2};
    const imap_uid third[] = {3};
    must(box->copy(first_two, "Archive"));
    must(box->move(third, "Archive"));
    const fs::path archive = box_dir("wen", "Archive");
    std::vector<std::string> archived = files_in(archive / "new");
    for (const auto& n : files_in(archive / "cur")) archived.push_back(n);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, archived.size());
    std::size_t with_w = 0;
    for (const auto& n : archived) {
      if (n.find(",W=6,S=4,U=") != std::string::npos) ++with_w;
      if (n.find(",U=1") != std::string::npos)
        CPPUNIT_ASSERT_MESSAGE(n, n.find(",W=") == std::string::npos);
    }
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, with_w);
    CPPUNIT_ASSERT(sizes_of("Archive") == expected);
    box.reset();
    store_.reset();
    fs::remove(archive / "hamail-index");
    open();
    CPPUNIT_ASSERT(sizes_of("Archive") == expected);
    CPPUNIT_ASSERT(verify_clean("wen"));
  }

  void foreign_file_wire_size_counted_once_and_named() {
    deliver_one(s(), "ida", "one");
    store_.reset();
    const fs::path box = box_dir("ida");
    // Another MDA's file with LF line ends: its wire size is counted from its content.
    spit(box / "cur" / "1600000000.12345.other-mda:2,S", "foreign\nmail\n");
    // A W= below the size cannot be right: the size stands.
    spit(box / "new" / "1600000001.12345.other-mda,W=1", "abc\r\n");
    // A W= of its own is believed without reading.
    spit(box / "new" / "1600000002.12345.other-mda,W=20,S=3", "xyz");
    open();
    auto snap = must(must(s().open_mailbox("ida", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{4}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{13}, snap.messages[1].size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{15}, snap.messages[1].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, snap.messages[2].size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, snap.messages[2].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{3}, snap.messages[3].size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{20}, snap.messages[3].wire_size);
    const auto cur = files_in(box / "cur");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, cur.size());
    CPPUNIT_ASSERT_EQUAL(std::string("1600000000.12345.other-mda,W=15,S=13,U=2:2,S"), cur[0]);
    const auto in_new = files_in(box / "new");
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, in_new.size());
    CPPUNIT_ASSERT_EQUAL(std::string("1600000001.12345.other-mda,S=5,U=3"), in_new[0]);
    CPPUNIT_ASSERT_EQUAL(std::string("1600000002.12345.other-mda,W=20,S=3,U=4"), in_new[1]);
    CPPUNIT_ASSERT(verify_clean("ida"));
    // The names now say it all: a rebuild needs no reading.
    store_.reset();
    fs::remove(box / "hamail-index");
    open();
    const auto again = must(must(s().open_mailbox("ida", "INBOX"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{15}, again.messages[1].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, again.messages[2].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{20}, again.messages[3].wire_size);
  }

  bool verify_clean(const std::string& account) {
    auto found = must(s().verify(account), "verify " + account);
    for (const auto& d : found)
      std::cerr << "discrepancy: " << d.mailbox << " uid " << d.uid << " kind "
                << static_cast<int>(d.kind) << ": " << d.detail << "\n";
    return found.empty();
  }
  std::unique_ptr<hamail::test::temp_dir> dir_;
  std::unique_ptr<maildir_store> store_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(maildir_store_test);

}  // namespace hamail::store

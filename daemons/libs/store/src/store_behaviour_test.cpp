// Behaviour every mail_store must show, run against maildir_store and
// memory_store alike.

#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hamail/store/maildir_store.hpp"
#include "hamail/store/memory_store.hpp"
#include "hamail/test/temp_dir.hpp"
#include "store_test_util.hpp"

namespace hamail::store {

using namespace testing;

namespace {

struct maildir_fixture {
  hamail::test::temp_dir dir;
  std::unique_ptr<maildir_store> store;
  maildir_fixture() {
    maildir_options o;
    o.hostname = "test.example";
    store = must(maildir_store::open(dir.path() / "data", o), "open");
  }
  mail_store& get() { return *store; }
};

struct memory_fixture {
  memory_store store;
  mail_store& get() { return store; }
};

bool same_error(const error& e, error_kind kind, errc code) {
  return e.kind == kind && e.code == code;
}

}  // namespace

template <class Fixture>
class store_behaviour_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(store_behaviour_test);
  CPPUNIT_TEST(delivery_visible_with_uid_size_flags_and_date);
  CPPUNIT_TEST(uids_and_modseqs_strictly_increase_and_are_never_reused);
  CPPUNIT_TEST(set_flags_add_remove_replace_and_keywords);
  CPPUNIT_TEST(set_flags_unchanged_since_reports_modified);
  CPPUNIT_TEST(unchanged_flags_keep_their_modseq);
  CPPUNIT_TEST(notifications_arrive_after_changes_in_modseq_order);
  CPPUNIT_TEST(cancelled_subscription_gets_nothing);
  CPPUNIT_TEST(recent_is_claimed_once);
  CPPUNIT_TEST(claimed_recent_stays_claimed_for_a_reopened_mailbox);
  CPPUNIT_TEST(read_message_returns_the_body_even_after_a_flag_change);
  CPPUNIT_TEST(read_unknown_uid_is_permanent_not_found);
  CPPUNIT_TEST(copy_and_move_keep_flags_and_dates);
  CPPUNIT_TEST(append_commits_like_a_delivery);
  CPPUNIT_TEST(copy_over_quota_copies_nothing);
  CPPUNIT_TEST(create_list_rename_delete_follow_imap);
  CPPUNIT_TEST(rename_inbox_moves_messages_and_keeps_inbox);
  CPPUNIT_TEST(open_sessions_share_one_state);
  CPPUNIT_TEST(deleted_mailbox_fails_for_open_sessions);
  CPPUNIT_TEST(quota_one_of_three_recipients_over);
  CPPUNIT_TEST(quota_bigger_than_limit_is_permanent_else_temporary);
  CPPUNIT_TEST(quota_message_count_limit);
  CPPUNIT_TEST(quota_usage_follows_deliveries_and_expunges);
  CPPUNIT_TEST(hostile_names_rejected_everywhere);
  CPPUNIT_TEST(delivery_to_missing_folder_is_permanent_not_found);
  CPPUNIT_TEST(more_than_26_keywords_refused);
  CPPUNIT_TEST(status_counts_messages_recent_unseen_size);
  CPPUNIT_TEST(wire_size_counts_every_line_end_as_crlf);
  CPPUNIT_TEST(wire_size_kept_by_append_copy_and_move);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override { f_ = std::make_unique<Fixture>(); }
  void tearDown() override { f_.reset(); }
  mail_store& s() { return f_->get(); }

  void delivery_visible_with_uid_size_flags_and_date() {
    const auto d1 =
        deliver_one(s(), "alice", "Subject: one\r\n\r\nbody\r\n", "INBOX", {}, test_date());
    const auto d2 = deliver_one(s(), "alice", "two", "inbox", flags_of(seen | flagged, {"$Junk"}),
                                test_date(2000));
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, d1.uid);
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, d2.uid);
    CPPUNIT_ASSERT(d1.uid_validity != 0);
    CPPUNIT_ASSERT_EQUAL(d1.uid_validity, d2.uid_validity);
    CPPUNIT_ASSERT(d2.modseq > d1.modseq);

    auto box = must(s().open_mailbox("alice", "INBOX"));
    auto snap = must(box->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(d1.uid_validity, snap.uid_validity);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, snap.uid_next);
    CPPUNIT_ASSERT_EQUAL(d2.modseq, snap.highest_modseq);
    const auto& m1 = snap.messages[0];
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{22}, m1.size);
    CPPUNIT_ASSERT(m1.date == test_date());
    CPPUNIT_ASSERT_EQUAL(std::uint8_t{0}, m1.flags.system);
    CPPUNIT_ASSERT(m1.recent);
    const auto& m2 = snap.messages[1];
    CPPUNIT_ASSERT(m2.flags.has(system_flag::seen));
    CPPUNIT_ASSERT(m2.flags.has(system_flag::flagged));
    CPPUNIT_ASSERT(m2.flags.has_keyword("$junk"));
    CPPUNIT_ASSERT(m2.date == test_date(2000));
    CPPUNIT_ASSERT_EQUAL(d2.modseq, m2.modseq);
    CPPUNIT_ASSERT_EQUAL(std::string("Subject: one\r\n\r\nbody\r\n"),
                         read_body(must(box->read_message(1))));
  }

  void uids_and_modseqs_strictly_increase_and_are_never_reused() {
    for (int i = 0; i < 3; ++i) deliver_one(s(), "bob", "m" + std::to_string(i));
    auto box = must(s().open_mailbox("bob", "INBOX"));
    const imap_uid top[] = {3};
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, must(box->expunge(top)).size());
    const auto d = deliver_one(s(), "bob", "after");
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, d.uid);
    auto snap = must(box->snapshot());
    CPPUNIT_ASSERT_EQUAL(imap_uid{5}, snap.uid_next);
    mod_seq last = 0;
    imap_uid last_uid = 0;
    for (const auto& m : snap.messages) {
      CPPUNIT_ASSERT(m.uid > last_uid);
      last_uid = m.uid;
      last = std::max(last, m.modseq);
    }
    CPPUNIT_ASSERT(snap.highest_modseq >= last);
  }

  void set_flags_add_remove_replace_and_keywords() {
    deliver_one(s(), "carol", "x");
    auto box = must(s().open_mailbox("carol", "INBOX"));
    const imap_uid one[] = {1};
    auto r = must(box->set_flags(one, flag_mode::add, flags_of(seen, {"Work", "$Forwarded"})));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, r.changed.size());
    CPPUNIT_ASSERT(r.changed[0].flags.has(system_flag::seen));
    CPPUNIT_ASSERT(r.changed[0].flags.has_keyword("work"));
    CPPUNIT_ASSERT(r.changed[0].flags.has_keyword("$forwarded"));
    // The first spelling of a keyword wins.
    must(box->set_flags(one, flag_mode::add, flags_of(0, {"WORK", "Home"})));
    auto m = must(box->snapshot()).messages[0];
    CPPUNIT_ASSERT(std::find(m.flags.keywords.begin(), m.flags.keywords.end(), "Work") !=
                   m.flags.keywords.end());
    CPPUNIT_ASSERT(m.flags.has_keyword("home"));
    must(box->set_flags(one, flag_mode::remove, flags_of(seen, {"work"})));
    m = must(box->snapshot()).messages[0];
    CPPUNIT_ASSERT(!m.flags.has(system_flag::seen));
    CPPUNIT_ASSERT(!m.flags.has_keyword("Work"));
    CPPUNIT_ASSERT(m.flags.has_keyword("Home"));
    must(box->set_flags(one, flag_mode::replace, flags_of(deleted | draft | answered)));
    m = must(box->snapshot()).messages[0];
    CPPUNIT_ASSERT_EQUAL(static_cast<std::uint8_t>(deleted | draft | answered), m.flags.system);
    CPPUNIT_ASSERT(m.flags.keywords.empty());
    // Bad keywords are refused as permanent errors.
    auto e = must_fail(box->set_flags(one, flag_mode::add, flags_of(0, {"bad word"})));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::invalid_input));
    e = must_fail(box->set_flags(one, flag_mode::add, flags_of(0, {"\\Seen"})));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::invalid_input));
    // Unknown UIDs are ignored.
    const imap_uid ghost[] = {99};
    CPPUNIT_ASSERT(must(box->set_flags(ghost, flag_mode::add, flags_of(seen))).changed.empty());
  }

  void set_flags_unchanged_since_reports_modified() {
    deliver_one(s(), "dave", "a");
    deliver_one(s(), "dave", "b");
    auto box = must(s().open_mailbox("dave", "INBOX"));
    const auto before = must(box->snapshot());
    const imap_uid two[] = {2};
    must(box->set_flags(two, flag_mode::add, flags_of(flagged)));
    const imap_uid both[] = {1, 2};
    auto r = must(box->set_flags(both, flag_mode::add, flags_of(seen), before.highest_modseq));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, r.changed.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, r.changed[0].uid);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, r.modified.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, r.modified[0]);
    CPPUNIT_ASSERT(!must(box->snapshot()).messages[1].flags.has(system_flag::seen));
  }

  void unchanged_flags_keep_their_modseq() {
    deliver_one(s(), "erin", "a", "INBOX", flags_of(seen));
    auto box = must(s().open_mailbox("erin", "INBOX"));
    const auto before = must(box->snapshot());
    const imap_uid one[] = {1};
    auto r = must(box->set_flags(one, flag_mode::add, flags_of(seen)));
    CPPUNIT_ASSERT(r.changed.empty());
    const auto after = must(box->snapshot());
    CPPUNIT_ASSERT_EQUAL(before.highest_modseq, after.highest_modseq);
    CPPUNIT_ASSERT_EQUAL(before.messages[0].modseq, after.messages[0].modseq);
  }

  void notifications_arrive_after_changes_in_modseq_order() {
    auto box = must(s().open_mailbox("frank", "INBOX"));
    std::mutex m;
    std::vector<mailbox_change> seen_changes;
    std::vector<std::size_t> visible_at_callback;
    auto sub = box->subscribe([&](std::span<const mailbox_change> changes) {
      // The change is already visible to every session when we hear of it.
      auto snap = box->snapshot();
      std::lock_guard lock(m);
      for (const auto& c : changes) seen_changes.push_back(c);
      visible_at_callback.push_back(snap ? snap->messages.size() : 999);
    });
    deliver_one(s(), "frank", "one");
    deliver_one(s(), "frank", "two");
    const imap_uid one[] = {1};
    must(box->set_flags(one, flag_mode::add, flags_of(seen)));
    must(box->expunge(one));
    std::lock_guard lock(m);
    CPPUNIT_ASSERT_EQUAL(std::size_t{4}, seen_changes.size());
    CPPUNIT_ASSERT(seen_changes[0].kind == mailbox_change::kind_t::exists);
    CPPUNIT_ASSERT(seen_changes[1].kind == mailbox_change::kind_t::exists);
    CPPUNIT_ASSERT(seen_changes[2].kind == mailbox_change::kind_t::flags);
    CPPUNIT_ASSERT(seen_changes[2].flags.has(system_flag::seen));
    CPPUNIT_ASSERT(seen_changes[3].kind == mailbox_change::kind_t::expunge);
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, seen_changes[3].uid);
    for (std::size_t i = 1; i < seen_changes.size(); ++i)
      CPPUNIT_ASSERT(seen_changes[i].modseq > seen_changes[i - 1].modseq);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, visible_at_callback[0]);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, visible_at_callback[1]);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, visible_at_callback[3]);
  }

  void cancelled_subscription_gets_nothing() {
    auto box = must(s().open_mailbox("gina", "INBOX"));
    int calls = 0;
    auto sub = box->subscribe([&](std::span<const mailbox_change>) { ++calls; });
    deliver_one(s(), "gina", "one");
    CPPUNIT_ASSERT_EQUAL(1, calls);
    sub.reset();
    deliver_one(s(), "gina", "two");
    CPPUNIT_ASSERT_EQUAL(1, calls);
  }

  void recent_is_claimed_once() {
    deliver_one(s(), "hank", "a");
    deliver_one(s(), "hank", "b");
    // Arriving with flags means arriving in cur/: not \Recent (documented).
    deliver_one(s(), "hank", "c", "INBOX", flags_of(seen));
    auto box = must(s().open_mailbox("hank", "INBOX"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, must(box->status()).recent);
    auto claimed = must(box->claim_recent());
    CPPUNIT_ASSERT((claimed == std::vector<imap_uid>{1, 2}));
    CPPUNIT_ASSERT(must(box->claim_recent()).empty());
    for (const auto& m : must(box->snapshot()).messages) CPPUNIT_ASSERT(!m.recent);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{0}, must(box->status()).recent);
    deliver_one(s(), "hank", "d");
    CPPUNIT_ASSERT((must(box->claim_recent()) == std::vector<imap_uid>{4}));
  }

  // RFC 3501 §2.3.2: "subsequent sessions will not see \Recent set for this
  // message", also when they open the mailbox anew.
  void claimed_recent_stays_claimed_for_a_reopened_mailbox() {
    deliver_one(s(), "hedy", "a");
    deliver_one(s(), "hedy", "b");
    {
      auto box = must(s().open_mailbox("hedy", "INBOX"));
      CPPUNIT_ASSERT((must(box->claim_recent()) == std::vector<imap_uid>{1, 2}));
    }
    deliver_one(s(), "hedy", "c");
    auto box = must(s().open_mailbox("hedy", "INBOX"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, must(box->status()).recent);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, must(s().status("hedy", "INBOX")).recent);
    for (const auto& m : must(box->snapshot()).messages) CPPUNIT_ASSERT_EQUAL(m.uid == 3, m.recent);
    CPPUNIT_ASSERT((must(box->claim_recent()) == std::vector<imap_uid>{3}));
  }

  void read_message_returns_the_body_even_after_a_flag_change() {
    deliver_one(s(), "ivan", "the body");
    auto box = must(s().open_mailbox("ivan", "INBOX"));
    auto file = must(box->read_message(1));
    const imap_uid one[] = {1};
    must(box->set_flags(one, flag_mode::add, flags_of(seen)));
    CPPUNIT_ASSERT_EQUAL(std::string("the body"), read_body(file));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{8}, file.size);
    CPPUNIT_ASSERT_EQUAL(std::string("the body"), read_body(must(box->read_message(1))));
    must(box->expunge(one));
    CPPUNIT_ASSERT_EQUAL(std::string("the body"), read_body(file));  // an open fd outlives expunge
  }

  void read_unknown_uid_is_permanent_not_found() {
    auto box = must(s().open_mailbox("judy", "INBOX"));
    auto e = must_fail(box->read_message(5));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::not_found));
  }

  void copy_and_move_keep_flags_and_dates() {
    deliver_one(s(), "kate", "one", "INBOX", flags_of(seen, {"Work"}), test_date(1234));
    deliver_one(s(), "kate", "two", "INBOX", {}, test_date(5678));
    must_ok(s().create_mailbox("kate", "Archive"));
    auto inbox = must(s().open_mailbox("kate", "INBOX"));
    const imap_uid both[] = {1, 2, 77};
    auto c = must(inbox->copy(both, "Archive"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, c.uids.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, c.uids[0].first);
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, c.uids[0].second);
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, c.uids[1].second);
    auto archive = must(s().open_mailbox("kate", "Archive"));
    CPPUNIT_ASSERT_EQUAL(c.uid_validity, must(archive->snapshot()).uid_validity);
    auto snap = must(archive->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT(snap.messages[0].flags.has(system_flag::seen));
    CPPUNIT_ASSERT(snap.messages[0].flags.has_keyword("Work"));
    CPPUNIT_ASSERT(snap.messages[0].date == test_date(1234));
    CPPUNIT_ASSERT(snap.messages[1].date == test_date(5678));
    CPPUNIT_ASSERT_EQUAL(std::string("two"), read_body(must(archive->read_message(2))));
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, must(inbox->snapshot()).messages.size());

    const imap_uid first[] = {1};
    auto mv = must(inbox->move(first, "Archive"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, mv.uids.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, mv.uids[0].second);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, must(inbox->snapshot()).messages.size());
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, must(archive->snapshot()).messages.size());
    // Copy into a mailbox that does not exist.
    auto e = must_fail(inbox->copy(both, "Nowhere"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::not_found));
  }

  void append_commits_like_a_delivery() {
    must_ok(s().create_mailbox("abe", "Drafts"));
    auto box = must(s().open_mailbox("abe", "Drafts"));
    int exists = 0;
    auto sub = box->subscribe(
        [&](std::span<const mailbox_change> c) { exists += static_cast<int>(c.size()); });
    auto sealed = seal(s(), "draft body");
    const auto d = must(box->append(sealed, flags_of(draft | seen), test_date(4321)));
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, d.uid);
    CPPUNIT_ASSERT_EQUAL(1, exists);
    auto snap = must(box->snapshot());
    CPPUNIT_ASSERT_EQUAL(d.uid_validity, snap.uid_validity);
    CPPUNIT_ASSERT(snap.messages[0].flags.has(system_flag::draft));
    CPPUNIT_ASSERT(snap.messages[0].date == test_date(4321));
    CPPUNIT_ASSERT_EQUAL(std::string("draft body"), read_body(must(box->read_message(1))));
    // The same sealed body can be appended again (and elsewhere).
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, must(box->append(sealed, {})).uid);
  }

  void copy_over_quota_copies_nothing() {
    deliver_one(s(), "bea", "one");
    deliver_one(s(), "bea", "two");
    must_ok(s().create_mailbox("bea", "Archive"));
    auto inbox = must(s().open_mailbox("bea", "INBOX"));
    const imap_uid both[] = {1, 2};
    auto e = must_fail(inbox->copy(both, "Archive", quota_limits{0, 3}));
    CPPUNIT_ASSERT(same_error(e, error_kind::temporary, errc::quota_exceeded));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{0}, must(s().status("bea", "Archive")).messages);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, must(s().status("bea", "INBOX")).messages);
    // MOVE does not change the account's usage: it is never refused for quota
    // (a user at the limit must still be able to move mail to Trash).
    must(inbox->move(both, "Archive", quota_limits{0, 2}));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{0}, must(s().status("bea", "INBOX")).messages);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, must(s().status("bea", "Archive")).messages);
  }

  void create_list_rename_delete_follow_imap() {
    must_ok(s().create_mailbox("leo", "a/b"));
    auto list = must(s().list_mailboxes("leo"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, list.size());
    CPPUNIT_ASSERT_EQUAL(std::string("INBOX"), list[0].name);
    CPPUNIT_ASSERT_EQUAL(std::string("a"), list[1].name);
    CPPUNIT_ASSERT(list[1].has_children);
    CPPUNIT_ASSERT(list[1].selectable);
    CPPUNIT_ASSERT_EQUAL(std::string("a/b"), list[2].name);
    CPPUNIT_ASSERT(!list[2].has_children);
    auto e = must_fail(s().create_mailbox("leo", "a/b"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::already_exists));
    e = must_fail(s().create_mailbox("leo", "inbox"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::already_exists));

    deliver_one(s(), "leo", "in b", "a/b");
    must_ok(s().rename_mailbox("leo", "a", "c/d"));
    list = must(s().list_mailboxes("leo"));
    std::vector<std::string> names;
    for (const auto& l : list) names.push_back(l.name);
    CPPUNIT_ASSERT((names == std::vector<std::string>{"INBOX", "c", "c/d", "c/d/b"}));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, must(s().status("leo", "c/d/b")).messages);
    e = must_fail(s().status("leo", "a/b"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::not_found));
    e = must_fail(s().rename_mailbox("leo", "c", "c/x"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::invalid_input));
    e = must_fail(s().rename_mailbox("leo", "nope", "x"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::not_found));
    e = must_fail(s().rename_mailbox("leo", "c/d", "c"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::already_exists));

    e = must_fail(s().delete_mailbox("leo", "c/d"));  // has children
    CPPUNIT_ASSERT(e.is_permanent());
    e = must_fail(s().delete_mailbox("leo", "INBOX"));
    CPPUNIT_ASSERT(e.is_permanent());
    must_ok(s().delete_mailbox("leo", "c/d/b"));
    must_ok(s().delete_mailbox("leo", "c/d"));
    must_ok(s().delete_mailbox("leo", "c"));
    e = must_fail(s().delete_mailbox("leo", "c"));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::not_found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, must(s().list_mailboxes("leo")).size());
    // A recreated mailbox starts over with a new UIDVALIDITY.
    must_ok(s().create_mailbox("leo", "c"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{0}, must(s().status("leo", "c")).messages);
  }

  void rename_inbox_moves_messages_and_keeps_inbox() {
    deliver_one(s(), "mia", "one");
    deliver_one(s(), "mia", "two", "INBOX", flags_of(seen));
    must_ok(s().rename_mailbox("mia", "INBOX", "Old"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{0}, must(s().status("mia", "INBOX")).messages);
    auto old = must(s().open_mailbox("mia", "Old"));
    auto snap = must(old->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT(snap.messages[1].flags.has(system_flag::seen));
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, must(s().status("mia", "INBOX")).uid_next);
  }

  void open_sessions_share_one_state() {
    auto a = must(s().open_mailbox("nina", "INBOX"));
    auto b = must(s().open_mailbox("nina", "inbox"));
    deliver_one(s(), "nina", "x");
    const imap_uid one[] = {1};
    must(a->set_flags(one, flag_mode::add, flags_of(seen)));
    auto snap = must(b->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, snap.messages.size());
    CPPUNIT_ASSERT(snap.messages[0].flags.has(system_flag::seen));
    CPPUNIT_ASSERT_EQUAL(std::string("INBOX"), b->name());
  }

  void deleted_mailbox_fails_for_open_sessions() {
    must_ok(s().create_mailbox("owen", "Tmp"));
    auto box = must(s().open_mailbox("owen", "Tmp"));
    must_ok(s().delete_mailbox("owen", "Tmp"));
    auto e = must_fail(box->snapshot());
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::not_found));
    auto sealed = seal(s(), "late");
    e = must_fail(box->append(sealed, {}));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::not_found));
  }

  void quota_one_of_three_recipients_over() {
    deliver_one(s(), "full", std::string(90, 'x'));
    auto sealed = seal(s(), std::string(20, 'y'));
    std::vector<delivery_target> targets(3);
    targets[0].account = "p1";
    targets[1].account = "full";
    targets[2].account = "p2";
    for (auto& t : targets) t.quota = quota_limits{100, 0};
    auto results = s().deliver(sealed, targets);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, results.size());
    CPPUNIT_ASSERT(results[0].has_value());
    CPPUNIT_ASSERT(!results[1].has_value());
    CPPUNIT_ASSERT(same_error(results[1].err(), error_kind::temporary, errc::quota_exceeded));
    CPPUNIT_ASSERT(results[2].has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, must(s().status("full", "INBOX")).messages);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, must(s().status("p1", "INBOX")).messages);
    // Room made: it fits again.
    auto box = must(s().open_mailbox("full", "INBOX"));
    const imap_uid one[] = {1};
    must(box->expunge(one));
    CPPUNIT_ASSERT(
        s().deliver(sealed, std::span<const delivery_target>(&targets[1], 1))[0].has_value());
  }

  void quota_usage_follows_deliveries_and_expunges() {
    // An account that does not exist uses nothing.
    auto none = must(s().quota_usage("nobody"));
    CPPUNIT_ASSERT(none.has_value());
    CPPUNIT_ASSERT(*none == quota_usage{});
    const quota_limits q{100000, 50};
    auto deliver_q = [&](std::string_view body, const std::string& mailbox) {
      auto sealed = seal(s(), body);
      delivery_target t;
      t.account = "quota-user";
      t.mailbox = mailbox;
      t.quota = q;
      return must(std::move(s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0]));
    };
    deliver_q(std::string(30, 'a'), "INBOX");
    must_ok(s().create_mailbox("quota-user", "Sub"));
    deliver_q(std::string(20, 'b'), "Sub");
    auto used = must(s().quota_usage("quota-user"));
    CPPUNIT_ASSERT(used.has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{50}, used->bytes);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, used->messages);
    auto box = must(s().open_mailbox("quota-user", "INBOX"));
    const imap_uid one[] = {1};
    must(box->expunge(one));
    used = must(s().quota_usage("quota-user"));
    CPPUNIT_ASSERT(used.has_value());
    CPPUNIT_ASSERT(*used == (quota_usage{20, 1}));
    CPPUNIT_ASSERT(same_error(must_fail(s().quota_usage("../etc")), error_kind::permanent,
                              errc::invalid_input));
  }

  void quota_bigger_than_limit_is_permanent_else_temporary() {
    auto big = seal(s(), std::string(200, 'z'));
    delivery_target t;
    t.account = "quincy";
    t.quota = quota_limits{100, 0};
    auto e = s().deliver(big, std::span<const delivery_target>(&t, 1))[0];
    CPPUNIT_ASSERT(!e);
    CPPUNIT_ASSERT(same_error(e.err(), error_kind::permanent, errc::quota_exceeded));
    // Also through APPEND.
    auto box = must(s().open_mailbox("quincy", "INBOX"));
    auto a = must_fail(box->append(big, {}, std::nullopt, quota_limits{100, 0}));
    CPPUNIT_ASSERT(same_error(a, error_kind::permanent, errc::quota_exceeded));
    auto small = seal(s(), std::string(60, 'z'));
    CPPUNIT_ASSERT(s().deliver(small, std::span<const delivery_target>(&t, 1))[0].has_value());
    auto again = s().deliver(small, std::span<const delivery_target>(&t, 1))[0];
    CPPUNIT_ASSERT(!again);
    CPPUNIT_ASSERT(same_error(again.err(), error_kind::temporary, errc::quota_exceeded));
  }

  void quota_message_count_limit() {
    delivery_target t;
    t.account = "rita";
    t.quota = quota_limits{0, 2};
    auto m = seal(s(), "m");
    CPPUNIT_ASSERT(s().deliver(m, std::span<const delivery_target>(&t, 1))[0].has_value());
    CPPUNIT_ASSERT(s().deliver(m, std::span<const delivery_target>(&t, 1))[0].has_value());
    auto r = s().deliver(m, std::span<const delivery_target>(&t, 1))[0];
    CPPUNIT_ASSERT(!r);
    CPPUNIT_ASSERT(same_error(r.err(), error_kind::temporary, errc::quota_exceeded));
    // Unlimited targets are not held back by someone else's limits.
    t.quota = quota_limits{};
    CPPUNIT_ASSERT(s().deliver(m, std::span<const delivery_target>(&t, 1))[0].has_value());
  }

  void hostile_names_rejected_everywhere() {
    const std::string hostile[] = {"../x",
                                   "a/../../b",
                                   "/etc",
                                   "INBOX/../../other",
                                   std::string("a\0b", 3),
                                   "a\nb",
                                   std::string(300, 'n'),
                                   "a//b",
                                   ".."};
    auto sealed = seal(s(), "x");
    for (const auto& n : hostile) {
      auto check = [&](const error& e) {
        CPPUNIT_ASSERT_MESSAGE(e.describe(),
                               same_error(e, error_kind::permanent, errc::invalid_input));
      };
      check(must_fail(s().create_mailbox("sam", n), "create " + n));
      check(must_fail(s().open_mailbox("sam", n), "open " + n));
      check(must_fail(s().status("sam", n), "status " + n));
      check(must_fail(s().delete_mailbox("sam", n), "delete " + n));
      check(must_fail(s().rename_mailbox("sam", "INBOX", n), "rename to " + n));
      check(must_fail(s().rename_mailbox("sam", n, "ok"), "rename from " + n));
      delivery_target t;
      t.account = "sam";
      t.mailbox = n;
      auto r = s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0];
      CPPUNIT_ASSERT(!r);
      check(r.err());
    }
    for (const std::string account : {"../sam", "Sam", "", "a/b", ".x"}) {
      auto e = must_fail(s().open_mailbox(account, "INBOX"));
      CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::invalid_input));
      delivery_target t;
      t.account = account;
      auto r = s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0];
      CPPUNIT_ASSERT(!r);
      CPPUNIT_ASSERT(same_error(r.err(), error_kind::permanent, errc::invalid_input));
    }
    // Nothing was created on the way: only INBOX is listed.
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, must(s().list_mailboxes("sam")).size());
  }

  void delivery_to_missing_folder_is_permanent_not_found() {
    auto sealed = seal(s(), "x");
    delivery_target t;
    t.account = "tom";
    t.mailbox = "Nope";
    auto r = s().deliver(sealed, std::span<const delivery_target>(&t, 1))[0];
    CPPUNIT_ASSERT(!r);
    CPPUNIT_ASSERT(same_error(r.err(), error_kind::permanent, errc::not_found));
  }

  void more_than_26_keywords_refused() {
    deliver_one(s(), "uma", "x");
    auto box = must(s().open_mailbox("uma", "INBOX"));
    const imap_uid one[] = {1};
    message_flags many;
    for (int i = 0; i < 26; ++i) many.keywords.push_back("k" + std::to_string(i));
    auto r = must(box->set_flags(one, flag_mode::add, many));
    CPPUNIT_ASSERT_EQUAL(std::size_t{26}, r.changed[0].flags.keywords.size());
    auto e = must_fail(box->set_flags(one, flag_mode::add, flags_of(0, {"k26"})));
    CPPUNIT_ASSERT(same_error(e, error_kind::permanent, errc::limit_exceeded));
    // $Forwarded needs no letter.
    must(box->set_flags(one, flag_mode::add, flags_of(0, {"$Forwarded"})));
    CPPUNIT_ASSERT_EQUAL(std::size_t{27}, must(box->snapshot()).messages[0].flags.keywords.size());
  }

  void status_counts_messages_recent_unseen_size() {
    deliver_one(s(), "vic", "12345");
    deliver_one(s(), "vic", "123", "INBOX", flags_of(seen));
    auto st = must(s().status("vic", "INBOX"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, st.messages);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, st.recent);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, st.unseen);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{8}, st.size);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, st.uid_next);
    CPPUNIT_ASSERT(st.highest_modseq >= 2);
  }

  void wire_size_counts_every_line_end_as_crlf() {
    struct sample {
      std::initializer_list<std::string_view> pieces;
      std::uint64_t size, wire;
    };
    const sample samples[] = {
        {{"Subject: x\r\n", "\r\nbody\r\n"}, 20, 20},  // CRLF-clean
        {{"a\nb\n"}, 4, 6},                            // bare LFs
        {{"abc"}, 3, 5},                               // no final line end
        {{"abc\r"}, 4, 6},                             // a lone CR at the end is content
        {{"a\r", "\nb\r\n"}, 6, 6},                    // a CRLF split across writes
        {{"a", "\n"}, 2, 3},                           // an LF alone at a write's start
        {{}, 0, 0},                                    // empty
    };
    auto box = must(s().open_mailbox("wes", "INBOX"));
    imap_uid uid = 0;
    for (const auto& m : samples) {
      auto sealed = seal_pieces(s(), m.pieces);
      CPPUNIT_ASSERT_EQUAL(m.size, sealed.size());
      CPPUNIT_ASSERT_EQUAL(m.wire, sealed.wire_size());
      delivery_target t;
      t.account = "wes";
      auto r = s().deliver(sealed, std::span<const delivery_target>(&t, 1));
      uid = must(std::move(r[0]), "deliver").uid;
      const auto snap = must(box->snapshot());
      const auto& info = snap.messages.back();
      CPPUNIT_ASSERT_EQUAL(uid, info.uid);
      CPPUNIT_ASSERT_EQUAL(m.size, info.size);
      CPPUNIT_ASSERT_EQUAL(m.wire, info.wire_size);
    }
    CPPUNIT_ASSERT_EQUAL(imap_uid{7}, uid);
  }

  void wire_size_kept_by_append_copy_and_move() {
    must_ok(s().create_mailbox("wes", "Drafts"));
    must_ok(s().create_mailbox("wes", "Archive"));
    auto drafts = must(s().open_mailbox("wes", "Drafts"));
    // IMAP APPEND stores the literal as is.
    const auto bare = seal(s(), "To: x\n\nhi!");
    const auto clean = seal(s(), "To: x\r\n\r\nhi\r\n");
    must(drafts->append(bare, flags_of(draft)));
    must(drafts->append(clean, {}));
    auto snap = must(drafts->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{10}, snap.messages[0].size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{14}, snap.messages[0].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{13}, snap.messages[1].size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{13}, snap.messages[1].wire_size);

    const imap_uid both[] = {1, 2};
    must(drafts->copy(both, "Archive"));
    auto archive = must(s().open_mailbox("wes", "Archive"));
    must(drafts->move(both, "INBOX"));
    CPPUNIT_ASSERT(must(drafts->snapshot()).messages.empty());
    for (const auto& box : {archive, must(s().open_mailbox("wes", "INBOX"))}) {
      snap = must(box->snapshot());
      CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
      CPPUNIT_ASSERT_EQUAL(std::uint64_t{14}, snap.messages[0].wire_size);
      CPPUNIT_ASSERT_EQUAL(std::uint64_t{13}, snap.messages[1].wire_size);
    }
    // Renaming INBOX moves its messages: they keep their wire sizes too.
    must_ok(s().rename_mailbox("wes", "INBOX", "Old"));
    snap = must(must(s().open_mailbox("wes", "Old"))->snapshot());
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, snap.messages.size());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{14}, snap.messages[0].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{13}, snap.messages[1].wire_size);
  }

 private:
  std::unique_ptr<Fixture> f_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(store_behaviour_test<maildir_fixture>);
CPPUNIT_TEST_SUITE_REGISTRATION(store_behaviour_test<memory_fixture>);

}  // namespace hamail::store

// The index log format, message file names and maildirsize parsing.

#include "index_log.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "maildir_file.hpp"
#include "quota_file.hpp"

namespace hamail::store::detail {

namespace {

index_entry entry(imap_uid uid, mod_seq ms, std::string base, stored_flags f = {},
                  bool in_new = true) {
  index_entry e;
  e.uid = uid;
  e.modseq = ms;
  e.flags = f;
  e.in_new = in_new && f.empty();
  e.date = 1000 + uid;
  e.size = 100 * uid;
  e.base = std::move(base);
  return e;
}

std::string sample_log() {
  std::string log = header_line(42);
  log += seal_line(add_record(entry(1, 1, "100.M1P1Q1.host,S=100,U=1")));
  log += seal_line(add_record(entry(2, 2, "100.M1P1Q2.host,S=200,U=2")));
  log += seal_line(flags_record(1, 3, parse_flag_letters("FS")));
  log += seal_line(add_record(entry(3, 4, "100.M1P1Q3.host,S=300,U=3")));
  log += seal_line(expunge_record(2, 5));
  return log;
}

}  // namespace

class index_log_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(index_log_test);
  CPPUNIT_TEST(replay_applies_every_record);
  CPPUNIT_TEST(compact_index_replays_to_the_same_state);
  CPPUNIT_TEST(incomplete_last_line_is_torn_not_damage);
  CPPUNIT_TEST(bad_crc_on_last_line_is_torn_not_damage);
  CPPUNIT_TEST(zero_filled_tail_is_torn_not_damage);
  CPPUNIT_TEST(bad_crc_mid_file_is_damage_and_keeps_maxima);
  CPPUNIT_TEST(bad_header_is_damage);
  CPPUNIT_TEST(record_for_unknown_uid_is_damage);
  CPPUNIT_TEST(duplicate_add_is_damage);
  CPPUNIT_TEST(uid_that_would_wrap_uidnext_is_damage);
  CPPUNIT_TEST(empty_index_is_damage);
  CPPUNIT_TEST(claimed_recent_replays_as_claimed);
  CPPUNIT_TEST(index_written_before_the_recent_fix_replays_its_claims);
  CPPUNIT_TEST(flag_letters_sorted_as_maildir_requires);
  CPPUNIT_TEST(message_names_parsed);
  CPPUNIT_TEST(non_message_names_skipped);
  CPPUNIT_TEST(size_and_uid_fields_replaced_not_duplicated);
  CPPUNIT_TEST(hostname_cannot_break_file_names);
  CPPUNIT_TEST(maildirsize_sums_deltas_and_rejects_garbage);
  CPPUNIT_TEST(wire_size_field_named_parsed_and_replayed);
  CPPUNIT_TEST_SUITE_END();

 public:
  void replay_applies_every_record() {
    auto r = replay_index(sample_log());
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT(!r.torn_tail);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{42}, r.state.uid_validity);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, r.state.entries.size());
    CPPUNIT_ASSERT_EQUAL(imap_uid{1}, r.state.entries[0].uid);
    CPPUNIT_ASSERT_EQUAL(std::string("FS"), flag_letters(r.state.entries[0].flags));
    CPPUNIT_ASSERT(!r.state.entries[0].in_new);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, r.state.entries[1].uid);
    CPPUNIT_ASSERT(r.state.entries[1].in_new);
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, r.state.uid_next);
    CPPUNIT_ASSERT_EQUAL(mod_seq{5}, r.state.highest_modseq);
    CPPUNIT_ASSERT_EQUAL(std::size_t{5}, r.state.records);
  }

  void compact_index_replays_to_the_same_state() {
    auto r = replay_index(sample_log());
    // Expunge the top UID: UIDNEXT must survive compaction through the N record.
    std::string log = sample_log() + seal_line(expunge_record(3, 6));
    r = replay_index(log);
    auto again = replay_index(compact_index(r.state));
    CPPUNIT_ASSERT(again.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT_EQUAL(imap_uid{4}, again.state.uid_next);
    CPPUNIT_ASSERT_EQUAL(mod_seq{6}, again.state.highest_modseq);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, again.state.entries.size());
    CPPUNIT_ASSERT_EQUAL(r.state.entries[0].base, again.state.entries[0].base);
  }

  void incomplete_last_line_is_torn_not_damage() {
    const std::string good = sample_log();
    const std::string torn = good + seal_line(add_record(entry(4, 6, "x,S=1,U=4"))).substr(0, 20);
    auto r = replay_index(torn);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT(r.torn_tail);
    CPPUNIT_ASSERT_EQUAL(good.size(), r.valid_bytes);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, r.state.entries.size());
  }

  void bad_crc_on_last_line_is_torn_not_damage() {
    const std::string good = sample_log();
    std::string last = seal_line(add_record(entry(4, 6, "x,S=1,U=4")));
    last[2] = '9';  // uid 4 -> 9: the CRC no longer matches
    auto r = replay_index(good + last);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT(r.torn_tail);
    CPPUNIT_ASSERT_EQUAL(good.size(), r.valid_bytes);
    CPPUNIT_ASSERT(r.state.find(9) == nullptr);
  }

  void zero_filled_tail_is_torn_not_damage() {
    const std::string good = sample_log();
    auto r = replay_index(good + std::string(300, '\0'));
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT(r.torn_tail);
    CPPUNIT_ASSERT_EQUAL(good.size(), r.valid_bytes);
  }

  void bad_crc_mid_file_is_damage_and_keeps_maxima() {
    std::string log = sample_log();
    const auto second_line = log.find('\n') + 1;
    log[second_line + 2] = '7';  // corrupt the first A record
    auto r = replay_index(log);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::damaged);
    // Lines after the damage still tell what was handed out.
    CPPUNIT_ASSERT_EQUAL(mod_seq{5}, r.max_modseq_seen);
    CPPUNIT_ASSERT_EQUAL(imap_uid{3}, r.max_uid_seen);
    CPPUNIT_ASSERT(r.header_uid_validity.has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{42}, *r.header_uid_validity);
  }

  void bad_header_is_damage() {
    std::string log = sample_log();
    log[3] = 'X';
    auto r = replay_index(log);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::damaged);
    std::string other =
        seal_line("hamail-index 2 uidvalidity=5") + seal_line(add_record(entry(1, 1, "a,U=1")));
    CPPUNIT_ASSERT(replay_index(other).outcome == replay_result::outcome_t::damaged);
    CPPUNIT_ASSERT(replay_index(seal_line("hamail-index 1 uidvalidity=0")).outcome ==
                   replay_result::outcome_t::damaged);
  }

  void record_for_unknown_uid_is_damage() {
    std::string log =
        header_line(1) + seal_line(flags_record(7, 1, {})) + seal_line(uid_next_record(3));
    CPPUNIT_ASSERT(replay_index(log).outcome == replay_result::outcome_t::damaged);
    log = header_line(1) + seal_line(expunge_record(7, 1)) + seal_line(uid_next_record(3));
    CPPUNIT_ASSERT(replay_index(log).outcome == replay_result::outcome_t::damaged);
    log = header_line(1) + seal_line("Q 1 2") + seal_line(uid_next_record(3));
    CPPUNIT_ASSERT(replay_index(log).outcome == replay_result::outcome_t::damaged);
  }

  void duplicate_add_is_damage() {
    std::string log = header_line(1) + seal_line(add_record(entry(1, 1, "a,U=1"))) +
                      seal_line(add_record(entry(1, 2, "b,U=1"))) + seal_line(uid_next_record(3));
    CPPUNIT_ASSERT(replay_index(log).outcome == replay_result::outcome_t::damaged);
  }

  void uid_that_would_wrap_uidnext_is_damage() {
    // Written by a store that accepted U=4294967295: UIDNEXT would be 0.
    std::string log = header_line(42);
    log += seal_line(add_record(entry(1, 1, "100.M1P1Q1.host,S=100,U=1")));
    log += seal_line(add_record(entry(4294967295U, 2, "100.M1P1Q2.x,S=1,U=4294967295")));
    log += seal_line(add_record(entry(2, 3, "100.M1P1Q3.host,S=200,U=2")));
    auto r = replay_index(log);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::damaged);
    // What a rebuild stays above must not wrap either.
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, r.max_uid_seen);
    // The largest usable UID is fine and leaves UIDNEXT at its largest value.
    log =
        header_line(42) + seal_line(add_record(entry(max_uid, 1, "100.M1P1Q1.host,U=4294967294")));
    r = replay_index(log);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT_EQUAL(imap_uid{4294967295U}, r.state.uid_next);
  }

  void empty_index_is_damage() {
    CPPUNIT_ASSERT(replay_index("").outcome == replay_result::outcome_t::damaged);
    // A header that was itself torn leaves nothing to trust.
    CPPUNIT_ASSERT(replay_index(header_line(3).substr(0, 10)).outcome ==
                   replay_result::outcome_t::damaged);
  }

  // \Recent is "in new/": a claim moves the file to cur/ and writes an R record
  // (an F record moves it too). Replay must not make a claimed message recent again.
  void claimed_recent_replays_as_claimed() {
    std::string log = header_line(42);
    for (imap_uid uid = 1; uid <= 4; ++uid)
      log += seal_line(add_record(entry(
          uid, uid, "100.M1P1Q" + std::to_string(uid) + ".host,S=100,U=" + std::to_string(uid))));
    log += seal_line(move_record(1, false, "100.M1P1Q1.host,S=100,U=1"));  // claimed
    log += seal_line(flags_record(2, 5, parse_flag_letters("S")));         // flagged
    log += seal_line(move_record(3, false, "100.M1P1Q3.host,S=100,U=3"));  // claimed, then
    log += seal_line(move_record(3, true, "100.M1P1Q3.host,S=100,U=3"));   // back in new/
    auto r = replay_index(log);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT_EQUAL(std::size_t{4}, r.state.entries.size());
    CPPUNIT_ASSERT(!r.state.find(1)->recent);
    CPPUNIT_ASSERT(!r.state.find(2)->recent);
    CPPUNIT_ASSERT(r.state.find(3)->recent);
    CPPUNIT_ASSERT(r.state.find(4)->recent);
    // Compaction writes the location into the A record: the same state again.
    auto again = replay_index(compact_index(r.state));
    for (const auto& e : r.state.entries)
      CPPUNIT_ASSERT_EQUAL(e.recent, again.state.find(e.uid)->recent);
  }

  // The bytes an earlier hamail wrote for "APPEND, then one SELECT claimed it"
  // (from a real store): the format is unchanged, and the claim must hold.
  void index_written_before_the_recent_fix_replays_its_claims() {
    const std::string log =
        "hamail-index 1 uidvalidity=1796219493 e73cbcc3\n"
        "A 1 1 - 1796219489 129 n 1796219489.M670632P20278Q8.mx.test,S=129,U=1 182cefa3\n"
        "R 1 c 1796219489.M670632P20278Q8.mx.test,S=129,U=1 95c04e6e\n";
    auto r = replay_index(log);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT(!r.torn_tail);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, r.state.entries.size());
    CPPUNIT_ASSERT(!r.state.entries[0].in_new);
    CPPUNIT_ASSERT(!r.state.entries[0].recent);
    CPPUNIT_ASSERT_EQUAL(imap_uid{2}, r.state.uid_next);
  }

  void flag_letters_sorted_as_maildir_requires() {
    stored_flags f;
    f.system = static_cast<std::uint8_t>(system_flag::seen) |
               static_cast<std::uint8_t>(system_flag::draft) |
               static_cast<std::uint8_t>(system_flag::deleted) |
               static_cast<std::uint8_t>(system_flag::answered) |
               static_cast<std::uint8_t>(system_flag::flagged) | flag_passed;
    f.keywords = (1u << 0) | (1u << 25) | (1u << 3);
    CPPUNIT_ASSERT_EQUAL(std::string("DFPRSTadz"), flag_letters(f));
    CPPUNIT_ASSERT(parse_flag_letters("zdaTSRPFD") == f);
    CPPUNIT_ASSERT(parse_flag_letters("S?!") == parse_flag_letters("S"));
    CPPUNIT_ASSERT_EQUAL(std::string(), flag_letters({}));
  }

  void message_names_parsed() {
    auto n = parse_message_name("1700000000.M12P34Q5.host,S=1234,U=77:2,FSa");
    CPPUNIT_ASSERT(n);
    CPPUNIT_ASSERT_EQUAL(std::string("1700000000.M12P34Q5.host,S=1234,U=77"), n->base);
    CPPUNIT_ASSERT(n->has_info);
    CPPUNIT_ASSERT_EQUAL(imap_uid{77}, *n->uid);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1234}, *n->size);
    CPPUNIT_ASSERT_EQUAL(std::string("FSa"), flag_letters(n->flags));
    auto plain = parse_message_name("1700000000.12345.other-mda");
    CPPUNIT_ASSERT(plain);
    CPPUNIT_ASSERT(!plain->uid);
    CPPUNIT_ASSERT(!plain->size);
    CPPUNIT_ASSERT(!plain->wire_size);
    CPPUNIT_ASSERT(!plain->has_info);
    // A malformed or zero U= is no UID.
    CPPUNIT_ASSERT(!parse_message_name("a,U=0")->uid);
    CPPUNIT_ASSERT(!parse_message_name("a,U=12x")->uid);
    CPPUNIT_ASSERT(!parse_message_name("a,U=99999999999")->uid);
    // Experimental info is no flags.
    CPPUNIT_ASSERT(parse_message_name("a,U=1:1,S")->flags.empty());
  }

  void non_message_names_skipped() {
    for (const char* n : {"", ".hidden", ":2,S", "a\nb", "a\rb"})
      CPPUNIT_ASSERT_MESSAGE(n, !parse_message_name(n));
  }

  void size_and_uid_fields_replaced_not_duplicated() {
    CPPUNIT_ASSERT_EQUAL(std::string("abc,S=5,U=9"), base_with_size_and_uid("abc", 5, 9));
    CPPUNIT_ASSERT_EQUAL(std::string("abc,W=7,S=5,U=9"),
                         base_with_size_and_uid("abc,U=3,S=1,W=7", 5, 9));
    CPPUNIT_ASSERT_EQUAL(std::string("new/abc,S=5,U=9"), message_relpath("abc,S=5,U=9", true, {}));
    CPPUNIT_ASSERT_EQUAL(std::string("cur/abc:2,S"),
                         message_relpath("abc", false, parse_flag_letters("S")));
    CPPUNIT_ASSERT_EQUAL(std::string("cur/abc:2,"), message_relpath("abc", false, {}));
  }

  void hostname_cannot_break_file_names() {
    CPPUNIT_ASSERT_EQUAL(std::string("mx1.example.org"), sanitize_hostname("mx1.example.org"));
    const std::string bad = sanitize_hostname("a/b:c,d e\nf");
    CPPUNIT_ASSERT(bad.find_first_of("/:, \n") == std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("a\\057b\\072c\\054d\\040e\\012f"), bad);
    CPPUNIT_ASSERT(sanitize_hostname(std::string(500, 'h')).size() <= 64);
    CPPUNIT_ASSERT_EQUAL(std::string("localhost"), sanitize_hostname(""));
    const auto u1 = unique_message_name("h");
    const auto u2 = unique_message_name("h");
    CPPUNIT_ASSERT(u1 != u2);
    CPPUNIT_ASSERT(parse_message_name(u1));
  }

  void wire_size_field_named_parsed_and_replayed() {
    auto n = parse_message_name("1700000000.M1P2Q3.host,W=1240,S=1234,U=77:2,S");
    CPPUNIT_ASSERT(n);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1240}, *n->wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1234}, *n->size);
    CPPUNIT_ASSERT_EQUAL(imap_uid{77}, *n->uid);

    // W= only when the sizes differ, before S= and U=; an old W= is replaced.
    CPPUNIT_ASSERT_EQUAL(std::string("abc,S=5,U=9"), base_with_sizes_and_uid("abc", 5, 5, 9));
    CPPUNIT_ASSERT_EQUAL(std::string("abc,W=7,S=5,U=9"), base_with_sizes_and_uid("abc", 5, 7, 9));
    CPPUNIT_ASSERT_EQUAL(std::string("abc,X=1,W=8,S=5,U=9"),
                         base_with_sizes_and_uid("abc,U=3,W=7,X=1,S=1", 5, 8, 9));
    CPPUNIT_ASSERT_EQUAL(std::string("abc,S=5,U=9"),
                         base_with_sizes_and_uid("abc,W=7,S=5,U=9", 5, 5, 9));

    // The wire size a base names; without W= (or with one below the size) the size.
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{7}, wire_size_in_base("abc,W=7,S=5,U=9", 5));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, wire_size_in_base("abc,S=5,U=9", 5));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, wire_size_in_base("abc,W=4,S=5,U=9", 5));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, wire_size_in_base("abc,W=x,S=5,U=9", 5));
    // The unique part is no field, even when it looks like one.
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, wire_size_in_base("W=9", 5));

    // The index keeps it in the base of A and R records, and through compaction.
    std::string log = header_line(42);
    log += seal_line(add_record(entry(1, 1, "100.M1P1Q1.host,W=104,S=100,U=1")));
    log += seal_line(add_record(entry(2, 2, "100.M1P1Q2.host,S=200,U=2")));
    log += seal_line(move_record(2, false, "100.M1P1Q2.host,W=230,S=200,U=2"));
    auto r = replay_index(log);
    CPPUNIT_ASSERT(r.outcome == replay_result::outcome_t::ok);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, r.state.entries.size());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{104}, r.state.entries[0].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{230}, r.state.entries[1].wire_size);
    auto again = replay_index(compact_index(r.state));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{104}, again.state.entries[0].wire_size);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{230}, again.state.entries[1].wire_size);
    // Without W=, the size.
    r = replay_index(sample_log());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{100}, r.state.entries[0].wire_size);
  }

  void maildirsize_sums_deltas_and_rejects_garbage() {
    auto p = parse_maildirsize("1000S,10C\n100 1\n  250 2\n-100 -1\n");
    CPPUNIT_ASSERT(p);
    CPPUNIT_ASSERT_EQUAL(std::string("1000S,10C"), p->limits_line);
    CPPUNIT_ASSERT_EQUAL(std::int64_t{250}, p->usage.bytes);
    CPPUNIT_ASSERT_EQUAL(std::int64_t{2}, p->usage.messages);
    // An unfinished last line (a concurrent or torn append) is not counted.
    auto t = parse_maildirsize("1000S\n100 1\n50");
    CPPUNIT_ASSERT(t);
    CPPUNIT_ASSERT_EQUAL(std::int64_t{100}, t->usage.bytes);
    CPPUNIT_ASSERT(!parse_maildirsize("1000S\nabc def\n"));
    CPPUNIT_ASSERT(!parse_maildirsize("no newline"));
    CPPUNIT_ASSERT_EQUAL(std::string("1000S,10C"), format_quota_limits({1000, 10}));
    CPPUNIT_ASSERT_EQUAL(std::string("10C"), format_quota_limits({0, 10}));
    CPPUNIT_ASSERT_EQUAL(std::string("1000S"), format_quota_limits({1000, 0}));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(index_log_test);

}  // namespace hamail::store::detail

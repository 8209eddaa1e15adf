// The file system side of the sync channel without a network: what LIST leaves out, the
// diff of one PULL pass (renames by base name, refetch of changed metadata, removals in
// the right order, type conflicts), GET refusing symbolic links, and a fetched file keeping
// the source's mtime to the nanosecond.

#include "sync/sync_tree.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "hamail/test/temp_dir.hpp"
#include "sync/sync_protocol.hpp"

namespace hamail::backend::sync {

namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

tree_entry file(std::string path, std::uint64_t size = 1, std::int64_t mtime = 1) {
  return tree_entry{std::move(path), false, size, mtime};
}
tree_entry dir(std::string path) { return tree_entry{std::move(path), true, 0, 0}; }

std::vector<std::string> paths(const std::vector<tree_entry>& v) {
  std::vector<std::string> out;
  for (const auto& e : v) out.push_back(e.path);
  return out;
}

}  // namespace

class sync_tree_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(sync_tree_test);
  CPPUNIT_TEST(list_leaves_out_tmp_contents_and_leftovers);
  CPPUNIT_TEST(list_of_missing_account_is_not_found);
  CPPUNIT_TEST(message_identity_ignores_flags_and_place);
  CPPUNIT_TEST(plan_renames_flag_changes_instead_of_fetching);
  CPPUNIT_TEST(plan_fetches_changed_metadata_only);
  CPPUNIT_TEST(plan_removes_files_and_directories_deepest_first);
  CPPUNIT_TEST(plan_replaces_entries_of_another_type);
  CPPUNIT_TEST(identical_trees_plan_nothing);
  CPPUNIT_TEST(get_refuses_symbolic_links);
  CPPUNIT_TEST(fetched_file_keeps_the_source_mtime);
  CPPUNIT_TEST_SUITE_END();

 public:
  void list_leaves_out_tmp_contents_and_leftovers() {
    test::temp_dir d;
    const fs::path root = d.path() / "acct";
    write(root / "cur" / "1.M1P1Q1.h,S=1,U=1:2,S", "a");
    write(root / "cur" / "2.M1P1Q1.host.tmp.example,S=1,U=2:2,", "b");  // a message, kept
    write(root / "new" / "3.M1P1Q1.h,S=1,U=3", "c");
    write(root / "tmp" / "receiving", "x");
    write(root / "hamail-index", "i");
    write(root / "hamail-index.tmp.123", "old");
    write(root / "hamail-subscriptions.tmp", "old");
    write(root / "hamail-incoming", "store-a\n");
    write(root / ".Sent" / "tmp" / "x", "x");
    write(root / ".Sent" / "maildirfolder", "");
    write(root / ".Sent" / "cur" / ".hamail-sync.1.2", "partial");
    fs::create_directories(root / ".Sent" / "new");
    fs::create_directories(root / ".A.tmp" / "cur");  // the folder "A/tmp"
    ::symlink("/etc/passwd", (root / "cur" / "link,U=9").c_str());
    auto listed = list_tree(root, true);
    CPPUNIT_ASSERT_MESSAGE(listed ? "" : listed.err().describe(), listed.has_value());
    const std::vector<std::string> expected{".A.tmp",
                                            ".A.tmp/cur",
                                            ".Sent",
                                            ".Sent/cur",
                                            ".Sent/maildirfolder",
                                            ".Sent/new",
                                            ".Sent/tmp",
                                            "cur",
                                            "cur/1.M1P1Q1.h,S=1,U=1:2,S",
                                            "cur/2.M1P1Q1.host.tmp.example,S=1,U=2:2,",
                                            "hamail-index",
                                            "new",
                                            "new/3.M1P1Q1.h,S=1,U=3",
                                            "tmp"};
    CPPUNIT_ASSERT(expected == paths(*listed));
    // The fetch leftover was removed on the way.
    CPPUNIT_ASSERT(!fs::exists(root / ".Sent" / "cur" / ".hamail-sync.1.2"));
    for (const auto& e : *listed) {
      if (e.path == "hamail-index") {
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), e.size);
        CPPUNIT_ASSERT(e.mtime_ns > 0);
      }
    }
  }

  void list_of_missing_account_is_not_found() {
    test::temp_dir d;
    auto listed = list_tree(d.path() / "nobody");
    CPPUNIT_ASSERT(!listed.has_value());
    CPPUNIT_ASSERT(listed.err().code == errc::not_found);
  }

  void message_identity_ignores_flags_and_place() {
    CPPUNIT_ASSERT(is_message_file("cur/1.M1P1Q1.h,S=1,U=1:2,S"));
    CPPUNIT_ASSERT(is_message_file(".Sent/new/1.M1P1Q1.h,S=1,U=1"));
    CPPUNIT_ASSERT(!is_message_file("hamail-index"));
    CPPUNIT_ASSERT(!is_message_file(".Sent/x/cur/a,U=1"));
    CPPUNIT_ASSERT_EQUAL(message_key("new/1.M1P1Q1.h,S=1,U=1"),
                         message_key("cur/1.M1P1Q1.h,S=1,U=1:2,FS"));
    CPPUNIT_ASSERT(message_key("cur/1.M1P1Q1.h,S=1,U=1:2,") !=
                   message_key(".Sent/cur/1.M1P1Q1.h,S=1,U=1:2,"));
  }

  void plan_renames_flag_changes_instead_of_fetching() {
    const std::vector<tree_entry> local{dir("cur"), dir("new"), file("new/a,S=5,U=1", 5),
                                        file("cur/b,S=6,U=2:2,", 6)};
    const std::vector<tree_entry> source{dir("cur"), dir("new"), file("cur/a,S=5,U=1:2,S", 5, 9),
                                         file("cur/b,S=6,U=2:2,FS", 6, 9),
                                         file("new/c,S=7,U=3", 7)};
    auto plan = plan_pull(source, local);
    CPPUNIT_ASSERT_EQUAL(std::size_t(2), plan.renames.size());
    CPPUNIT_ASSERT(plan.renames[0] ==
                   std::make_pair(std::string("new/a,S=5,U=1"), std::string("cur/a,S=5,U=1:2,S")));
    CPPUNIT_ASSERT(plan.renames[1] == std::make_pair(std::string("cur/b,S=6,U=2:2,"),
                                                     std::string("cur/b,S=6,U=2:2,FS")));
    CPPUNIT_ASSERT(std::vector<std::string>{"new/c,S=7,U=3"} == paths(plan.fetches));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(7), plan.fetch_bytes);
    CPPUNIT_ASSERT(plan.unlinks.empty() && plan.rmdirs.empty() && plan.mkdirs.empty());
  }

  void plan_fetches_changed_metadata_only() {
    const std::vector<tree_entry> local{file("hamail-index", 10, 100),
                                        file("hamail-keywords", 5, 100),
                                        file("hamail-uidvalidity", 11, 100)};
    const std::vector<tree_entry> source{file("hamail-index", 20, 200),    // grew
                                         file("hamail-keywords", 5, 150),  // touched
                                         file("hamail-uidvalidity", 11, 100),
                                         file("hamail-subscriptions", 3, 100)};
    auto plan = plan_pull(source, local);
    const std::vector<std::string> expected{"hamail-index", "hamail-keywords",
                                            "hamail-subscriptions"};
    CPPUNIT_ASSERT(expected == paths(plan.fetches));
    CPPUNIT_ASSERT(plan.unlinks.empty());
  }

  void plan_removes_files_and_directories_deepest_first() {
    const std::vector<tree_entry> local{
        dir(".Old"),        dir(".Old/cur"), file(".Old/cur/x,S=1,U=1:2,"),
        dir(".Old/new"),    dir("cur"),      file("cur/gone,S=1,U=5:2,S"),
        file("maildirsize")};
    const std::vector<tree_entry> source{dir("cur")};
    auto plan = plan_pull(source, local);
    const std::vector<std::string> unlinks{".Old/cur/x,S=1,U=1:2,", "cur/gone,S=1,U=5:2,S",
                                           "maildirsize"};
    CPPUNIT_ASSERT(unlinks == plan.unlinks);
    const std::vector<std::string> rmdirs{".Old/new", ".Old/cur", ".Old"};
    CPPUNIT_ASSERT(rmdirs == plan.rmdirs);
    CPPUNIT_ASSERT(plan.fetches.empty());
  }

  void plan_replaces_entries_of_another_type() {
    const std::vector<tree_entry> local{file(".A"), dir("x"), file("x/y")};
    const std::vector<tree_entry> source{dir(".A"), dir(".A/cur"), file("x", 3)};
    auto plan = plan_pull(source, local);
    const std::vector<std::string> first{".A", "x"};
    CPPUNIT_ASSERT(first == plan.remove_first);
    const std::vector<std::string> mk{".A", ".A/cur"};
    CPPUNIT_ASSERT(mk == plan.mkdirs);
    CPPUNIT_ASSERT(std::vector<std::string>{"x"} == paths(plan.fetches));
    CPPUNIT_ASSERT(plan.unlinks.empty() && plan.rmdirs.empty());
  }

  void identical_trees_plan_nothing() {
    const std::vector<tree_entry> t{dir("cur"), file("cur/a,S=1,U=1:2,S", 1, 5),
                                    file("hamail-index", 40, 7)};
    auto plan = plan_pull(t, t);
    CPPUNIT_ASSERT(plan.remove_first.empty() && plan.mkdirs.empty() && plan.renames.empty() &&
                   plan.fetches.empty() && plan.unlinks.empty() && plan.rmdirs.empty());
  }

  void get_refuses_symbolic_links() {
    test::temp_dir d;
    const fs::path root = d.path() / "acct";
    write(root / "cur" / "real", "data");
    write(d.path() / "secret", "other account");
    ::symlink((d.path() / "secret").c_str(), (root / "cur" / "link").c_str());
    ::symlink(d.path().c_str(), (root / "up").c_str());
    auto real = open_for_get(root, "cur/real");
    CPPUNIT_ASSERT(real.has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(4), real->second);
    auto chunk = read_chunk(real->first.get(), 1, 10);
    CPPUNIT_ASSERT(chunk && *chunk == "ata");
    for (const char* p : {"cur/link", "up/secret", "cur", "cur/none"}) {
      auto r = open_for_get(root, p);
      CPPUNIT_ASSERT_MESSAGE(p, !r.has_value() && r.err().code == errc::not_found);
    }
  }

  void fetched_file_keeps_the_source_mtime() {
    test::temp_dir d;
    fs::create_directories(d.path() / "cur");
    auto f = begin_fetch(d.path(), "cur/m,S=3,U=1:2,");
    CPPUNIT_ASSERT(f.has_value());
    CPPUNIT_ASSERT(write_fetch(*f, "abc").has_value());
    const std::int64_t mtime = 1'600'000'000'123'456'789;
    CPPUNIT_ASSERT(finish_fetch(*f, mtime).has_value());
    struct stat st {};
    CPPUNIT_ASSERT_EQUAL(0, ::stat((d.path() / "cur/m,S=3,U=1:2,").c_str(), &st));
    CPPUNIT_ASSERT_EQUAL(std::int64_t(1'600'000'000), std::int64_t(st.st_mtim.tv_sec));
    CPPUNIT_ASSERT_EQUAL(long(123'456'789), long(st.st_mtim.tv_nsec));
    CPPUNIT_ASSERT_EQUAL(std::size_t(1),
                         std::size_t(std::distance(fs::directory_iterator(d.path() / "cur"), {})));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(sync_tree_test);

}  // namespace hamail::backend::sync

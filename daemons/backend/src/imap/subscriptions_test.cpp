// Tests of the subscription file: order, duplicates, renames, atomic rewrite,
// creation of the account on demand and concurrent changes.

#include "imap/subscriptions.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "hamail/store/maildir_store.hpp"
#include "hamail/store/memory_store.hpp"

using hamail::backend::imap_session_detail::subscriptions;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "hamail-subs-XXXXXX").string();
    CPPUNIT_ASSERT(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

using names = std::vector<std::string>;

}  // namespace

class subscriptions_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(subscriptions_test);
  CPPUNIT_TEST(add_remove_and_file_format);
  CPPUNIT_TEST(rename_moves_children_only);
  CPPUNIT_TEST(reads_hand_edited_file);
  CPPUNIT_TEST(without_data_directory);
  CPPUNIT_TEST(memory_store_with_data_directory);
  CPPUNIT_TEST(concurrent_adds_are_all_kept);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    dir = std::make_unique<temp_dir>();
    hamail::store::maildir_options o;
    o.fsync = false;
    auto st = hamail::store::maildir_store::open(dir->path, o);
    CPPUNIT_ASSERT(st.has_value());
    store = std::move(*st);
  }
  void tearDown() override {
    store.reset();
    dir.reset();
  }

  subscriptions list(std::string_view account = "alice") {
    auto s = subscriptions::of(*store, {}, account, true);
    CPPUNIT_ASSERT(s.has_value());
    return *s;
  }

  void add_remove_and_file_format() {
    auto s = list();
    // No file yet: nothing subscribed, and the account does not exist.
    CPPUNIT_ASSERT(s.names().has_value() && s.names()->empty());
    CPPUNIT_ASSERT(!fs::exists(s.file().parent_path()));
    const names first{"Sent", "INBOX", "Archive/2024", "Sent"};
    auto r = s.add(first);
    CPPUNIT_ASSERT(r.has_value() && *r);
    // The account was created in the store, with the file in its directory.
    CPPUNIT_ASSERT_EQUAL(
        *hamail::store::maildir_store::account_dir(dir->path, "alice") / "hamail-subscriptions",
        s.file());
    CPPUNIT_ASSERT_EQUAL(std::string("Archive/2024\nINBOX\nSent\n"), read(s.file()));
    CPPUNIT_ASSERT(names({"Archive/2024", "INBOX", "Sent"}) == *s.names());
    const names again{"INBOX"};
    r = s.add(again);
    CPPUNIT_ASSERT(r.has_value() && !*r);
    r = s.remove("Sent");
    CPPUNIT_ASSERT(r.has_value() && *r);
    r = s.remove("Sent");
    CPPUNIT_ASSERT(r.has_value() && !*r);
    CPPUNIT_ASSERT_EQUAL(std::string("Archive/2024\nINBOX\n"), read(s.file()));
    fs::path tmp = s.file();
    tmp += ".tmp";
    CPPUNIT_ASSERT(!fs::exists(tmp));
    // Another account's list is another file.
    CPPUNIT_ASSERT(list("bob").names()->empty());
  }

  void rename_moves_children_only() {
    auto s = list();
    const names all{"Foo", "Foo/Bar", "Foo/Bar/Baz", "Foobar", "Other"};
    CPPUNIT_ASSERT(s.add(all).has_value());
    auto r = s.rename("Foo", "New/Place");
    CPPUNIT_ASSERT(r.has_value() && *r);
    CPPUNIT_ASSERT(names({"Foobar", "New/Place", "New/Place/Bar", "New/Place/Bar/Baz", "Other"}) ==
                   *s.names());
    r = s.rename("Missing", "X");
    CPPUNIT_ASSERT(r.has_value() && !*r);
  }

  void reads_hand_edited_file() {
    auto s = list();
    const names one{"INBOX"};
    CPPUNIT_ASSERT(s.add(one).has_value());
    std::ofstream(s.file()) << "Zeta\r\n\nAlpha\nZeta\n";
    CPPUNIT_ASSERT(names({"Alpha", "Zeta"}) == *s.names());
  }

  void without_data_directory() {
    hamail::store::memory_store mem;
    auto s = subscriptions::of(mem, {}, "alice", false);
    CPPUNIT_ASSERT(!s.has_value());
    CPPUNIT_ASSERT(s.err().code == hamail::errc::unavailable);
    auto bad = subscriptions::of(*store, {}, "../x", false);
    CPPUNIT_ASSERT(!bad.has_value());
    CPPUNIT_ASSERT(bad.err().code == hamail::errc::invalid_input);
  }

  void memory_store_with_data_directory() {
    hamail::store::memory_store mem;
    auto s = subscriptions::of(mem, dir->path / "mem", "alice", false);
    CPPUNIT_ASSERT(s.has_value());
    const names one{"INBOX"};
    auto r = s->add(one);
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value() && *r);
    CPPUNIT_ASSERT(names({"INBOX"}) == *s->names());
  }

  void concurrent_adds_are_all_kept() {
    auto s = list();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([s, t]() mutable {
        for (int i = 0; i < 25; ++i) {
          const names one{"T" + std::to_string(t) + "/" + std::to_string(i)};
          auto r = s.add(one);
          CPPUNIT_ASSERT(r.has_value());
        }
      });
    }
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(std::size_t(100), s.names()->size());
  }

  std::unique_ptr<temp_dir> dir;
  std::unique_ptr<hamail::store::maildir_store> store;
};

CPPUNIT_TEST_SUITE_REGISTRATION(subscriptions_test);

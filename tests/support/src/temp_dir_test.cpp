#include "hamail/test/temp_dir.hpp"

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

// At global scope so that tests are named "temp_dir_test::<name>" for the runner's filter.
class temp_dir_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(temp_dir_test);
  CPPUNIT_TEST(is_fresh_private_and_distinct);
  CPPUNIT_TEST(removes_nested_contents);
  CPPUNIT_TEST(honours_tmpdir);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    const char* t = std::getenv("TMPDIR");
    saved_tmpdir_ = t != nullptr ? std::optional<std::string>(t) : std::nullopt;
  }
  void tearDown() override {
    if (saved_tmpdir_) {
      ::setenv("TMPDIR", saved_tmpdir_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

  void is_fresh_private_and_distinct() {
    hamail::test::temp_dir a;
    hamail::test::temp_dir b;
    CPPUNIT_ASSERT(a.path() != b.path());
    CPPUNIT_ASSERT(a.path().is_absolute());
    CPPUNIT_ASSERT(std::filesystem::is_directory(a.path()));
    CPPUNIT_ASSERT(std::filesystem::is_empty(a.path()));
    const auto perms = std::filesystem::status(a.path()).permissions();
    CPPUNIT_ASSERT((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none);
  }

  void removes_nested_contents() {
    hamail::test::temp_dir outside;
    std::ofstream(outside.path() / "precious") << "not the test's";
    std::filesystem::path kept;
    {
      hamail::test::temp_dir d;
      kept = d.path();
      std::filesystem::create_directories(d.path() / "a" / "b" / "c");
      std::ofstream(d.path() / "a" / "b" / "c" / "file") << "mail";
      std::filesystem::create_directory_symlink(outside.path(), d.path() / "a" / "link-outside");
    }
    CPPUNIT_ASSERT(!std::filesystem::exists(kept));
    // Removal does not follow a symlink out of the directory.
    CPPUNIT_ASSERT(std::filesystem::exists(outside.path() / "precious"));
  }

  void honours_tmpdir() {
    hamail::test::temp_dir outer;
    ::setenv("TMPDIR", outer.path().c_str(), 1);
    hamail::test::temp_dir inner;
    CPPUNIT_ASSERT_EQUAL(outer.path(), inner.path().parent_path());
  }

 private:
  std::optional<std::string> saved_tmpdir_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(temp_dir_test);

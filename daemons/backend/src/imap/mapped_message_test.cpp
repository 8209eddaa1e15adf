// Loading message files: contents, read below the limit and mapped above it, empty files,
// short files, bad descriptors, moves.

#include "imap/mapped_message.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>

#include <fstream>
#include <string>

#include "hamail/test/temp_dir.hpp"

namespace hamail::backend::imap_fetch {

namespace {

store::message_file open_file(const std::filesystem::path& p, const std::string& contents) {
  std::ofstream(p, std::ios::binary) << contents;
  return store::message_file{store::unique_fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)),
                             contents.size()};
}

}  // namespace

class mapped_message_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(mapped_message_test);
  CPPUNIT_TEST(maps_the_bytes);
  CPPUNIT_TEST(small_messages_are_read_large_ones_mapped);
  CPPUNIT_TEST(empty_file_maps_to_an_empty_view);
  CPPUNIT_TEST(short_file_and_bad_fd_are_errors);
  CPPUNIT_TEST(moves_keep_one_owner);
  CPPUNIT_TEST_SUITE_END();

 public:
  void maps_the_bytes() {
    test::temp_dir dir;
    const std::string body = std::string("Subject: x\r\n\r\na\0b\r\n", 19);
    auto file = open_file(dir.path() / "m", body);
    auto m = mapped_message::map(file);
    CPPUNIT_ASSERT(m.has_value());
    file.fd.reset();  // the mapping outlives the descriptor
    CPPUNIT_ASSERT_EQUAL(body, std::string(m->view()));
    CPPUNIT_ASSERT_EQUAL(body.size(), m->size());
    // a prefix of a longer file: only `size` octets
    auto longer = open_file(dir.path() / "l", body + "trailing");
    longer.size = body.size();
    auto p = mapped_message::map(longer);
    CPPUNIT_ASSERT(p.has_value());
    CPPUNIT_ASSERT_EQUAL(body, std::string(p->view()));
  }

  void small_messages_are_read_large_ones_mapped() {
    test::temp_dir dir;
    std::string small(mapped_message::read_limit, 'x');
    small[0] = 'S';
    small.back() = 'E';
    auto s = mapped_message::map(open_file(dir.path() / "small", small));
    CPPUNIT_ASSERT(s.has_value());
    CPPUNIT_ASSERT(!s->is_mapped());
    CPPUNIT_ASSERT(small == s->view());
    std::string large(mapped_message::read_limit + 1, 'y');
    large[0] = 'L';
    large.back() = 'E';
    auto file = open_file(dir.path() / "large", large);
    auto l = mapped_message::map(file);
    CPPUNIT_ASSERT(l.has_value());
    CPPUNIT_ASSERT(l->is_mapped());
    CPPUNIT_ASSERT(large == l->view());
    // a read buffer moves like a mapping: one owner, freed once
    mapped_message moved = std::move(*s);
    CPPUNIT_ASSERT(!moved.is_mapped());
    CPPUNIT_ASSERT(small == moved.view());
    moved = std::move(*l);
    CPPUNIT_ASSERT(moved.is_mapped());
    CPPUNIT_ASSERT(large == moved.view());
  }

  void empty_file_maps_to_an_empty_view() {
    test::temp_dir dir;
    auto file = open_file(dir.path() / "e", "");
    auto m = mapped_message::map(file);
    CPPUNIT_ASSERT(m.has_value());
    CPPUNIT_ASSERT(m->view().empty());
    CPPUNIT_ASSERT(mapped_message().view().empty());
  }

  void short_file_and_bad_fd_are_errors() {
    test::temp_dir dir;
    auto file = open_file(dir.path() / "s", "abc");
    file.size = 4096;
    auto m = mapped_message::map(file);
    CPPUNIT_ASSERT(!m.has_value());
    CPPUNIT_ASSERT(m.err().code == errc::io_error && m.err().is_temporary());
    auto bad = mapped_message::map(-1, 10);
    CPPUNIT_ASSERT(!bad.has_value() && bad.err().code == errc::io_error);
    auto huge = mapped_message::map(-1, ~std::uint64_t{0});
    CPPUNIT_ASSERT(!huge.has_value() && huge.err().code == errc::limit_exceeded);
  }

  void moves_keep_one_owner() {
    test::temp_dir dir;
    auto file = open_file(dir.path() / "m", "hello");
    auto m = mapped_message::map(file);
    CPPUNIT_ASSERT(m.has_value());
    mapped_message a = std::move(*m);
    CPPUNIT_ASSERT(m->view().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
    mapped_message b;
    b = std::move(a);
    CPPUNIT_ASSERT_EQUAL(std::string("hello"), std::string(b.view()));
    b = mapped_message();
    CPPUNIT_ASSERT(b.view().empty());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(mapped_message_test);

}  // namespace hamail::backend::imap_fetch

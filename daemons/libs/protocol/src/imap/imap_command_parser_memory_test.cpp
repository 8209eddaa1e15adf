// Memory behaviour of the IMAP command parser, measured by replacing the
// global operator new in this test binary only.

#include <cppunit/extensions/HelperMacros.h>

#include <cstdlib>
#include <new>
#include <string>

#include "hamail/protocol/imap/command_parser.hpp"

namespace {
std::size_t largest_allocation = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (n > largest_allocation) largest_allocation = n;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace hamail::imap {
namespace {

class command_parser_memory_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(command_parser_memory_test);
  CPPUNIT_TEST(announced_literal_is_not_allocated_before_it_arrives);
  CPPUNIT_TEST_SUITE_END();

 public:
  void announced_literal_is_not_allocated_before_it_arrives() {
    command_parser p;  // default limits: 64 MiB literals
    largest_allocation = 0;
    auto s = p.feed("a APPEND INBOX {60000000+}\r\nabc");
    CPPUNIT_ASSERT(s.status == parse_status::need_more);
    s = p.feed("b APPEND INBOX {60000000}\r\n");
    // a client that announces a big literal and sends a few octets must not
    // make the server hold the announced size
    CPPUNIT_ASSERT(largest_allocation < 1024 * 1024);
    command_parser q;
    CPPUNIT_ASSERT(q.feed("b APPEND INBOX {60000000}\r\n").status ==
                   parse_status::need_continuation);
    CPPUNIT_ASSERT(q.feed("xyz").status == parse_status::need_more);
    CPPUNIT_ASSERT(largest_allocation < 1024 * 1024);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(command_parser_memory_test);

}  // namespace
}  // namespace hamail::imap

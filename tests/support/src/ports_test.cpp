#include "hamail/test/ports.hpp"

#include <arpa/inet.h>
#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace {

/// A listening (or merely bound) loopback socket, closed on destruction.
class loopback_socket {
 public:
  loopback_socket(std::uint16_t port, bool listen)
      : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    CPPUNIT_ASSERT(fd_ >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CPPUNIT_ASSERT_EQUAL(0, ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
    if (listen) CPPUNIT_ASSERT_EQUAL(0, ::listen(fd_, 4));
  }
  ~loopback_socket() { ::close(fd_); }
  loopback_socket(const loopback_socket&) = delete;
  loopback_socket& operator=(const loopback_socket&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

// At global scope so that tests are named "ports_test::<name>" for the runner's filter.
class ports_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ports_test);
  CPPUNIT_TEST(free_port_can_be_bound_and_listened_on);
  CPPUNIT_TEST(port_accepts_only_while_listening);
  CPPUNIT_TEST(bound_but_not_listening_does_not_accept);
  CPPUNIT_TEST(ipv6_loopback_works_when_available);
  CPPUNIT_TEST(non_literal_address_is_rejected);
  CPPUNIT_TEST_SUITE_END();

 public:
  void free_port_can_be_bound_and_listened_on() {
    const std::uint16_t port = hamail::test::free_tcp_port();
    CPPUNIT_ASSERT(port != 0);
    loopback_socket s(port, true);  // asserts bind succeeds
  }

  void port_accepts_only_while_listening() {
    const std::uint16_t port = hamail::test::free_tcp_port();
    CPPUNIT_ASSERT(!hamail::test::port_accepts("127.0.0.1", port));
    {
      loopback_socket s(port, true);
      CPPUNIT_ASSERT(hamail::test::port_accepts("127.0.0.1", port));
      CPPUNIT_ASSERT(hamail::test::port_accepts("127.0.0.1", port, std::chrono::milliseconds{50}));
    }
    CPPUNIT_ASSERT(!hamail::test::port_accepts("127.0.0.1", port));
  }

  void bound_but_not_listening_does_not_accept() {
    const std::uint16_t port = hamail::test::free_tcp_port();
    loopback_socket s(port, false);
    CPPUNIT_ASSERT(!hamail::test::port_accepts("127.0.0.1", port));
  }

  void ipv6_loopback_works_when_available() {
    std::uint16_t port = 0;
    try {
      port = hamail::test::free_tcp_port("::1");
    } catch (const std::runtime_error&) {
      return;  // no IPv6 on this machine: nothing to check
    }
    CPPUNIT_ASSERT(port != 0);
    CPPUNIT_ASSERT(!hamail::test::port_accepts("::1", port));
  }

  void non_literal_address_is_rejected() {
    CPPUNIT_ASSERT_THROW(hamail::test::free_tcp_port("localhost"), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(hamail::test::port_accepts("not an address", 25), std::invalid_argument);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ports_test);

#include "hamail/ocf/probe.hpp"

#include <arpa/inet.h>
#include <cppunit/extensions/HelperMacros.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

using namespace hamail::ocf;
using namespace std::chrono_literals;

namespace {

// A one-connection scripted server: for each step, optionally wait for a client line,
// then send a reply. Enough to drive the probe through good and bad dialogues.
class scripted_server {
 public:
  struct step {
    bool read_line;
    std::string reply;
  };

  explicit scripted_server(std::vector<step> steps) : steps_(std::move(steps)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 1);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~scripted_server() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  void serve() {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    for (const auto& s : steps_) {
      if (s.read_line) {
        char ch;
        while (::recv(c, &ch, 1, 0) == 1 && ch != '\n') {
        }
      }
      if (!s.reply.empty()) ::send(c, s.reply.data(), s.reply.size(), MSG_NOSIGNAL);
    }
    // Hold the connection until the client closes it.
    char ch;
    while (::recv(c, &ch, 1, 0) == 1) {
    }
    ::close(c);
  }

  std::vector<step> steps_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

probe_target at(std::uint16_t port, bool lmtp = false) {
  probe_target t;
  t.address = "127.0.0.1";
  t.port = port;
  t.lmtp = lmtp;
  return t;
}

auto soon() { return std::chrono::steady_clock::now() + 3s; }

}  // namespace

class probe_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(probe_test);
  CPPUNIT_TEST(healthy_lmtp_dialogue);
  CPPUNIT_TEST(multiline_replies);
  CPPUNIT_TEST(busy_greeting_fails);
  CPPUNIT_TEST(refused_connection);
  CPPUNIT_TEST(silent_server_times_out);
  CPPUNIT_TEST(auth_without_tls_offer);
  CPPUNIT_TEST(auth_refused);
  CPPUNIT_TEST_SUITE_END();

 public:
  void healthy_lmtp_dialogue() {
    scripted_server s({{false, "220 store ready\r\n"},
                       {true, "250 store\r\n"},
                       {true, "250 2.0.0 OK\r\n"},
                       {true, "221 bye\r\n"}});
    const auto r = smtp_probe(at(s.port(), true), soon());
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
  }

  void multiline_replies() {
    scripted_server s({{false, "220-store\r\n220 ready\r\n"},
                       {true, "250-store\r\n250-PIPELINING\r\n250 8BITMIME\r\n"},
                       {true, "250 OK\r\n"},
                       {true, "221 bye\r\n"}});
    const auto r = smtp_probe(at(s.port()), soon());
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
  }

  void busy_greeting_fails() {
    scripted_server s({{false, "421 4.3.2 shutting down\r\n"}});
    const auto r = smtp_probe(at(s.port()), soon());
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("421 4.3.2") != std::string::npos);
  }

  void refused_connection() {
    std::uint16_t port;
    {
      scripted_server s({});
      port = s.port();
    }
    // The server is gone (its socket closed); nothing listens on the port any more.
    const auto r = smtp_probe(at(port), soon());
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.refused);
  }

  void silent_server_times_out() {
    scripted_server s({});
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = smtp_probe(at(s.port()), t0 + 300ms);
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("timed out") != std::string::npos);
  }

  void auth_without_tls_offer() {
    // No STARTTLS offered: AUTH PLAIN goes in the clear (the server allowed it).
    scripted_server s({{false, "220 hi\r\n"},
                       {true, "250-hi\r\n250 AUTH PLAIN\r\n"},
                       {true, "235 2.7.0 ok\r\n"},
                       {true, "250 OK\r\n"},
                       {true, "221 bye\r\n"}});
    const auto r = smtp_probe(at(s.port()), soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
  }

  void auth_refused() {
    scripted_server s({{false, "220 hi\r\n"},
                       {true, "250-hi\r\n250 AUTH PLAIN\r\n"},
                       {true, "535 5.7.8 no\r\n"}});
    const auto r = smtp_probe(at(s.port()), soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("AUTH PLAIN answered 535") != std::string::npos);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(probe_test);

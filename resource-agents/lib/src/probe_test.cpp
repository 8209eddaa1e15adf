#include "hamail/ocf/probe.hpp"

#include <arpa/inet.h>
#include <cppunit/extensions/HelperMacros.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "hamail/test/temp_dir.hpp"
#include "hamail/test/test_ca.hpp"

using namespace hamail::ocf;
using namespace std::chrono_literals;

namespace {

// A one-connection scripted server: for each step, optionally wait for a client line,
// then send a reply, and optionally switch to TLS (as the server side of STARTTLS, or
// from the first byte). Records every line the client sent, and whether it came over TLS.
class scripted_server {
 public:
  struct step {
    bool read_line;
    std::string reply;
    bool start_tls = false;  ///< after the reply, do the TLS handshake
  };
  struct received_line {
    std::string text;
    bool over_tls;
  };

  explicit scripted_server(std::vector<step> steps, const hamail::test::test_ca* ca = nullptr,
                           bool implicit_tls = false)
      : steps_(std::move(steps)), implicit_tls_(implicit_tls) {
    if (ca != nullptr) {
      ctx_ = ::SSL_CTX_new(::TLS_server_method());
      ::SSL_CTX_use_certificate_chain_file(ctx_, ca->fullchain.c_str());
      ::SSL_CTX_use_PrivateKey_file(ctx_, ca->server_key.c_str(), SSL_FILETYPE_PEM);
    }
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
  ~scripted_server() { stop(); }
  std::uint16_t port() const { return port_; }

  /// Waits for the dialogue to end (the client closed) and returns what the client sent.
  const std::vector<received_line>& stop() {
    if (thread_.joinable()) {
      ::shutdown(fd_, SHUT_RDWR);
      thread_.join();
      ::close(fd_);
      if (ctx_ != nullptr) ::SSL_CTX_free(ctx_);
      ctx_ = nullptr;
    }
    return lines_;
  }

 private:
  int read_byte(int c, char& ch) {
    if (ssl_ != nullptr) return ::SSL_read(ssl_, &ch, 1);
    return static_cast<int>(::recv(c, &ch, 1, 0));
  }
  void write(int c, const std::string& data) {
    if (ssl_ != nullptr) {
      ::SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
    } else {
      ::send(c, data.data(), data.size(), MSG_NOSIGNAL);
    }
  }
  bool handshake(int c) {
    ssl_ = ::SSL_new(ctx_);
    ::SSL_set_fd(ssl_, c);
    return ::SSL_accept(ssl_) == 1;
  }
  bool read_line(int c) {
    std::string line;
    char ch;
    while (read_byte(c, ch) == 1) {
      if (ch == '\n') {
        lines_.push_back({line, ssl_ != nullptr});
        return true;
      }
      if (ch != '\r') line += ch;
    }
    return false;
  }

  void serve() {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    bool alive = !implicit_tls_ || handshake(c);
    for (const auto& s : steps_) {
      if (!alive) break;
      if (s.read_line && !read_line(c)) break;
      if (!s.reply.empty()) write(c, s.reply);
      if (s.start_tls && !handshake(c)) break;
    }
    // Record the rest until the client closes the connection.
    while (alive && read_line(c)) {
    }
    if (ssl_ != nullptr) ::SSL_free(ssl_);
    ::close(c);
  }

  std::vector<step> steps_;
  bool implicit_tls_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::vector<received_line> lines_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

bool sent_line(const std::vector<scripted_server::received_line>& lines, const std::string& prefix,
               bool& over_tls) {
  for (const auto& l : lines) {
    if (l.text.rfind(prefix, 0) == 0) {
      over_tls = l.over_tls;
      return true;
    }
  }
  return false;
}

bool sent_auth(const std::vector<scripted_server::received_line>& lines, bool& over_tls) {
  return sent_line(lines, "AUTH", over_tls);
}

// The server's side of one HTTP exchange: the probe's request is five lines (request
// line, Host, User-Agent, Connection, the blank line), then `response`.
std::vector<scripted_server::step> http_exchange(const std::string& response) {
  return {{true, ""}, {true, ""}, {true, ""}, {true, ""}, {true, response}};
}

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
  CPPUNIT_TEST(auth_without_tls_offer_sends_no_password);
  CPPUNIT_TEST(auth_refused);
  CPPUNIT_TEST(auth_after_starttls_with_verified_certificate);
  CPPUNIT_TEST(auth_after_starttls_with_verified_dns_name);
  CPPUNIT_TEST(untrusted_certificate_fails_before_auth);
  CPPUNIT_TEST(wrong_name_fails_before_auth);
  CPPUNIT_TEST(implicit_tls_verifies_certificate);
  CPPUNIT_TEST(http_ready_answers_200);
  CPPUNIT_TEST(http_503_fails_with_the_body_as_reason);
  CPPUNIT_TEST(http_malformed_status_line_fails);
  CPPUNIT_TEST(http_oversized_body_fails);
  CPPUNIT_TEST(http_over_implicit_tls_verifies_certificate);
  CPPUNIT_TEST(imap_login_after_starttls);
  CPPUNIT_TEST(imap_login_refused);
  CPPUNIT_TEST(imap_without_starttls_sends_no_password);
  CPPUNIT_TEST(imap_untrusted_certificate_fails_before_login);
  CPPUNIT_TEST(imap_implicit_tls_login_with_literal_in_capability);
  CPPUNIT_TEST(imap_password_with_quotes_is_escaped);
  CPPUNIT_TEST(imap_bye_greeting_fails);
  CPPUNIT_TEST(imap_password_with_newline_is_refused_before_connecting);
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

  void auth_without_tls_offer_sends_no_password() {
    // No STARTTLS offered: the probe fails and the password never goes in the clear,
    // even though this server would accept it.
    scripted_server s({{false, "220 hi\r\n"},
                       {true, "250-hi\r\n250 AUTH PLAIN\r\n"},
                       {true, "235 2.7.0 ok\r\n"},
                       {true, "250 OK\r\n"},
                       {true, "221 bye\r\n"}});
    const auto r = smtp_probe(at(s.port()), soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("does not offer STARTTLS") != std::string::npos);
    bool over_tls = false;
    CPPUNIT_ASSERT(!sent_auth(s.stop(), over_tls));
  }

  void auth_refused() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path());
    scripted_server s({{false, "220 hi\r\n"},
                       {true, "250-hi\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"},
                       {true, "220 2.0.0 go ahead\r\n", true},
                       {true, "250-hi\r\n250 AUTH PLAIN\r\n"},
                       {true, "535 5.7.8 no\r\n"}},
                      &ca);
    auto t = at(s.port());
    t.ca_file = ca.ca_cert;
    const auto r = smtp_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("AUTH PLAIN answered 535") != std::string::npos);
  }

  void auth_after_starttls_with_verified_certificate() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path());
    scripted_server s(starttls_dialogue(), &ca);
    auto t = at(s.port());
    t.ca_file = ca.ca_cert;
    const auto r = smtp_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
    bool over_tls = false;
    CPPUNIT_ASSERT(sent_auth(s.stop(), over_tls));
    CPPUNIT_ASSERT(over_tls);
  }

  void auth_after_starttls_with_verified_dns_name() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path(), {"store-a.example.org"});
    scripted_server s(starttls_dialogue(), &ca);
    auto t = at(s.port());
    t.ca_file = ca.ca_cert;
    t.server_name = "store-a.example.org";
    const auto r = smtp_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
  }

  void untrusted_certificate_fails_before_auth() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path() / "server");
    const auto other = hamail::test::test_ca::make(dir.path() / "other");
    scripted_server s(starttls_dialogue(), &ca);
    auto t = at(s.port());
    t.ca_file = other.ca_cert;
    const auto r = smtp_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail,
                           r.detail.find("certificate verification failed") != std::string::npos);
    bool over_tls = false;
    CPPUNIT_ASSERT(!sent_auth(s.stop(), over_tls));
  }

  void wrong_name_fails_before_auth() {
    // Trusted chain, but issued for another name than the one probed (no 127.0.0.1 SAN).
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path(), {"store-b.example.org"});
    scripted_server s(starttls_dialogue(), &ca);
    auto t = at(s.port());
    t.ca_file = ca.ca_cert;
    auto r = smtp_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("mismatch") != std::string::npos);
    bool over_tls = false;
    CPPUNIT_ASSERT(!sent_auth(s.stop(), over_tls));

    scripted_server s2(starttls_dialogue(), &ca);
    t.port = s2.port();
    t.server_name = "store-a.example.org";
    r = smtp_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("mismatch") != std::string::npos);
  }

  void implicit_tls_verifies_certificate() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path() / "server");
    const auto other = hamail::test::test_ca::make(dir.path() / "other");
    const std::vector<scripted_server::step> dialogue = {
        {false, "220 hi\r\n"}, {true, "250 hi\r\n"}, {true, "250 OK\r\n"}, {true, "221 bye\r\n"}};
    {
      scripted_server s(dialogue, &ca, true);
      auto t = at(s.port());
      t.implicit_tls = true;
      t.ca_file = ca.ca_cert;
      const auto r = smtp_probe(t, soon());
      CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
    }
    scripted_server s(dialogue, &ca, true);
    auto t = at(s.port());
    t.implicit_tls = true;
    t.ca_file = other.ca_cert;
    const auto r = smtp_probe(t, soon());
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail,
                           r.detail.find("certificate verification failed") != std::string::npos);
  }

  void http_ready_answers_200() {
    scripted_server s(http_exchange(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nready\n"));
    http_response resp;
    const auto r = http_get(at(s.port()), "/ready", soon(), &resp);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
    CPPUNIT_ASSERT_EQUAL(200, resp.status);
    CPPUNIT_ASSERT_EQUAL(std::string("ready\n"), resp.body);
    const auto& lines = s.stop();
    CPPUNIT_ASSERT(!lines.empty());
    CPPUNIT_ASSERT_EQUAL(std::string("GET /ready HTTP/1.1"), lines.front().text);
  }

  void http_503_fails_with_the_body_as_reason() {
    scripted_server s(
        http_exchange("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 16\r\n"
                      "\r\nno store answers"));
    http_response resp;
    const auto r = http_get(at(s.port()), "/ready", soon(), &resp);
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_EQUAL(503, resp.status);
    CPPUNIT_ASSERT_MESSAGE(
        r.detail, r.detail.find("GET /ready answered 503: no store answers") != std::string::npos);
  }

  void http_malformed_status_line_fails() {
    scripted_server s(http_exchange("SMTP/1.0 hello\r\n\r\n"));
    const auto r = http_get(at(s.port()), "/ready", soon());
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail,
                           r.detail.find("malformed HTTP status line") != std::string::npos);
  }

  void http_oversized_body_fails() {
    scripted_server s(http_exchange("HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n"));
    const auto r = http_get(at(s.port()), "/ready", soon());
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("too large") != std::string::npos);
  }

  void http_over_implicit_tls_verifies_certificate() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path() / "server");
    const auto other = hamail::test::test_ca::make(dir.path() / "other");
    const auto ok = http_exchange("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    {
      scripted_server s(ok, &ca, true);
      auto t = at(s.port());
      t.implicit_tls = true;
      t.ca_file = ca.ca_cert;
      const auto r = http_get(t, "/ready", soon());
      CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
    }
    scripted_server s(ok, &ca, true);
    auto t = at(s.port());
    t.implicit_tls = true;
    t.ca_file = other.ca_cert;
    const auto r = http_get(t, "/ready", soon());
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail,
                           r.detail.find("certificate verification failed") != std::string::npos);
  }

  void imap_login_after_starttls() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path());
    scripted_server s(imap_starttls_dialogue("c OK logged in\r\n"), &ca);
    auto t = at(s.port());
    t.ca_file = ca.ca_cert;
    const auto r = imap_login_probe(t, soon(), probe_credentials{"probe", "secret"});
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
    bool over_tls = false;
    const auto& lines = s.stop();
    CPPUNIT_ASSERT(sent_line(lines, "c LOGIN \"probe\" \"secret\"", over_tls));
    CPPUNIT_ASSERT(over_tls);
    CPPUNIT_ASSERT(sent_line(lines, "d LOGOUT", over_tls));
  }

  void imap_login_refused() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path());
    scripted_server s(imap_starttls_dialogue("c NO [AUTHENTICATIONFAILED] bad password\r\n"), &ca);
    auto t = at(s.port());
    t.ca_file = ca.ca_cert;
    const auto r = imap_login_probe(t, soon(), probe_credentials{"probe", "wrong"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(
        r.detail, r.detail.find("LOGIN answered NO [AUTHENTICATIONFAILED]") != std::string::npos);
  }

  void imap_without_starttls_sends_no_password() {
    scripted_server s({{false, "* OK ready\r\n"},
                       {true, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na OK done\r\n"},
                       {true, "c OK logged in\r\n"},
                       {true, "* BYE\r\nd OK bye\r\n"}});
    const auto r = imap_login_probe(at(s.port()), soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("does not offer STARTTLS") != std::string::npos);
    bool over_tls = false;
    CPPUNIT_ASSERT(!sent_line(s.stop(), "c LOGIN", over_tls));
  }

  void imap_untrusted_certificate_fails_before_login() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path() / "server");
    const auto other = hamail::test::test_ca::make(dir.path() / "other");
    scripted_server s(imap_starttls_dialogue("c OK logged in\r\n"), &ca);
    auto t = at(s.port());
    t.ca_file = other.ca_cert;
    const auto r = imap_login_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail,
                           r.detail.find("certificate verification failed") != std::string::npos);
    bool over_tls = false;
    CPPUNIT_ASSERT(!sent_line(s.stop(), "c LOGIN", over_tls));
  }

  void imap_implicit_tls_login_with_literal_in_capability() {
    // Implicit TLS: no CAPABILITY/STARTTLS; an untagged line with a literal is skipped whole.
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path());
    scripted_server s({{false, "* OK ready\r\n"},
                       {true, "* ID (\"name\" {5}\r\nc OK \")\r\nc OK logged in\r\n"},
                       {true, "* BYE\r\nd OK bye\r\n"}},
                      &ca, true);
    auto t = at(s.port());
    t.implicit_tls = true;
    t.ca_file = ca.ca_cert;
    const auto r = imap_login_probe(t, soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
    bool over_tls = false;
    CPPUNIT_ASSERT(sent_line(s.stop(), "c LOGIN", over_tls));
    CPPUNIT_ASSERT(over_tls);
  }

  void imap_password_with_quotes_is_escaped() {
    const hamail::test::temp_dir dir;
    const auto ca = hamail::test::test_ca::make(dir.path());
    scripted_server s(imap_starttls_dialogue("c OK logged in\r\n"), &ca);
    auto t = at(s.port());
    t.ca_file = ca.ca_cert;
    const auto r = imap_login_probe(t, soon(), probe_credentials{"u", "a\"b\\c"});
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.ok);
    bool over_tls = false;
    CPPUNIT_ASSERT(sent_line(s.stop(), "c LOGIN \"u\" \"a\\\"b\\\\c\"", over_tls));
  }

  void imap_bye_greeting_fails() {
    scripted_server s({{false, "* BYE too many connections\r\n"}});
    const auto r = imap_login_probe(at(s.port()), soon(), probe_credentials{"u", "p"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("too many connections") != std::string::npos);
  }

  void imap_password_with_newline_is_refused_before_connecting() {
    const auto r = imap_login_probe(at(1), soon(), probe_credentials{"u", "p\r\na LOGOUT"});
    CPPUNIT_ASSERT(!r.ok);
    CPPUNIT_ASSERT_MESSAGE(r.detail, r.detail.find("quoted string") != std::string::npos);
  }

 private:
  static std::vector<scripted_server::step> imap_starttls_dialogue(const std::string& login_reply) {
    return {{false, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"},
            {true, "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na OK done\r\n"},
            {true, "b OK begin TLS\r\n", true},
            {true, login_reply},
            {true, "* BYE logging out\r\nd OK bye\r\n"}};
  }

  static std::vector<scripted_server::step> starttls_dialogue() {
    return {{false, "220 hi\r\n"},
            {true, "250-hi\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"},
            {true, "220 2.0.0 go ahead\r\n", true},
            {true, "250-hi\r\n250 AUTH PLAIN\r\n"},
            {true, "235 2.7.0 ok\r\n"},
            {true, "250 OK\r\n"},
            {true, "221 bye\r\n"}};
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(probe_test);

#pragma once

// Conversation tests of the IMAP session: the shared backend fixture
// (conversation_test_base.hpp) with an IMAP context, and a client that sends
// a command and returns everything up to and including its tagged response.

#include "conversation_test_base.hpp"
#include "imap/session.hpp"
#include "imap/structure_cache.hpp"

namespace hamail::backend::imap_test {

using namespace conversation_test;

/// One backend's shared state with its IMAP sessions.
struct fixture : backend_fixture {
  fixture() : structures(1 << 20) {
    cfg.store.hostname = "imap.test";
    cfg.imap.login_without_tls = true;
    ctx = std::make_unique<imap_context>(imap_context{cfg, *mail, accounts, blocking, throttle,
                                                      passwords, structures, nullptr, gate.get()});
  }
  ~fixture() { stop(); }

  /// Starts a session and returns its client, greeting read.
  client& connect() {
    imap_context* c = ctx.get();
    return start("imap", [c](net::connection& conn) -> asio::awaitable<void> {
      imap_session_detail::session s(*c, conn);
      co_await s.run();
    });
  }
  /// connect() and LOGIN as alice.
  client& login(std::string_view user = "alice@example.org", std::string_view pw = "secret") {
    auto& c = connect();
    auto r = c.command("L1 LOGIN " + std::string(user) + " " + std::string(pw));
    CPPUNIT_ASSERT_MESSAGE(r, r.find("L1 OK") != std::string::npos);
    return c;
  }

  imap_fetch::structure_cache structures;
  std::unique_ptr<imap_context> ctx;
};

}  // namespace hamail::backend::imap_test

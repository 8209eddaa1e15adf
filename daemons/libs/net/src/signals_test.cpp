// Real signals raised at the test process while a signal_handler is installed.

#include "hamail/net/signals.hpp"

#include <csignal>

#include "test_harness.hpp"

using namespace hamail::net::testing;
using hamail::errc;
using hamail::tls_mode;
using hamail::net::signal_handler;

namespace {

/// Uppercase hex without leading zeros, so serials from different printers compare.
std::string normal_serial(const std::string& hex) {
  std::string out;
  for (char c : hex) {
    if (std::isxdigit(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  const auto first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

}  // namespace

class signals_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(signals_test);
  CPPUNIT_TEST(sighup_reloads_certificate);
  CPPUNIT_TEST(sighup_with_broken_files_keeps_serving_old_certificate);
  CPPUNIT_TEST(sigterm_drains_and_second_sigterm_forces);
  CPPUNIT_TEST_SUITE_END();

 public:
  void sighup_reloads_certificate() {
    tls_fixture tls;
    net_fixture f;
    auto& srv = f.start_server({net_fixture::listener("127.0.0.1", 0, tls_mode::implicit)},
                               net_fixture::limits(), tls.store.get());
    signal_handler signals(f.io, srv, tls.store.get(), 5s);
    int hook_calls = 0;
    signals.on_reload([&] { ++hook_calls; });
    CPPUNIT_ASSERT(signals.start().has_value());
    f.on_body_end([&] { signals.stop(); });

    f.run([&]() -> awaitable<void> {
      line_client before(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await before.connect(f.endpoint()));
      CPPUNIT_ASSERT(!co_await before.handshake(*tls.client));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await before.read_line());
      const std::string old_serial = normal_serial(before.peer_serial());

      const std::string new_serial = normal_serial(tls.ca.reissue());
      CPPUNIT_ASSERT(new_serial != old_serial);
      const auto generation = tls.store->generation();
      ::raise(SIGHUP);
      CPPUNIT_ASSERT(
          co_await wait_until([&] { return tls.store->generation() == generation + 1; }));
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, signals.reloads());
      CPPUNIT_ASSERT_EQUAL(1, hook_calls);

      line_client after(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await after.connect(f.endpoint()));
      CPPUNIT_ASSERT(!co_await after.handshake(*tls.client));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await after.read_line());
      CPPUNIT_ASSERT_EQUAL(new_serial, normal_serial(after.peer_serial()));

      // The connection made before the reload carries on with its session.
      co_await before.write("ECHO still fine\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("still fine"), co_await before.read_line());
      CPPUNIT_ASSERT_EQUAL(old_serial, normal_serial(before.peer_serial()));

      signals.stop();
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void sighup_with_broken_files_keeps_serving_old_certificate() {
    tls_fixture tls;
    net_fixture f;
    auto& srv = f.start_server({net_fixture::listener("127.0.0.1", 0, tls_mode::implicit)},
                               net_fixture::limits(), tls.store.get());
    signal_handler signals(f.io, srv, tls.store.get(), 5s);
    CPPUNIT_ASSERT(signals.start().has_value());
    f.on_body_end([&] { signals.stop(); });
    f.run([&]() -> awaitable<void> {
      line_client before(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await before.connect(f.endpoint()));
      CPPUNIT_ASSERT(!co_await before.handshake(*tls.client));
      const std::string old_serial = normal_serial(before.peer_serial());

      std::filesystem::remove(tls.ca.server_key);
      ::raise(SIGHUP);
      CPPUNIT_ASSERT(co_await wait_until([&] { return signals.reloads() == 1; }));
      CPPUNIT_ASSERT_EQUAL(std::uint64_t{1}, tls.store->generation());

      line_client after(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await after.connect(f.endpoint()));
      CPPUNIT_ASSERT(!co_await after.handshake(*tls.client));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await after.read_line());
      CPPUNIT_ASSERT_EQUAL(old_serial, normal_serial(after.peer_serial()));
      signals.stop();
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void sigterm_drains_and_second_sigterm_forces() {
    net_fixture f;
    auto& srv = f.start_server({net_fixture::listener()}, net_fixture::limits());
    signal_handler signals(f.io, srv, nullptr, 30s);
    CPPUNIT_ASSERT(signals.start().has_value());
    f.on_body_end([&] { signals.stop(); });
    f.run([&]() -> awaitable<void> {
      line_client idle(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await idle.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await idle.read_line());
      line_client stuck(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await stuck.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await stuck.read_line());
      co_await stuck.write("BODY\r\n");
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.record->executed_command("BODY"); }));

      ::raise(SIGTERM);
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR shutting down"), co_await idle.read_line());
      CPPUNIT_ASSERT(srv.draining());
      // The session in a command would get 30 s; a second SIGTERM ends it now.
      CPPUNIT_ASSERT_EQUAL(std::string("<TIMEOUT>"), co_await stuck.read_line(200ms));
      ::raise(SIGTERM);
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR forced shutdown"), co_await stuck.read_line());
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.server_finished(); }));
      signals.stop();
    });
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(signals_test);

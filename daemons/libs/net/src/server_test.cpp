// The server over real loopback sockets (port 0): STARTTLS and implicit TLS,
// timeouts, connection limits, drain, binding.

#include <iostream>

#include "hamail/protocol/proxy/header_parser.hpp"
#include "test_harness.hpp"

using namespace hamail::net::testing;
using hamail::errc;
using hamail::tls_mode;

class server_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(server_test);
  CPPUNIT_TEST(starttls_upgrade_over_loopback);
  CPPUNIT_TEST(bytes_pipelined_after_starttls_are_discarded);
  CPPUNIT_TEST(implicit_tls_listener);
  CPPUNIT_TEST(plain_client_on_implicit_tls_listener_is_dropped_without_hang);
  CPPUNIT_TEST(idle_timeout_closes_silent_client);
  CPPUNIT_TEST(in_command_read_still_times_out);
  CPPUNIT_TEST(global_connection_limit_sends_busy_reply);
  CPPUNIT_TEST(busy_reply_on_implicit_tls_listener_is_sent_over_tls);
  CPPUNIT_TEST(per_ip_limit_counts_per_address);
  CPPUNIT_TEST(proxy_header_from_a_balancer_names_the_client);
  CPPUNIT_TEST(bad_or_missing_proxy_header_closes_the_connection);
  CPPUNIT_TEST(slot_freed_after_disconnect);
  CPPUNIT_TEST(each_listener_counts_its_own_connections);
  CPPUNIT_TEST(per_ip_limit_counts_ipv4_prefix_when_configured);
  CPPUNIT_TEST(per_ip_limit_applies_to_ipv6_clients);
  CPPUNIT_TEST(session_timeout_ends_a_busy_session);
  CPPUNIT_TEST(graceful_drain_lets_in_command_session_finish);
  CPPUNIT_TEST(drain_deadline_forces_close);
  CPPUNIT_TEST(drain_with_no_connections_completes_run);
  CPPUNIT_TEST(two_servers_on_different_ips_same_port);
  CPPUNIT_TEST(ipv6_wildcard_listener_leaves_ipv4_port_free);
  CPPUNIT_TEST(unknown_protocol_or_bad_address_is_config_error);
  CPPUNIT_TEST_SUITE_END();

 public:
  void starttls_upgrade_over_loopback() {
    tls_fixture tls;
    net_fixture f;
    f.start_server({net_fixture::listener("127.0.0.1", 0, tls_mode::starttls)},
                   net_fixture::limits(), tls.store.get());
    f.run([&]() -> awaitable<void> {
      line_client c(f.io.get_executor());
      auto ec = co_await c.connect(f.endpoint());
      CPPUNIT_ASSERT_MESSAGE(ec.message(), !ec);
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      co_await c.write("TLS?\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("plain"), co_await c.read_line());
      co_await c.write("STARTTLS\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK begin TLS"), co_await c.read_line());
      ec = co_await c.handshake(*tls.client, "localhost");
      CPPUNIT_ASSERT_MESSAGE("client handshake (verifying CA and host name): " + ec.message(), !ec);
      CPPUNIT_ASSERT(!c.peer_serial().empty());
      co_await c.write("ECHO over tls\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("over tls"), co_await c.read_line());
      co_await c.write("TLS?\r\n");
      const std::string names = co_await c.read_line();
      CPPUNIT_ASSERT_MESSAGE(names,
                             names.rfind("TLSv1.", 0) == 0 && names.find(' ') != std::string::npos);
      co_await c.write("QUIT\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK bye"), co_await c.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await c.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT_EQUAL(1, f.record->sessions_ended);
  }

  void bytes_pipelined_after_starttls_are_discarded() {
    tls_fixture tls;
    net_fixture f;
    f.start_server({net_fixture::listener("127.0.0.1", 0, tls_mode::starttls)},
                   net_fixture::limits(), tls.store.get());
    f.run([&]() -> awaitable<void> {
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      // One write: the server reads both lines in one go, as an attacker who
      // injects into the plaintext stream would arrange.
      co_await c.write("STARTTLS\r\nECHO x\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK begin TLS"), co_await c.read_line());
      CPPUNIT_ASSERT_MESSAGE("server sent more than the STARTTLS reply in plaintext",
                             c.buffered().empty());
      auto ec = co_await c.handshake(*tls.client, "localhost");
      CPPUNIT_ASSERT_MESSAGE(ec.message(), !ec);
      co_await c.write("ECHO y\r\n");
      // Had "ECHO x" been kept, its answer "x" would come first.
      CPPUNIT_ASSERT_EQUAL(std::string("y"), co_await c.read_line());
      co_await c.write("QUIT\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK bye"), co_await c.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT_MESSAGE("the pipelined ECHO x was executed",
                           !f.record->executed_command("ECHO x"));
    const std::vector<std::string> expected{"STARTTLS", "ECHO y", "QUIT"};
    CPPUNIT_ASSERT(expected == f.record->executed);
  }

  void implicit_tls_listener() {
    tls_fixture tls;
    net_fixture f;
    f.start_server({net_fixture::listener("127.0.0.1", 0, tls_mode::implicit)},
                   net_fixture::limits(), tls.store.get());
    f.run([&]() -> awaitable<void> {
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint()));
      auto ec = co_await c.handshake(*tls.client, "127.0.0.1");
      CPPUNIT_ASSERT_MESSAGE(ec.message(), !ec);
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      co_await c.write("TLS?\r\n");
      const std::string names = co_await c.read_line();
      CPPUNIT_ASSERT_MESSAGE(names, names.rfind("TLSv1.", 0) == 0);
      co_await c.write("ECHO secret\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("secret"), co_await c.read_line());
      co_await c.write("QUIT\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK bye"), co_await c.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await c.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void plain_client_on_implicit_tls_listener_is_dropped_without_hang() {
    tls_fixture tls;
    net_fixture f;
    auto opts = net_fixture::options();
    opts.handshake_timeout = 500ms;
    f.start_server({net_fixture::listener("127.0.0.1", 0, tls_mode::implicit)},
                   net_fixture::limits(), tls.store.get(), opts);
    f.run([&]() -> awaitable<void> {
      // Speaks first in plaintext: the handshake fails at once.
      line_client talker(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await talker.connect(f.endpoint()));
      co_await talker.write("EHLO client.example\r\n");
      const std::string got = co_await talker.read_to_eof(10s);
      CPPUNIT_ASSERT_MESSAGE(got, got.find("<TIMEOUT>") == std::string::npos);
      CPPUNIT_ASSERT_MESSAGE(got, got.find("+OK") == std::string::npos);

      // Waits for a greeting that never comes: dropped at the handshake timeout.
      line_client waiter(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await waiter.connect(f.endpoint()));
      const auto start = clock::now();
      const std::string silent = co_await waiter.read_to_eof(10s);
      CPPUNIT_ASSERT_EQUAL(std::string(), silent);
      CPPUNIT_ASSERT(clock::now() - start >= 400ms);

      CPPUNIT_ASSERT(co_await wait_until([&] { return f.record->sessions_started == 0; }));
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT_EQUAL(0, f.record->sessions_started);
  }

  void idle_timeout_closes_silent_client() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.idle_timeout = 300ms;
    f.start_server({net_fixture::listener()}, lim);
    f.run([&]() -> awaitable<void> {
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint()));
      const auto start = clock::now();
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR idle timeout"), co_await c.read_line(10s));
      CPPUNIT_ASSERT(clock::now() - start >= 250ms);
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await c.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT_EQUAL(1, f.record->count(errc::timed_out));
  }

  void in_command_read_still_times_out() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.idle_timeout = 300ms;
    f.start_server({net_fixture::listener()}, lim);
    f.run([&]() -> awaitable<void> {
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      co_await c.write("BODY\r\nfirst line\r\n");
      // The body never ends: the read inside the command must time out too.
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR idle timeout"), co_await c.read_line(10s));
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await c.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT(f.record->executed_command("BODY"));
    CPPUNIT_ASSERT_EQUAL(1, f.record->count(errc::timed_out));
  }

  void global_connection_limit_sends_busy_reply() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections = 2;
    auto& srv = f.start_server({net_fixture::listener()}, lim);
    f.run([&]() -> awaitable<void> {
      line_client a(f.io.get_executor());
      line_client b(f.io.get_executor());
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await a.read_line());
      CPPUNIT_ASSERT(!co_await b.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await b.read_line());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await c.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await c.read_line());
      // The sessions already admitted are unaffected.
      co_await a.write("ECHO still here\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("still here"), co_await a.read_line());
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, srv.rejected_connections());
      CPPUNIT_ASSERT_EQUAL(std::size_t{2}, srv.active_connections());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT_EQUAL(2, f.record->sessions_started);
  }

  void busy_reply_on_implicit_tls_listener_is_sent_over_tls() {
    tls_fixture tls;
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections = 1;
    f.start_server({net_fixture::listener("127.0.0.1", 0, tls_mode::implicit)}, lim,
                   tls.store.get());
    f.run([&]() -> awaitable<void> {
      line_client a(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(f.endpoint()));
      CPPUNIT_ASSERT(!co_await a.handshake(*tls.client));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await a.read_line());
      line_client b(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await b.connect(f.endpoint()));
      CPPUNIT_ASSERT(!co_await b.handshake(*tls.client));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await b.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await b.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT_EQUAL(1, f.record->sessions_started);
  }

  void per_ip_limit_counts_per_address() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections_per_ip = 1;
    auto& srv = f.start_server({net_fixture::listener("127.0.0.1")}, lim);
    f.run([&]() -> awaitable<void> {
      line_client first(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await first.connect(f.endpoint(), "127.0.0.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await first.read_line());

      line_client second(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await second.connect(f.endpoint(), "127.0.0.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await second.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await second.read_line());

      line_client other(f.io.get_executor());
      auto ec = co_await other.connect(f.endpoint(), "127.0.0.2");
      CPPUNIT_ASSERT_MESSAGE("connect from 127.0.0.2: " + ec.message(), !ec);
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await other.read_line());
      CPPUNIT_ASSERT_EQUAL(std::size_t{2}, srv.active_connections());
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, srv.rejected_connections());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void proxy_header_from_a_balancer_names_the_client() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections_per_ip = 1;
    auto l = net_fixture::listener("127.0.0.1");
    l.proxy_protocol_from = {"127.0.0.1"};
    f.start_server({l}, lim);
    namespace pp = hamail::proxy_protocol;
    pp::header h;
    h.cmd = pp::command::proxy;
    h.fam = pp::family::inet;
    h.proto = pp::transport::stream;
    h.source.address = {192, 0, 2, 7};
    h.source.port = 4242;
    h.destination.address = {198, 51, 100, 1};
    h.destination.port = 143;
    f.run([&]() -> awaitable<void> {
      // v2, with the client's first command in the same segment: the header is
      // taken, the command is not.
      line_client a(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(f.endpoint(), "127.0.0.1"));
      co_await a.write(pp::encode_v2(h) + "WHO\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await a.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("192.0.2.7:4242 via 127.0.0.1"), co_await a.read_line());
      // v1 from the same balancer: the per-address limit (1) does not count balancers.
      line_client b(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await b.connect(f.endpoint(), "127.0.0.1"));
      co_await b.write("PROXY TCP6 2001:db8::5 2001:db8::1 5555 993\r\nWHO\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await b.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("2001:db8::5:5555 via 127.0.0.1"), co_await b.read_line());
      // A LOCAL header (the balancer's health check) keeps the real endpoints.
      pp::header local;
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint(), "127.0.0.1"));
      co_await c.write(pp::encode_v2(local) + "WHO\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      CPPUNIT_ASSERT((co_await c.read_line()).starts_with("127.0.0.1:"));
      // Anyone else is served as it comes, without a header.
      line_client d(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await d.connect(f.endpoint(), "127.0.0.2"));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await d.read_line());
      co_await d.write("WHO\r\n");
      CPPUNIT_ASSERT((co_await d.read_line()).starts_with("127.0.0.2:"));
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void bad_or_missing_proxy_header_closes_the_connection() {
    net_fixture f;
    auto l = net_fixture::listener("127.0.0.1");
    l.proxy_protocol_from = {"127.0.0.1"};
    auto opts = net_fixture::options();
    opts.handshake_timeout = std::chrono::milliseconds(300);
    f.start_server({l}, net_fixture::limits(), nullptr, opts);
    f.run([&]() -> awaitable<void> {
      // Not a header: closed before the greeting, nothing served.
      line_client a(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(f.endpoint(), "127.0.0.1"));
      co_await a.write("WHO\r\nWHO\r\nWHO\r\nWHO\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await a.read_line());
      // A header that never ends: closed at the handshake timeout.
      line_client b(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await b.connect(f.endpoint(), "127.0.0.1"));
      co_await b.write("PROXY TCP4 192.0.2.1");
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await b.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void slot_freed_after_disconnect() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections = 1;
    lim.max_connections_per_ip = 1;
    auto& srv = f.start_server({net_fixture::listener()}, lim);
    f.run([&]() -> awaitable<void> {
      line_client a(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await a.read_line());
      line_client b(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await b.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await b.read_line());

      co_await a.write("QUIT\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK bye"), co_await a.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await a.read_line());
      CPPUNIT_ASSERT(co_await wait_until([&] { return srv.active_connections() == 0; }));

      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
    CPPUNIT_ASSERT_EQUAL(2, f.record->sessions_started);
  }

  void each_listener_counts_its_own_connections() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections = 3;
    auto flooded = net_fixture::listener();
    flooded.name = "flooded";
    flooded.max_connections = 2;
    auto& srv = f.start_server({flooded, net_fixture::listener()}, lim);
    f.run([&]() -> awaitable<void> {
      line_client a(f.io.get_executor());
      line_client b(f.io.get_executor());
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(f.endpoint(0, 0)));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await a.read_line());
      CPPUNIT_ASSERT(!co_await b.connect(f.endpoint(0, 0)));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await b.read_line());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint(0, 0)));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await c.read_line());
      // The other listener has its own slots (the [limits] default of 3), however
      // full the first one is.
      std::vector<std::unique_ptr<line_client>> others;
      for (int i = 0; i < 3; ++i) {
        others.push_back(std::make_unique<line_client>(f.io.get_executor()));
        CPPUNIT_ASSERT(!co_await others.back()->connect(f.endpoint(0, 1)));
        CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await others.back()->read_line());
      }
      line_client over(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await over.connect(f.endpoint(0, 1)));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await over.read_line());
      CPPUNIT_ASSERT_EQUAL(std::size_t{5}, srv.active_connections());
      CPPUNIT_ASSERT_EQUAL(std::size_t{2}, srv.rejected_connections());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void per_ip_limit_counts_ipv4_prefix_when_configured() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections_per_ip = 1;
    lim.ipv4_prefix = 24;
    f.start_server({net_fixture::listener("127.0.0.1")}, lim);
    f.run([&]() -> awaitable<void> {
      line_client first(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await first.connect(f.endpoint(), "127.0.0.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await first.read_line());
      // 127.0.0.2 is another address of the same /24.
      line_client neighbour(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await neighbour.connect(f.endpoint(), "127.0.0.2"));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await neighbour.read_line());
      line_client elsewhere(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await elsewhere.connect(f.endpoint(), "127.0.1.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await elsewhere.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void per_ip_limit_applies_to_ipv6_clients() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.max_connections_per_ip = 2;
    auto& srv = f.start_server({net_fixture::listener("::1")}, lim);
    f.run([&]() -> awaitable<void> {
      std::vector<std::unique_ptr<line_client>> clients;
      for (int i = 0; i < 2; ++i) {
        clients.push_back(std::make_unique<line_client>(f.io.get_executor()));
        CPPUNIT_ASSERT(!co_await clients.back()->connect(f.endpoint(), "::1"));
        CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await clients.back()->read_line());
      }
      line_client third(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await third.connect(f.endpoint(), "::1"));
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR busy"), co_await third.read_line());
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, srv.rejected_connections());
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void session_timeout_ends_a_busy_session() {
    net_fixture f;
    auto lim = net_fixture::limits();
    lim.session_timeout = 400ms;
    f.start_server({net_fixture::listener()}, lim);
    f.run([&]() -> awaitable<void> {
      line_client c(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await c.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await c.read_line());
      const auto start = clock::now();
      std::string got;
      // A command every 100 ms never lets the 60 s idle timeout fire.
      while (clock::now() - start < 5s) {
        co_await c.write("ECHO x\r\n");
        got = co_await c.read_line(2s);
        if (got != "x") break;
        co_await sleep_for(100ms);
      }
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR idle timeout"), got);
      CPPUNIT_ASSERT(clock::now() - start < 2s);
      CPPUNIT_ASSERT(co_await f.stop_server());
    });
  }

  void graceful_drain_lets_in_command_session_finish() {
    net_fixture f;
    auto& srv = f.start_server({net_fixture::listener()}, net_fixture::limits());
    f.run([&]() -> awaitable<void> {
      line_client idle(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await idle.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await idle.read_line());
      line_client busy(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await busy.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await busy.read_line());
      co_await busy.write("BODY\r\nline one\r\n");
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.record->executed_command("BODY"); }));

      const auto endpoint = f.endpoint();
      srv.drain(clock::now() + 30s);
      // The idle session says goodbye at once.
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR shutting down"), co_await idle.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await idle.read_line());
      // Nobody new gets in.
      line_client late(f.io.get_executor());
      CPPUNIT_ASSERT_MESSAGE("connect after drain must be refused",
                             co_await late.connect(endpoint));
      // The session inside a command is not interrupted; it finishes, then says goodbye.
      co_await sleep_for(100ms);
      co_await busy.write("line two\r\n.\r\n");
      CPPUNIT_ASSERT_EQUAL(std::string("+OK got 2 lines"), co_await busy.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR shutting down"), co_await busy.read_line());
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await busy.read_line());
      // run() completes long before the 30 s deadline.
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.server_finished(); }, 10s));
    });
    CPPUNIT_ASSERT_EQUAL(2, f.record->count(errc::shutting_down));
    CPPUNIT_ASSERT_EQUAL(2, f.record->sessions_ended);
  }

  void drain_deadline_forces_close() {
    net_fixture f;
    auto& srv = f.start_server({net_fixture::listener()}, net_fixture::limits());
    f.run([&]() -> awaitable<void> {
      line_client stuck(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await stuck.connect(f.endpoint()));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await stuck.read_line());
      co_await stuck.write("BODY\r\nnever finished\r\n");
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.record->executed_command("BODY"); }));

      const auto start = clock::now();
      srv.drain(start + 500ms);
      CPPUNIT_ASSERT_EQUAL(std::string("-ERR forced shutdown"), co_await stuck.read_line());
      CPPUNIT_ASSERT(clock::now() - start >= 450ms);
      CPPUNIT_ASSERT_EQUAL(std::string("<EOF>"), co_await stuck.read_line());
      CPPUNIT_ASSERT(co_await wait_until([&] { return f.server_finished(); }, 10s));
    });
    CPPUNIT_ASSERT_EQUAL(1, f.record->count(errc::shutting_down));
    CPPUNIT_ASSERT_EQUAL(1, f.record->sessions_ended);
  }

  void drain_with_no_connections_completes_run() {
    net_fixture f;
    f.start_server({net_fixture::listener(), net_fixture::listener("127.0.0.1")},
                   net_fixture::limits());
    f.run([&]() -> awaitable<void> {
      CPPUNIT_ASSERT(f.endpoint(0, 0).port() != f.endpoint(0, 1).port());
      CPPUNIT_ASSERT(co_await f.stop_server(0, clock::now() + 30s, 10s));
    });
  }

  void two_servers_on_different_ips_same_port() {
    net_fixture f;
    std::unique_ptr<hamail::net::server> first;
    std::unique_ptr<hamail::net::server> second;
    std::uint16_t port = 0;
    // The kernel picks a port free on 127.0.0.1; some other program might hold
    // it on 127.0.0.2, so try a few ports before calling it a failure.
    for (int attempt = 0; attempt < 5 && !second; ++attempt) {
      first = f.make_server({net_fixture::listener("127.0.0.1", 0)}, net_fixture::limits());
      auto bound = first->listen();
      CPPUNIT_ASSERT_MESSAGE(bound ? "" : bound.err().describe(), bound.has_value());
      port = first->bound_endpoints().at(0).port();
      CPPUNIT_ASSERT(port != 0);
      // Another store's service IP on the same port.
      second = f.make_server({net_fixture::listener("127.0.0.2", port)}, net_fixture::limits());
      auto r = second->listen();
      if (!r) {
        CPPUNIT_ASSERT_MESSAGE(r.err().describe(),
                               r.err().detail.find("in use") != std::string::npos);
        second.reset();
      }
    }
    CPPUNIT_ASSERT_MESSAGE("127.0.0.2 could not bind the port of 127.0.0.1", second != nullptr);
    CPPUNIT_ASSERT_EQUAL(port, second->bound_endpoints().at(0).port());
    f.run_server(std::move(first));
    f.run_server(std::move(second));

    // The same address and port again: refused, saying where and why.
    auto third = f.make_server({net_fixture::listener("127.0.0.1", port)}, net_fixture::limits());
    auto clash = third->listen();
    CPPUNIT_ASSERT(!clash.has_value());
    const std::string where = "127.0.0.1:" + std::to_string(port);
    CPPUNIT_ASSERT_MESSAGE(clash.err().detail, clash.err().detail.find(where) != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(clash.err().detail,
                           clash.err().detail.find("bind") != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(clash.err().detail,
                           clash.err().detail.find("in use") != std::string::npos);
    third.reset();

    f.run([&]() -> awaitable<void> {
      line_client a(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await a.read_line());
      line_client b(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await b.connect(tcp::endpoint(asio::ip::make_address("127.0.0.2"), port)));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await b.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server(0));
      CPPUNIT_ASSERT(co_await f.stop_server(1));
    });
    CPPUNIT_ASSERT_EQUAL(2, f.record->sessions_started);
  }

  void ipv6_wildcard_listener_leaves_ipv4_port_free() {
    net_fixture f;
    auto v6 = f.make_server({net_fixture::listener("::", 0)}, net_fixture::limits());
    auto r = v6->listen();
    if (!r && r.err().detail.find("Address family not supported") != std::string::npos) {
      std::cerr << " [skipped: no IPv6 in this environment] ";
      return;
    }
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
    const std::uint16_t port = v6->bound_endpoints().at(0).port();
    // Without IPV6_V6ONLY "::" would also hold 0.0.0.0 on this port.
    auto v4 = f.make_server({net_fixture::listener("0.0.0.0", port)}, net_fixture::limits());
    auto r4 = v4->listen();
    CPPUNIT_ASSERT_MESSAGE(r4 ? "" : r4.err().describe(), r4.has_value());
    f.run_server(std::move(v6));
    f.run_server(std::move(v4));
    f.run([&]() -> awaitable<void> {
      line_client a(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await a.connect(tcp::endpoint(asio::ip::make_address("::1"), port)));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await a.read_line());
      line_client b(f.io.get_executor());
      CPPUNIT_ASSERT(!co_await b.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)));
      CPPUNIT_ASSERT_EQUAL(std::string("+OK ready"), co_await b.read_line());
      CPPUNIT_ASSERT(co_await f.stop_server(0));
      CPPUNIT_ASSERT(co_await f.stop_server(1));
    });
    CPPUNIT_ASSERT_EQUAL(2, f.record->sessions_started);
  }

  void unknown_protocol_or_bad_address_is_config_error() {
    net_fixture f;
    auto l = net_fixture::listener();
    l.protocol = "gopher";
    auto a = f.make_server({l}, net_fixture::limits());
    auto r = a->listen();
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT(r.err().code == errc::config_error);
    CPPUNIT_ASSERT_MESSAGE(r.err().detail, r.err().detail.find("gopher") != std::string::npos);

    auto b = f.make_server({net_fixture::listener("mail.example.org")}, net_fixture::limits());
    r = b->listen();
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT(r.err().code == errc::config_error);

    auto c = f.make_server({net_fixture::listener("127.0.0.1", 0, tls_mode::implicit)},
                           net_fixture::limits());
    r = c->listen();
    CPPUNIT_ASSERT_MESSAGE("TLS listener without a context store must not start", !r.has_value());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(server_test);

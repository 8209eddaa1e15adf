#pragma once
// Test-only helpers shared by the net unit tests (not part of the library):
// a line protocol run by the server, a line client over plain or TLS, and a
// fixture that runs a test body as a coroutine with a watchdog.

#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "hamail/net/connection.hpp"
#include "hamail/net/server.hpp"
#include "hamail/test/temp_dir.hpp"
#include "hamail/test/test_ca.hpp"
#include "hamail/tls/context.hpp"
#include "hamail/tls/context_store.hpp"

namespace hamail::net::testing {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using asio::experimental::awaitable_operators::operator||;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

inline constexpr auto use_tuple = asio::as_tuple(use_awaitable);

/// Sleeps on the current executor.
inline awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

/// Polls `condition` every 10 ms; false if it did not hold within `limit`.
inline awaitable<bool> wait_until(std::function<bool()> condition,
                                  std::chrono::milliseconds limit = 10s) {
  const auto until = clock::now() + limit;
  while (!condition()) {
    if (clock::now() >= until) co_return false;
    co_await sleep_for(10ms);
  }
  co_return true;
}

/// What the line protocol's sessions did, for assertions.
struct protocol_record {
  std::vector<std::string> executed;  ///< every command line acted on, in order
  std::vector<errc> read_errors;      ///< errors sessions' reads returned
  int sessions_started = 0;
  int sessions_ended = 0;

  bool executed_command(const std::string& line) const {
    return std::find(executed.begin(), executed.end(), line) != executed.end();
  }
  int count(errc code) const {
    return static_cast<int>(std::count(read_errors.begin(), read_errors.end(), code));
  }
};

/// A tiny line protocol: greeting "+OK ready"; "ECHO x" -> "x"; "STARTTLS"
/// upgrades; "TLS?" -> "<protocol> <cipher>" or "plain"; "BODY" reads lines
/// in-command until "." and answers "+OK got N lines"; "QUIT" -> "+OK bye".
/// Idle timeout -> "-ERR idle timeout", drain -> "-ERR shutting down".
class line_protocol final : public protocol {
 public:
  explicit line_protocol(std::shared_ptr<protocol_record> record) : record_(std::move(record)) {}

  std::string busy_reply() const override { return "-ERR busy\r\n"; }
  std::string shutdown_reply() const override { return "-ERR forced shutdown\r\n"; }

  awaitable<void> run(connection& conn) override {
    auto record = record_;
    ++record->sessions_started;
    co_await session(conn, *record);
    ++record->sessions_ended;
  }

 private:
  /// Fills `buffer` until it holds a full line; false (after any goodbye) when the session must
  /// end.
  static awaitable<bool> fill_line(connection& conn, protocol_record& record, std::string& buffer,
                                   read_mode mode) {
    char chunk[4096];
    while (buffer.find("\r\n") == std::string::npos) {
      auto r = co_await conn.read_some(asio::buffer(chunk), mode);
      if (!r) {
        record.read_errors.push_back(r.err().code);
        if (r.err().code == errc::timed_out) (void)co_await conn.write("-ERR idle timeout\r\n");
        if (r.err().code == errc::shutting_down)
          (void)co_await conn.write("-ERR shutting down\r\n");
        co_return false;
      }
      buffer.append(chunk, *r);
    }
    co_return true;
  }

  static std::string take_line(std::string& buffer) {
    const auto end = buffer.find("\r\n");
    std::string line = buffer.substr(0, end);
    buffer.erase(0, end + 2);
    return line;
  }

  static awaitable<void> session(connection& conn, protocol_record& record) {
    if (!co_await conn.write("+OK ready\r\n")) co_return;
    std::string buffer;
    for (;;) {
      if (!co_await fill_line(conn, record, buffer, read_mode::idle)) co_return;
      const std::string line = take_line(buffer);
      record.executed.push_back(line);
      if (line == "QUIT") {
        (void)co_await conn.write("+OK bye\r\n");
        co_return;
      }
      if (line.rfind("ECHO ", 0) == 0) {
        if (!co_await conn.write(line.substr(5) + "\r\n")) co_return;
      } else if (line == "STARTTLS") {
        if (!co_await conn.write("+OK begin TLS\r\n")) co_return;
        // Whatever the client pipelined after STARTTLS arrived in plaintext and
        // must not be taken as sent over TLS (CVE-2011-0411).
        buffer.clear();
        if (!co_await conn.start_tls(conn.tls_context())) co_return;
      } else if (line == "WHO") {
        // Who the connection says the client is (after a PROXY header: the relayed client).
        std::string answer = conn.remote_address() + ":" + std::to_string(conn.remote_port());
        if (conn.info().balancer) answer += " via " + conn.info().balancer->address().to_string();
        if (!co_await conn.write(answer + "\r\n")) co_return;
      } else if (line == "TLS?") {
        const std::string answer =
            conn.is_tls() ? conn.tls_protocol() + " " + conn.tls_cipher() : "plain";
        if (!co_await conn.write(answer + "\r\n")) co_return;
      } else if (line == "BODY") {
        int lines = 0;
        for (;;) {
          if (!co_await fill_line(conn, record, buffer, read_mode::in_command)) co_return;
          if (take_line(buffer) == ".") break;
          ++lines;
        }
        if (!co_await conn.write("+OK got " + std::to_string(lines) + " lines\r\n")) co_return;
      } else {
        if (!co_await conn.write("-ERR unknown command\r\n")) co_return;
      }
    }
  }

  std::shared_ptr<protocol_record> record_;
};

/// A line client for tests, plain or TLS. Read results: the line without CRLF,
/// "<EOF>" at end of stream, "<TIMEOUT>" when nothing came in time, "<ERROR ...>".
class line_client {
 public:
  explicit line_client(asio::any_io_executor ex) : socket_(ex) {}
  ~line_client() { close(); }

  /// Connects from `source` (any when empty); returns the error, if any.
  awaitable<boost::system::error_code> connect(tcp::endpoint server,
                                               const std::string& source = {}) {
    boost::system::error_code ec;
    socket_.open(server.protocol(), ec);
    if (ec) co_return ec;
    if (!source.empty()) {
      socket_.bind(tcp::endpoint(asio::ip::make_address(source), 0), ec);
      if (ec) co_return ec;
    }
    auto [cec] = co_await socket_.async_connect(server, use_tuple);
    co_return cec;
  }

  /// Runs the client TLS handshake on the connected socket, checking `host`.
  awaitable<boost::system::error_code> handshake(ssl::context& ctx,
                                                 const std::string& host = "localhost") {
    tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket_), ctx);
    auto prepared = tls::prepare_client(tls_->native_handle(), host);
    CPPUNIT_ASSERT(prepared.has_value());
    asio::steady_timer timer(tls_->get_executor(), 10s);
    auto outcome = co_await (tls_->async_handshake(ssl::stream_base::client, use_tuple) ||
                             timer.async_wait(use_tuple));
    if (outcome.index() == 1) co_return asio::error::timed_out;
    auto [ec] = std::get<0>(outcome);
    co_return ec;
  }

  /// Writes all of `text`.
  awaitable<void> write(std::string_view text) {
    boost::system::error_code ec;
    if (tls_) {
      std::tie(ec, std::ignore) = co_await asio::async_write(*tls_, asio::buffer(text), use_tuple);
    } else {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(socket_, asio::buffer(text), use_tuple);
    }
    CPPUNIT_ASSERT_MESSAGE("client write failed: " + ec.message(), !ec);
  }

  /// The next line, or "<EOF>", "<TIMEOUT>", "<ERROR ...>".
  awaitable<std::string> read_line(std::chrono::milliseconds limit = 10s) {
    const auto until = clock::now() + limit;
    for (;;) {
      const auto end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        co_return line;
      }
      if (eof_) co_return "<EOF>";
      auto now = clock::now();
      if (now >= until) co_return "<TIMEOUT>";
      auto r =
          co_await read_some(std::chrono::duration_cast<std::chrono::milliseconds>(until - now));
      if (!r.empty()) co_return r;
    }
  }

  /// Everything until end of stream ("<TIMEOUT>"/"<ERROR>" appended if it does not end in time).
  awaitable<std::string> read_to_eof(std::chrono::milliseconds limit = 10s) {
    const auto until = clock::now() + limit;
    while (!eof_) {
      auto now = clock::now();
      if (now >= until) co_return buffer_ + "<TIMEOUT>";
      auto r =
          co_await read_some(std::chrono::duration_cast<std::chrono::milliseconds>(until - now));
      if (!r.empty()) co_return buffer_ + r;
    }
    std::string all = std::move(buffer_);
    buffer_.clear();
    co_return all;
  }

  /// Bytes read and not yet returned as lines.
  const std::string& buffered() const noexcept { return buffer_; }
  /// Serial of the server's leaf certificate (TLS only).
  std::string peer_serial() {
    return tls_ ? tls::peer_certificate_serial(tls_->native_handle()) : "";
  }
  /// The plain socket (before a handshake).
  tcp::socket& socket() noexcept { return socket_; }

  void close() {
    boost::system::error_code ignored;
    if (tls_) tls_->next_layer().close(ignored);
    socket_.close(ignored);
  }

 private:
  /// One read into buffer_; returns a marker string on timeout or error, empty otherwise.
  awaitable<std::string> read_some(std::chrono::milliseconds limit) {
    char chunk[4096];
    asio::steady_timer timer(socket_.get_executor(), limit);
    boost::system::error_code ec;
    std::size_t n = 0;
    if (tls_) {
      auto outcome = co_await (tls_->async_read_some(asio::buffer(chunk), use_tuple) ||
                               timer.async_wait(use_tuple));
      if (outcome.index() == 1) co_return "<TIMEOUT>";
      std::tie(ec, n) = std::get<0>(outcome);
    } else {
      auto outcome = co_await (socket_.async_read_some(asio::buffer(chunk), use_tuple) ||
                               timer.async_wait(use_tuple));
      if (outcome.index() == 1) co_return "<TIMEOUT>";
      std::tie(ec, n) = std::get<0>(outcome);
    }
    buffer_.append(chunk, n);
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
        ec == asio::error::connection_reset) {
      eof_ = true;
    } else if (ec) {
      co_return "<ERROR " + ec.message() + ">";
    }
    co_return std::string();
  }

  tcp::socket socket_;
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
  std::string buffer_;
  bool eof_ = false;
};

/// A test CA, a context store over its server certificate and a client
/// context trusting it.
struct tls_fixture {
  tls_fixture() : ca(test::test_ca::make(dir.path())) {
    tls_settings s;
    s.cert_file = ca.server_cert.string();
    s.key_file = ca.server_key.string();
    s.chain_file = ca.chain.string();
    auto opened = tls::context_store::open(s);
    CPPUNIT_ASSERT_MESSAGE(opened ? "" : opened.err().describe(), opened.has_value());
    store = std::move(*opened);
    auto c = tls::make_client_context(ca.ca_cert.string(), true);
    CPPUNIT_ASSERT(c.has_value());
    client = *c;
  }

  test::temp_dir dir;
  test::test_ca ca;
  std::unique_ptr<tls::context_store> store;
  std::shared_ptr<ssl::context> client;
};

/// One io_context, the servers a test starts, and a watchdog. run() drives a
/// test body to completion; when the body ends (pass or fail) every server is
/// drained so run() returns.
class net_fixture {
 public:
  net_fixture() : record(std::make_shared<protocol_record>()) {}

  /// A listener for the line protocol.
  static listener_settings listener(const std::string& address = "127.0.0.1",
                                    std::uint16_t port = 0, tls_mode mode = tls_mode::none) {
    listener_settings l;
    l.name = "test";
    l.protocol = "line";
    l.address = address;
    l.port = port;
    l.tls = mode;
    return l;
  }

  /// Test-sized limits: generous unless a test is about one of them.
  static limits_settings limits() {
    limits_settings l;
    l.max_connections = 100;
    l.max_connections_per_ip = 100;
    l.idle_timeout = 60s;
    l.drain_timeout = 30s;
    return l;
  }

  static server_options options() {
    server_options o;
    o.write_timeout = 10s;
    o.handshake_timeout = 10s;
    o.goodbye_timeout = 2s;
    return o;
  }

  /// A server for the line protocol; nothing bound yet.
  std::unique_ptr<server> make_server(std::vector<listener_settings> listeners, limits_settings lim,
                                      tls::context_store* store = nullptr,
                                      server_options opts = options()) {
    protocol_factories factories;
    auto rec = record;
    factories["line"] = [rec](const listener_settings&) {
      return std::make_shared<line_protocol>(rec);
    };
    return std::make_unique<server>(io, std::move(listeners), lim, store, std::move(factories),
                                    opts);
  }

  /// Makes, binds and runs a server; fails the test when it cannot bind.
  server& start_server(std::vector<listener_settings> listeners, limits_settings lim,
                       tls::context_store* store = nullptr, server_options opts = options()) {
    auto srv = make_server(std::move(listeners), lim, store, opts);
    auto r = srv->listen();
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
    return run_server(std::move(srv));
  }

  /// Runs a server that is already listening.
  server& run_server(std::unique_ptr<server> srv) {
    servers_.push_back(std::move(srv));
    auto done = std::make_shared<bool>(false);
    done_.push_back(done);
    asio::co_spawn(io, servers_.back()->run(), [this, done](std::exception_ptr e) {
      *done = true;
      if (e && !failure_) failure_ = e;
      maybe_finish();
    });
    return *servers_.back();
  }

  /// True once the i-th started server's run() completed.
  bool server_finished(std::size_t i = 0) const { return *done_.at(i); }

  /// Drains server `i` at `deadline` and waits (up to `limit`) for run() to complete.
  awaitable<bool> stop_server(std::size_t i = 0, clock::time_point deadline = clock::now() + 5s,
                              std::chrono::milliseconds limit = 20s) {
    servers_.at(i)->drain(deadline);
    // GCC 12 destroys a lambda temporary inside a co_await expression twice;
    // with a shared_ptr capture that frees the flag early. Capture a raw pointer
    // (the fixture keeps the flag alive) so the closure is trivially destructible.
    const bool* done = done_.at(i).get();
    co_return co_await wait_until([done] { return *done; }, limit);
  }

  /// The endpoint of the i-th started server's first listener.
  tcp::endpoint endpoint(std::size_t i = 0, std::size_t listener = 0) const {
    return servers_.at(i)->bound_endpoints().at(listener);
  }

  /// Registers something to run when the test body ends, pass or fail (stop signal handlers).
  void on_body_end(std::function<void()> fn) { cleanups_.push_back(std::move(fn)); }

  /// Runs `body` and everything it started; fails the test after `limit`.
  void run(std::function<awaitable<void>()> body, std::chrono::seconds limit = 60s) {
    asio::steady_timer watchdog(io, limit);
    watchdog_ = &watchdog;
    bool timed_out = false;
    watchdog.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        timed_out = true;
        io.stop();
      }
    });
    asio::co_spawn(io, body(), [this](std::exception_ptr e) {
      body_done_ = true;
      if (e) failure_ = e;
      // Pass or fail, nothing may keep running: drain whatever is left now.
      for (auto& fn : cleanups_) fn();
      for (auto& s : servers_) s->drain(clock::now());
      maybe_finish();
    });
    io.run();
    watchdog_ = nullptr;
    if (failure_) std::rethrow_exception(failure_);
    std::size_t finished = 0;
    for (auto& d : done_) finished += *d ? 1 : 0;
    CPPUNIT_ASSERT_MESSAGE("test did not finish within the watchdog limit: body " +
                               std::string(body_done_ ? "ended" : "still running") + ", " +
                               std::to_string(finished) + "/" + std::to_string(done_.size()) +
                               " servers finished",
                           !timed_out);
  }

  asio::io_context io;
  std::shared_ptr<protocol_record> record;

 private:
  void maybe_finish() {
    if (!body_done_ || watchdog_ == nullptr) return;
    for (auto& d : done_) {
      if (!*d) return;
    }
    watchdog_->cancel();
  }

  std::vector<std::unique_ptr<server>> servers_;
  std::vector<std::function<void()>> cleanups_;
  std::vector<std::shared_ptr<bool>> done_;
  asio::steady_timer* watchdog_ = nullptr;
  std::exception_ptr failure_;
  bool body_done_ = false;
};

}  // namespace hamail::net::testing

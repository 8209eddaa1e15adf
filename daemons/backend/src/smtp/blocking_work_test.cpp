// What must never wait on the event loop thread: message file writes and
// password hashing. Sessions run over in-memory streams against a store whose
// writes, and a password check whose hashing, can be held at a gate; another
// session must be served while one is held. Deterministic: nothing here waits
// for time to pass except the gate's own bound, which only a broken build hits.

#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/auth/password_checker.hpp"
#include "hamail/backend/smtp_service.hpp"
#include "hamail/core/base64.hpp"
#include "hamail/directory/memory_directory.hpp"
#include "hamail/directory/password.hpp"
#include "hamail/store/memory_store.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using hamail::result;
using hamail::auth::password_checker;
using hamail::backend::smtp_context;
using hamail::net::memory_stream;
using hamail::smtpd::flavour;
namespace store = hamail::store;
namespace directory = hamail::directory;

namespace {

/// Holds whoever passes it until released; gives up (and says so) after 10 s,
/// which happens only when the holder blocks the thread that would release it.
class gate {
 public:
  void pass() {
    ++entered_;
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, 10s, [this] { return open_; })) timed_out_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  int entered() const { return entered_.load(); }
  bool timed_out() const {
    std::lock_guard lock(mutex_);
    return timed_out_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<int> entered_{0};
  bool open_ = false;
  bool timed_out_ = false;
};

/// A message sink that waits at a gate before its first write.
class gated_sink final : public store::detail::message_sink {
 public:
  gated_sink(store::incoming_message inner, gate* g) : inner_(std::move(inner)), gate_(g) {}
  result<void> write(std::span<const char> bytes) override {
    if (gate_ != nullptr) std::exchange(gate_, nullptr)->pass();
    return inner_.write(bytes);
  }
  std::uint64_t size() const noexcept override { return inner_.size(); }
  result<std::shared_ptr<store::detail::sealed_body>> finish(store::internal_date date) override {
    auto sealed = inner_.finish(date);
    if (!sealed) return std::move(sealed).err();
    return sealed->body();
  }

 private:
  store::incoming_message inner_;
  gate* gate_;
};

/// A memory_store whose next message waits at a gate on its first write.
class gated_store final : public store::mail_store {
 public:
  void hold_next_message(gate* g) { next_ = g; }
  store::memory_store& inner() { return inner_; }

  result<store::incoming_message> begin_delivery() override {
    auto m = inner_.begin_delivery();
    if (!m) return m;
    return store::incoming_message(
        std::make_unique<gated_sink>(std::move(*m), next_.exchange(nullptr)));
  }
  std::vector<result<store::delivered>> deliver(
      const store::sealed_message& message,
      std::span<const store::delivery_target> targets) override {
    return inner_.deliver(message, targets);
  }
  result<void> create_mailbox(std::string_view a, std::string_view n) override {
    return inner_.create_mailbox(a, n);
  }
  result<void> delete_mailbox(std::string_view a, std::string_view n) override {
    return inner_.delete_mailbox(a, n);
  }
  result<void> rename_mailbox(std::string_view a, std::string_view f, std::string_view t) override {
    return inner_.rename_mailbox(a, f, t);
  }
  result<std::vector<store::mailbox_list_entry>> list_mailboxes(std::string_view a) override {
    return inner_.list_mailboxes(a);
  }
  result<store::mailbox_status> status(std::string_view a, std::string_view n) override {
    return inner_.status(a, n);
  }
  result<std::shared_ptr<store::mailbox>> open_mailbox(std::string_view a,
                                                       std::string_view n) override {
    return inner_.open_mailbox(a, n);
  }
  result<std::optional<store::quota_usage>> quota_usage(std::string_view a) override {
    return inner_.quota_usage(a);
  }

 private:
  store::memory_store inner_;
  std::atomic<gate*> next_{nullptr};
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

/// The client end of one session.
class client {
 public:
  explicit client(std::unique_ptr<memory_stream> s) : s_(std::move(s)) {}

  asio::awaitable<void> send(std::string text) {
    auto r = co_await s_->async_write(asio::buffer(text));
    CPPUNIT_ASSERT(r.has_value());
  }
  /// The last line of the next whole reply ("250 2.0.0 ..."), or "<EOF>".
  asio::awaitable<std::string> reply() {
    for (;;) {
      auto end = buf_.find("\r\n");
      while (end != std::string::npos) {
        std::string line = buf_.substr(0, end);
        buf_.erase(0, end + 2);
        if (line.size() < 4 || line[3] != '-') co_return line;
        end = buf_.find("\r\n");
      }
      char chunk[4096];
      auto r = co_await s_->async_read_some(asio::buffer(chunk));
      if (!r) co_return "<EOF>";
      buf_.append(chunk, *r);
    }
  }
  /// Sends `command` and returns the last line of its reply.
  asio::awaitable<std::string> command(std::string command) {
    co_await send(std::move(command));
    co_return co_await reply();
  }
  /// True when a reply is waiting unread.
  bool has_reply() const { return !buf_.empty() || s_->available() > 0; }

 private:
  std::unique_ptr<memory_stream> s_;
  std::string buf_;
};

asio::awaitable<void> run_session(smtp_context* ctx, flavour f, hamail::net::connection* conn) {
  const auto svc = hamail::backend::smtp_services(*ctx);
  co_await hamail::smtpd::run_session(svc, hamail::backend::smtp_handlers(*ctx), f, *conn);
  conn->close();
}

std::string plain(std::string_view login, std::string_view password) {
  std::string msg;
  msg += '\0';
  msg += login;
  msg += '\0';
  msg += password;
  return hamail::base64_encode(msg);
}

/// One backend's shared state, sessions over in-memory streams, and a loop.
struct fixture {
  explicit fixture(password_checker::limits hashing = {}, password_checker::verify_fn hook = {})
      : passwords(hashing, std::move(hook)),
        throttle(directory::login_throttle::limits{.first_delay = 0ms, .max_account_delay = 0ms}),
        ctx{cfg, store, dir, blocking, throttle, passwords} {
    cfg.store.name = "store-a";
    cfg.store.hostname = "mx.test";
    cfg.smtp.auth_without_tls = true;
    directory::account alice;
    alice.id = "alice";
    alice.login = "alice@example.org";
    alice.primary_address = "alice@example.org";
    alice.owning_store = "store-a";
    alice.password_hash = *directory::hash_password(directory::password_scheme::ssha512, "secret");
    CPPUNIT_ASSERT(dir.put(alice).has_value());
  }
  ~fixture() {
    blocking.join();
    passwords.join();
  }

  /// Starts a session; the returned client talks to it.
  std::unique_ptr<client> connect(flavour f = flavour::smtp) {
    auto [near, far] = memory_stream::make_pair(io.get_executor());
    hamail::net::connection_info info;
    info.remote = asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 40000);
    info.listener = "test";
    info.protocol = "smtp";
    connections.push_back(
        std::make_unique<hamail::net::connection>(std::move(far), info, hamail::net::timeouts{}));
    asio::co_spawn(io, run_session(&ctx, f, connections.back().get()), asio::detached);
    return std::make_unique<client>(std::move(near));
  }

  /// Runs `body` on the loop; fails when it throws or does not end within 60 s.
  void run(std::function<asio::awaitable<void>()> body) {
    std::exception_ptr failure;
    bool done = false;
    asio::co_spawn(io, body(), [&](std::exception_ptr e) {
      failure = e;
      done = true;
      for (auto& c : connections) c->close();
    });
    io.run_for(60s);
    if (failure) std::rethrow_exception(failure);
    CPPUNIT_ASSERT_MESSAGE("test body did not finish", done);
  }

  asio::io_context io;
  asio::thread_pool blocking{2};
  hamail::backend::backend_config cfg;
  directory::memory_directory dir;
  gated_store store;
  password_checker passwords;
  directory::login_throttle throttle;
  smtp_context ctx;
  std::vector<std::unique_ptr<hamail::net::connection>> connections;
};

/// Waits (on the loop) until `condition` holds; false after 10 s.
asio::awaitable<bool> eventually(std::function<bool()> condition) {
  for (int i = 0; i < 1000 && !condition(); ++i) co_await sleep_for(10ms);
  co_return condition();
}

std::uint32_t inbox_count(fixture& f, const std::string& account) {
  auto st = f.store.inner().status(account, "INBOX");
  return st ? st->messages : 0;
}

}  // namespace

class blocking_work_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(blocking_work_test);
  CPPUNIT_TEST(slow_body_write_does_not_stall_other_sessions);
  CPPUNIT_TEST(hashing_has_its_own_bounded_pool);
  CPPUNIT_TEST(unknown_login_costs_a_hash_of_the_real_cost);
  CPPUNIT_TEST_SUITE_END();

 public:
  void slow_body_write_does_not_stall_other_sessions() {
    fixture f;
    gate disk;
    f.store.hold_next_message(&disk);
    f.run([&]() -> asio::awaitable<void> {
      auto a = f.connect();
      CPPUNIT_ASSERT_EQUAL(std::string("220"), (co_await a->reply()).substr(0, 3));
      CPPUNIT_ASSERT_EQUAL(std::string("250"), (co_await a->command("EHLO a\r\n")).substr(0, 3));
      CPPUNIT_ASSERT_EQUAL(std::string("250"),
                           (co_await a->command("MAIL FROM:<x@remote.test>\r\n")).substr(0, 3));
      CPPUNIT_ASSERT_EQUAL(std::string("250"),
                           (co_await a->command("RCPT TO:<alice@example.org>\r\n")).substr(0, 3));
      CPPUNIT_ASSERT_EQUAL(std::string("354"), (co_await a->command("DATA\r\n")).substr(0, 3));
      std::string body = "Subject: big\r\n\r\n";
      while (body.size() < 600 * 1024) body += std::string(998, 'b') + "\r\n";
      co_await a->send(body + ".\r\n");
      // A's first file write is now held on the I/O pool (or, before the fix, on the
      // loop thread itself, where nothing below could run until the gate gave up).
      CPPUNIT_ASSERT(co_await eventually([&] { return disk.entered() == 1; }));

      auto b = f.connect();
      CPPUNIT_ASSERT_EQUAL(std::string("220"), (co_await b->reply()).substr(0, 3));
      CPPUNIT_ASSERT_EQUAL(std::string("250"), (co_await b->command("EHLO b\r\n")).substr(0, 3));
      co_await b->command("MAIL FROM:<y@remote.test>\r\n");
      co_await b->command("RCPT TO:<alice@example.org>\r\n");
      co_await b->command("DATA\r\n");
      const std::string b_done = co_await b->command("Subject: small\r\n\r\nhi\r\n.\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(b_done, std::string("250"), b_done.substr(0, 3));
      CPPUNIT_ASSERT_MESSAGE("a body write blocked the event loop thread", !disk.timed_out());
      CPPUNIT_ASSERT_MESSAGE("A must still be waiting for its write", !a->has_reply());
      CPPUNIT_ASSERT_EQUAL(1u, inbox_count(f, "alice"));

      disk.release();
      const std::string a_done = co_await a->reply();
      CPPUNIT_ASSERT_EQUAL_MESSAGE(a_done, std::string("250"), a_done.substr(0, 3));
      CPPUNIT_ASSERT_EQUAL(2u, inbox_count(f, "alice"));
      auto mbox = f.store.inner().open_mailbox("alice", "INBOX");
      auto snap = (*mbox)->snapshot();
      CPPUNIT_ASSERT(snap->messages.back().size > 600 * 1024);
    });
  }

  void hashing_has_its_own_bounded_pool() {
    gate hashing;
    std::atomic<int> calls{0};
    auto hook = [&](std::string_view stored, std::string_view password) -> result<bool> {
      if (++calls == 1) hashing.pass();
      return directory::verify_password(stored, password);
    };
    fixture f({.threads = 1, .max_queued = 0}, hook);
    f.run([&]() -> asio::awaitable<void> {
      auto c = f.connect();
      co_await c->reply();
      co_await c->command("EHLO c\r\n");
      co_await c->send("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n");
      CPPUNIT_ASSERT(co_await eventually([&] { return hashing.entered() == 1; }));

      // The only hashing thread is taken and no queue is allowed: a temporary failure.
      auto d = f.connect();
      co_await d->reply();
      co_await d->command("EHLO d\r\n");
      const std::string busy =
          co_await d->command("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(busy, std::string("454 4.7.0"), busy.substr(0, 9));

      // Store I/O does not wait for hashing.
      auto e = f.connect();
      co_await e->reply();
      co_await e->command("EHLO e\r\n");
      co_await e->command("MAIL FROM:<y@remote.test>\r\n");
      co_await e->command("RCPT TO:<alice@example.org>\r\n");
      co_await e->command("DATA\r\n");
      const std::string delivered = co_await e->command("Subject: s\r\n\r\nhi\r\n.\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(delivered, std::string("250"), delivered.substr(0, 3));
      CPPUNIT_ASSERT(!c->has_reply());

      hashing.release();
      const std::string ok = co_await c->reply();
      CPPUNIT_ASSERT_EQUAL_MESSAGE(ok, std::string("235"), ok.substr(0, 3));
      CPPUNIT_ASSERT(!hashing.timed_out());
      // The place is free again.
      const std::string again =
          co_await d->command("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(again, std::string("235"), again.substr(0, 3));
    });
  }

  void unknown_login_costs_a_hash_of_the_real_cost() {
    std::mutex m;
    std::vector<std::string> checked;
    auto hook = [&](std::string_view stored, std::string_view password) -> result<bool> {
      {
        std::lock_guard lock(m);
        checked.emplace_back(stored);
      }
      return directory::verify_password(stored, password);
    };
    fixture f({}, hook);
    const std::string real =
        (*f.dir.lookup_login("alice@example.org"))->password_hash;  // {SSHA512}
    f.run([&]() -> asio::awaitable<void> {
      auto c = f.connect();
      co_await c->reply();
      co_await c->command("EHLO c\r\n");
      const std::string wrong =
          co_await c->command("AUTH PLAIN " + plain("alice@example.org", "nope") + "\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(wrong, std::string("535"), wrong.substr(0, 3));
      const std::string unknown =
          co_await c->command("AUTH PLAIN " + plain("nobody@example.org", "nope") + "\r\n");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(unknown, std::string("535"), unknown.substr(0, 3));
    });
    std::lock_guard lock(m);
    CPPUNIT_ASSERT_EQUAL_MESSAGE("one hash per login attempt, known or not", std::size_t{2},
                                 checked.size());
    CPPUNIT_ASSERT_EQUAL(real, checked[0]);
    CPPUNIT_ASSERT(checked[1] != real);
    CPPUNIT_ASSERT_EQUAL(directory::password_cost_class(real),
                         directory::password_cost_class(checked[1]));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(blocking_work_test);

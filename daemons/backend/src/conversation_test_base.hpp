#pragma once

// What the conversation tests of every hamail-backend protocol share: a
// backend's state (a real maildir store in a temporary directory, fsync off; an
// in-memory directory), sessions over in-memory streams, and a client that
// sends bytes and reads responses.

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/auth/password_checker.hpp"
#include "hamail/backend/account_gate.hpp"
#include "hamail/backend/config.hpp"
#include "hamail/directory/login_throttle.hpp"
#include "hamail/directory/memory_directory.hpp"
#include "hamail/directory/password.hpp"
#include "hamail/net/connection.hpp"
#include "hamail/store/maildir_store.hpp"

namespace hamail::backend::conversation_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// A temporary directory removed with its contents.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hamail-conv-XXXXXX").string();
    CPPUNIT_ASSERT(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// The client end of one session.
class client {
 public:
  client(asio::io_context& io, std::unique_ptr<net::memory_stream> s)
      : io_(io), s_(std::move(s)), in_(std::make_shared<input>()) {
    // The reader owns what it touches: it may resume after the client is gone.
    asio::co_spawn(io_, reader(s_, in_), asio::detached);
  }
  ~client() {
    if (s_) s_->close();
  }

  /// Sends raw bytes.
  void send(std::string_view bytes) {
    std::string copy(bytes);
    bool done = false;
    asio::co_spawn(
        io_,
        [this, copy, &done]() -> asio::awaitable<void> {
          auto r = co_await s_->async_write(asio::buffer(copy));
          CPPUNIT_ASSERT(r.has_value());
          done = true;
        },
        asio::detached);
    run_until([&] { return done; });
  }
  /// Runs the loop until `pred` holds (fails the test after 10 s).
  template <class P>
  void run_until(P pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred()) {
      CPPUNIT_ASSERT_MESSAGE("timed out; received so far: " + buf_,
                             std::chrono::steady_clock::now() < deadline);
      // The loop stops when it runs out of work (every session ended); new work
      // (the next connection) needs it restarted.
      if (io_.stopped()) io_.restart();
      io_.run_one_for(5ms);
    }
  }
  /// Reads up to and including the first line starting with `tag` + " "
  /// (a tagged response), or "* BYE" when `tag` is "*". Returns it all.
  std::string until_tagged(std::string_view tag) {
    const std::string prefix = std::string(tag) + " ";
    return through_line([&](std::string_view l) { return l.starts_with(prefix); });
  }
  /// Reads up to and including the first line equal to `last` (a POP3
  /// multi-line response ends with "."). Returns it all.
  std::string until_line(std::string_view last) {
    return through_line([&](std::string_view l) { return l == last; });
  }
  /// Reads up to and including the first line (without CRLF) `pred` accepts,
  /// or everything until the end of the stream. Returns it all.
  template <class P>
  std::string through_line(P pred) {
    std::size_t end = std::string::npos;
    run_until([&] {
      std::size_t pos = 0;
      while (pos < buf_.size()) {
        const auto nl = buf_.find("\r\n", pos);
        if (nl == std::string::npos) return eof_;
        if (pred(std::string_view(buf_).substr(pos, nl - pos))) {
          end = nl + 2;
          return true;
        }
        pos = nl + 2;
      }
      return eof_;
    });
    if (end == std::string::npos) end = buf_.size();
    std::string out = buf_.substr(0, end);
    buf_.erase(0, end);
    return out;
  }
  /// Reads one line (without CRLF).
  std::string line() {
    run_until([&] { return buf_.find("\r\n") != std::string::npos || eof_; });
    const auto nl = buf_.find("\r\n");
    if (nl == std::string::npos) return "<EOF>";
    std::string out = buf_.substr(0, nl);
    buf_.erase(0, nl + 2);
    return out;
  }
  /// Sends "<command>\r\n" (its tag is its first word) and returns every line up
  /// to its tagged response.
  std::string command(std::string_view command) {
    send(std::string(command) + "\r\n");
    return until_tagged(command.substr(0, command.find(' ')));
  }
  /// The tagged response line alone (last line of command()).
  std::string status(std::string_view cmd) {
    auto all = command(cmd);
    auto start = all.rfind("\r\n", all.size() - 3);
    return all.substr(start == std::string::npos ? 0 : start + 2,
                      all.size() - 2 - (start == std::string::npos ? 0 : start + 2));
  }
  /// Lets pending work run without waiting for anything.
  void settle() {
    for (int i = 0; i < 20; ++i) io_.run_one_for(2ms);
  }
  /// Everything received and not read yet.
  const std::string& pending() const { return buf_; }
  /// True once the server closed the connection.
  bool closed() const { return eof_; }

 private:
  /// What the reader has received.
  struct input {
    std::string buf;
    bool eof = false;
  };

  static asio::awaitable<void> reader(std::shared_ptr<net::memory_stream> s,
                                      std::shared_ptr<input> in) {
    char chunk[8192];
    for (;;) {
      auto r = co_await s->async_read_some(asio::buffer(chunk));
      if (!r) {
        in->eof = true;
        co_return;
      }
      in->buf.append(chunk, *r);
    }
  }

  asio::io_context& io_;
  std::shared_ptr<net::memory_stream> s_;
  std::shared_ptr<input> in_;
  std::string& buf_ = in_->buf;
  bool& eof_ = in_->eof;
};

/// One backend's shared state, without any protocol.
struct backend_fixture {
  backend_fixture()
      : passwords(auth::password_checker::limits{}),
        throttle(directory::login_throttle::limits{.first_delay = 0ms, .max_account_delay = 0ms}) {
    cfg.store.name = "store-a";
    cfg.store.hostname = "mail.test";
    store::maildir_options o;
    o.fsync = false;
    o.hostname = "mail.test";
    auto st = store::maildir_store::open(dir.path, o);
    CPPUNIT_ASSERT(st.has_value());
    mail = std::move(*st);
    add_account("alice", "alice@example.org", "secret");
    add_account("bob", "bob@example.org", "hunter2");
    account_gate::options g;
    g.fsync = false;
    auto opened = account_gate::open(dir.path, cfg.store.name, blocking, g);
    CPPUNIT_ASSERT(opened.has_value());
    gate = std::move(*opened);
  }
  ~backend_fixture() { stop(); }
  /// Ends every session and joins the pools; a derived fixture calls it in its
  /// destructor, before its protocol context goes away.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    clients.clear();
    for (int i = 0; i < 50; ++i) io.run_one_for(1ms);
    connections.clear();
    blocking.join();
    passwords.join();
  }

  void add_account(const std::string& id, const std::string& login, const std::string& pw) {
    directory::account a;
    a.id = id;
    a.login = login;
    a.primary_address = login;
    a.owning_store = "store-a";
    a.password_hash = *directory::hash_password(directory::password_scheme::ssha512, pw);
    CPPUNIT_ASSERT(accounts.put(a).has_value());
  }

  /// Starts `run` (a session of `protocol`) on a new in-memory connection from
  /// `remote` and returns its client, greeting read.
  client& start(std::string_view protocol,
                std::function<asio::awaitable<void>(net::connection&)> run,
                const std::string& remote = "127.0.0.1") {
    auto [near, far] = net::memory_stream::make_pair(io.get_executor());
    net::connection_info info;
    info.remote = asio::ip::tcp::endpoint(asio::ip::make_address(remote), 40000);
    info.listener = "test";
    info.protocol = std::string(protocol);
    connections.push_back(std::make_unique<net::connection>(std::move(far), info, net::timeouts{}));
    net::connection* conn = connections.back().get();
    asio::co_spawn(
        io,
        [run = std::move(run), conn]() -> asio::awaitable<void> {
          co_await run(*conn);
          conn->close();
        },
        asio::detached);
    clients.push_back(std::make_unique<client>(io, std::move(near)));
    greeting = clients.back()->line();
    return *clients.back();
  }
  /// Starts `a` on the loop; its result appears in the returned optional once it ends
  /// (the clients' reads and wait() run the loop).
  template <class T>
  std::shared_ptr<std::optional<T>> spawn(asio::awaitable<T> a) {
    auto out = std::make_shared<std::optional<T>>();
    asio::co_spawn(io, std::move(a), [out](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out->emplace(std::move(v));
    });
    return out;
  }
  /// Runs the loop until `pending` (from spawn()) has its result (fails after 10 s).
  template <class T>
  T wait(const std::shared_ptr<std::optional<T>>& pending) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pending->has_value()) {
      CPPUNIT_ASSERT_MESSAGE("timed out", std::chrono::steady_clock::now() < deadline);
      if (io.stopped()) io.restart();
      io.run_one_for(5ms);
    }
    return std::move(**pending);
  }

  /// Delivers a message into `mailbox` of `account` (as LMTP would).
  store::delivered deliver(std::string_view raw, std::string_view account = "alice",
                           std::string_view mailbox = "INBOX", store::message_flags flags = {}) {
    auto in = mail->begin_delivery();
    CPPUNIT_ASSERT(in.has_value());
    CPPUNIT_ASSERT(in->write(raw).has_value());
    auto sealed = in->finish(std::chrono::sys_seconds(std::chrono::seconds(1700000000)));
    CPPUNIT_ASSERT(sealed.has_value());
    store::delivery_target t;
    t.account = std::string(account);
    t.mailbox = std::string(mailbox);
    t.flags = std::move(flags);
    auto r = mail->deliver(*sealed, std::span(&t, 1));
    CPPUNIT_ASSERT(r.size() == 1 && r[0].has_value());
    return *r[0];
  }

  temp_dir dir;
  backend_config cfg;
  /// The fences (in dir/fences), passed to the sessions; declared before the loop so that it
  /// outlives every session frame the loop may still hold.
  std::unique_ptr<account_gate> gate;
  asio::io_context io;
  asio::thread_pool blocking{2};
  auth::password_checker passwords;
  directory::login_throttle throttle;
  directory::memory_directory accounts;
  std::unique_ptr<store::maildir_store> mail;
  std::vector<std::unique_ptr<net::connection>> connections;
  std::vector<std::unique_ptr<client>> clients;
  std::string greeting;

 private:
  bool stopped_ = false;
};

/// True when `text` contains `part`; for CPPUNIT_ASSERT_MESSAGE(text, has(text, part)).
inline bool has(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace hamail::backend::conversation_test

// The sync channel end to end on loopback: two stores (real maildir_stores in temporary
// directories), each with a sync listener over TLS, and an admin client. PULL copies
// accounts made through the store API; after flag changes, expunges, new messages and
// mailbox changes between passes, PULL ... FINAL installs a copy that the destination's
// store shows exactly as the source does (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, every
// message's UID, flags, keywords, date, size and modseq, \Recent, subscriptions), and whose
// files match the source's to the nanosecond of their mtimes. Incremental passes fetch only
// what changed. Then the refusals: no AUTH, wrong secret, address not allowed, path
// traversal, unknown accounts, an existing tree, PURGE without a moved fence, DISCARD of an
// owned account.

#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/backend/sync_service.hpp"
#include "hamail/directory/memory_directory.hpp"
#include "hamail/test/temp_dir.hpp"
#include "hamail/test/test_ca.hpp"
#include "hamail/tls/context.hpp"
#include "hamail/tls/context_store.hpp"
#include "imap/subscriptions.hpp"
#include "sync/sync_client.hpp"
#include "sync/sync_tree.hpp"

namespace hamail::backend {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sync::reply;

namespace {

const std::string secret = "0123456789abcdef-cluster-secret";

/// A fence_control kept in memory. Its methods are not coroutines (GCC 12 and by-value
/// coroutine parameters): each does its work at once and returns a ready awaitable.
class fake_fences final : public fence_control {
 public:
  asio::awaitable<result<void>> lock(std::string account, std::string to_store,
                                     std::chrono::seconds lease) override {
    auto& f = fences[account];
    if (f.kind == fence_state::kind_t::moved)
      return answer(error::permanent(errc::already_exists, "moved"));
    f = fence_state{fence_state::kind_t::locked, to_store,
                    std::chrono::system_clock::now() + lease};
    return answer(ok());
  }
  asio::awaitable<result<void>> mark_moved(std::string account, std::string to_store) override {
    fences[account] = fence_state{fence_state::kind_t::moved, to_store, {}};
    return answer(ok());
  }
  asio::awaitable<result<void>> unlock(std::string account) override {
    auto it = fences.find(account);
    if (it != fences.end() && it->second.kind == fence_state::kind_t::moved)
      return answer(error::permanent(errc::permission_denied, "moved"));
    if (it != fences.end()) fences.erase(it);
    return answer(ok());
  }
  asio::awaitable<result<void>> forget(std::string account) override {
    fences.erase(account);
    forgotten.push_back(account);
    return answer(ok());
  }
  fence_state current(std::string_view account) const override {
    auto it = fences.find(std::string(account));
    return it == fences.end() ? fence_state{} : it->second;
  }

  std::map<std::string, fence_state> fences;
  std::vector<std::string> forgotten;

 private:
  asio::awaitable<result<void>> answer(result<void> r) {
    pending_ = std::move(r);
    return ready();
  }
  asio::awaitable<result<void>> ready() { co_return pending_; }
  result<void> pending_;
};

/// What one command brought back.
struct transcript {
  std::vector<reply> untagged;
  reply last;
  std::string payload;  ///< GET's bytes
  bool closed = false;  ///< the connection ended instead of a final reply

  std::string describe() const {
    std::string s = last.kind == reply::kind_t::ok   ? "OK "
                    : last.kind == reply::kind_t::no ? "NO " + last.code + " "
                                                     : "BAD ";
    return closed ? "(closed)" : s + last.text;
  }
  bool is_ok() const { return !closed && last.kind == reply::kind_t::ok; }
  bool is_no(std::string_view code) const {
    return !closed && last.kind == reply::kind_t::no && last.code == code;
  }
  bool is_bad() const { return !closed && last.kind == reply::kind_t::bad; }
  /// The four numbers of PULL's OK.
  std::vector<std::uint64_t> counts() const {
    std::vector<std::uint64_t> out;
    std::string_view t = last.text;
    while (!t.empty()) {
      const auto sp = t.find(' ');
      const auto w = t.substr(0, sp);
      std::uint64_t v = 0;
      std::from_chars(w.data(), w.data() + w.size(), v);
      out.push_back(v);
      t = sp == std::string_view::npos ? std::string_view{} : t.substr(sp + 1);
    }
    return out;
  }
};

/// The line converse() sends (see there).
std::string pending_line;

/// Sends pending_line and reads every reply up to the final one.
asio::awaitable<transcript> converse_pending(sync::sync_client& c) {
  transcript t;
  auto s = co_await c.send(pending_line);
  if (!s) {
    t.closed = true;
    co_return t;
  }
  for (;;) {
    auto r = co_await c.read_reply();
    if (!r) {
      t.closed = true;
      co_return t;
    }
    if (r->kind == reply::kind_t::data) {
      std::uint64_t left = r->size;
      while (left > 0) {
        auto chunk = co_await c.read_payload(static_cast<std::size_t>(left));
        CPPUNIT_ASSERT(chunk.has_value());
        left -= chunk->size();
        t.payload += *chunk;
      }
      continue;
    }
    if (r->kind == reply::kind_t::ok || r->kind == reply::kind_t::no ||
        r->kind == reply::kind_t::bad) {
      t.last = std::move(*r);
      co_return t;
    }
    t.untagged.push_back(std::move(*r));
  }
}

/// Sends `line` and reads every reply up to the final one. Not a coroutine: GCC 12 loses
/// by-value coroutine parameters, so the line is copied first.
asio::awaitable<transcript> converse(sync::sync_client& c, std::string_view line) {
  pending_line.assign(line);
  return converse_pending(c);
}

store::internal_date date(int i) {
  return store::internal_date(std::chrono::seconds(1'600'000'000 + i * 3600));
}

/// One store: its data, its configuration and its sync listener.
struct store_node {
  std::string name;
  test::temp_dir dir;
  backend_config cfg;
  std::unique_ptr<store::maildir_store> mail;
  std::unique_ptr<sync_context> ctx;
  std::unique_ptr<net::server> srv;
  bool done = false;

  fs::path account_root(std::string_view account) const {
    return *store::maildir_store::account_dir(dir.path(), account);
  }
  std::uint16_t port() const { return srv->bound_endpoints().at(0).port(); }
};

}  // namespace

class sync_loopback_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(sync_loopback_test);
  CPPUNIT_TEST(pull_passes_then_final_copy_is_identical);
  CPPUNIT_TEST(rate_limited_pull_reports_progress);
  CPPUNIT_TEST(unauthenticated_and_bad_input_are_refused);
  CPPUNIT_TEST(purge_needs_a_moved_fence);
  CPPUNIT_TEST(discard_removes_only_unowned_copies);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    ca_dir = std::make_unique<test::temp_dir>();
    ca = std::make_unique<test::test_ca>(test::test_ca::make(ca_dir->path()));
    tls_settings ts;
    ts.cert_file = ca->server_cert.string();
    ts.key_file = ca->server_key.string();
    ts.chain_file = ca->chain.string();
    auto opened = tls::context_store::open(ts);
    CPPUNIT_ASSERT_MESSAGE(opened ? "" : opened.err().describe(), opened.has_value());
    tls_store = std::move(*opened);
    auto c = tls::make_client_context(ca->ca_cert.string(), true);
    CPPUNIT_ASSERT(c.has_value());
    client_tls = *c;
    io = std::make_unique<asio::io_context>(1);
    blocking = std::make_unique<asio::thread_pool>(2);
    for (const char* id : {"alice", "bob", "carol"}) {
      directory::account acct;
      acct.id = id;
      acct.login = id;
      acct.primary_address = std::string(id) + "@example.org";
      acct.owning_store = "store-a";
      CPPUNIT_ASSERT(accounts.put(acct).has_value());
    }
    a = start("store-a", &fences_a);
    b = start("store-b", nullptr);
  }

  void tearDown() override {
    a.reset();
    b.reset();
    if (blocking) blocking->join();
    blocking.reset();
    io.reset();
    tls_store.reset();
    ca.reset();
    ca_dir.reset();
  }

  /// Copies alice over three passes; the last one installs.
  void pull_passes_then_final_copy_is_identical() { run(pull_scenario()); }
  void rate_limited_pull_reports_progress() { run(rate_scenario()); }
  void unauthenticated_and_bad_input_are_refused() { run(bad_input_scenario()); }
  void purge_needs_a_moved_fence() { run(purge_scenario()); }
  void discard_removes_only_unowned_copies() { run(discard_scenario()); }

 private:
  std::unique_ptr<store_node> start(const std::string& name, fence_control* fences) {
    auto n = std::make_unique<store_node>();
    n->name = name;
    n->cfg.store.name = name;
    n->cfg.store.data_dir = n->dir.path();
    n->cfg.store.fsync = false;
    n->cfg.sync.allowed_from = {"127.0.0.1"};
    n->cfg.sync.timeout = 10s;
    n->cfg.sync.verify_hostname = true;
    store::maildir_options o;
    o.fsync = false;
    o.hostname = name;
    auto st = store::maildir_store::open(n->dir.path(), o);
    CPPUNIT_ASSERT(st.has_value());
    n->mail = std::move(*st);
    n->ctx = std::make_unique<sync_context>(
        sync_context{n->cfg, *n->mail, accounts, *blocking, fences, secret, client_tls});
    listener_settings l;
    l.name = "sync";
    l.protocol = "sync";
    l.address = "127.0.0.1";
    l.port = 0;
    l.tls = tls_mode::implicit;
    limits_settings lim;
    lim.max_connections = 50;
    lim.max_connections_per_ip = 50;
    lim.drain_timeout = 5s;
    net::server_options so;
    so.write_timeout = 10s;
    so.handshake_timeout = 10s;
    n->srv = std::make_unique<net::server>(*io, std::vector<listener_settings>{l}, lim,
                                           tls_store.get(), sync_protocols(*n->ctx), so);
    auto r = n->srv->listen();
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
    store_node* raw = n.get();
    asio::co_spawn(*io, n->srv->run(), [raw](std::exception_ptr) { raw->done = true; });
    return n;
  }

  /// Runs `body` on the io_context with both servers; rethrows its failure.
  void run(asio::awaitable<void> body) {
    std::exception_ptr failure;
    bool finished = false;
    asio::steady_timer watchdog(*io, 120s);
    watchdog.async_wait([&](boost::system::error_code ec) {
      if (!ec) io->stop();
    });
    asio::co_spawn(*io, std::move(body), [&](std::exception_ptr e) {
      failure = e;
      finished = true;
      watchdog.cancel();
      a->srv->drain(std::chrono::steady_clock::now());
      b->srv->drain(std::chrono::steady_clock::now());
    });
    io->run();
    if (failure) std::rethrow_exception(failure);
    CPPUNIT_ASSERT_MESSAGE("the test body did not finish in time", finished);
  }

  asio::awaitable<std::unique_ptr<sync::sync_client>> connect(store_node& n, bool auth = true) {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await sync::sync_client::connect(ex, "127.0.0.1", n.port(), client_tls, true, 10s);
    CPPUNIT_ASSERT_MESSAGE(c ? "" : c.err().describe(), c.has_value());
    if (auth) {
      const std::string line = "AUTH " + secret;
      auto t = co_await converse(**c, line);
      CPPUNIT_ASSERT_MESSAGE(t.describe(), t.is_ok());
      CPPUNIT_ASSERT_EQUAL(n.name + " ready", t.last.text);
    }
    co_return std::move(*c);
  }

  /// Delivers one message into `mailbox` of `account` on `st`; returns its UID.
  store::imap_uid deliver(store::maildir_store& st, const std::string& account,
                          const std::string& mailbox, const std::string& body,
                          store::message_flags f, int day) {
    auto in = st.begin_delivery();
    CPPUNIT_ASSERT(in.has_value());
    CPPUNIT_ASSERT(in->write(body).has_value());
    auto sealed = in->finish(date(day));
    CPPUNIT_ASSERT(sealed.has_value());
    store::delivery_target t;
    t.account = account;
    t.mailbox = mailbox;
    t.flags = std::move(f);
    t.date = date(day);
    auto r = st.deliver(*sealed, std::span<const store::delivery_target>(&t, 1));
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), r.size());
    CPPUNIT_ASSERT_MESSAGE(r[0] ? "" : r[0].err().describe(), r[0].has_value());
    return r[0]->uid;
  }

  static std::string message(int i, std::size_t size = 200) {
    std::string m = "From: a@example.org\r\nSubject: message " + std::to_string(i) + "\r\n\r\n";
    while (m.size() < size) m += "line " + std::to_string(m.size()) + " of the body\r\n";
    return m;
  }

  static store::message_flags flags(std::uint8_t system, std::vector<std::string> keywords = {}) {
    store::message_flags f;
    f.system = system;
    f.keywords = std::move(keywords);
    return f;
  }

  std::shared_ptr<store::mailbox> box(store::maildir_store& st, std::string_view account,
                                      std::string_view name) {
    auto m = st.open_mailbox(account, name);
    CPPUNIT_ASSERT_MESSAGE(m ? "" : m.err().describe(), m.has_value());
    return *m;
  }

  std::vector<std::string> subscribed(store::maildir_store& st, const fs::path& data_dir,
                                      std::string_view account) {
    auto s = imap_session_detail::subscriptions::of(st, data_dir, account, false);
    CPPUNIT_ASSERT(s.has_value());
    auto n = s->names();
    CPPUNIT_ASSERT(n.has_value());
    return *n;
  }

  /// The two stores show `account` alike, mailbox by mailbox and message by message.
  void same_account(const std::string& account) {
    auto la = a->mail->list_mailboxes(account);
    auto lb = b->mail->list_mailboxes(account);
    CPPUNIT_ASSERT(la.has_value() && lb.has_value());
    std::vector<std::string> na, nb;
    for (const auto& e : *la) na.push_back(e.name);
    for (const auto& e : *lb) nb.push_back(e.name);
    CPPUNIT_ASSERT(na == nb);
    for (const auto& name : na) {
      auto sa = box(*a->mail, account, name)->snapshot();
      auto sb = box(*b->mail, account, name)->snapshot();
      CPPUNIT_ASSERT(sa.has_value() && sb.has_value());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, sa->uid_validity, sb->uid_validity);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, sa->uid_next, sb->uid_next);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, sa->highest_modseq, sb->highest_modseq);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, sa->messages.size(), sb->messages.size());
      for (std::size_t i = 0; i < sa->messages.size(); ++i) {
        const auto& ma = sa->messages[i];
        const auto& mb = sb->messages[i];
        const std::string what = name + " uid " + std::to_string(ma.uid);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(what, ma.uid, mb.uid);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(what, ma.modseq, mb.modseq);
        CPPUNIT_ASSERT_MESSAGE(what, ma.flags.same_as(mb.flags));
        CPPUNIT_ASSERT_MESSAGE(what, ma.date == mb.date);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(what, ma.size, mb.size);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(what, ma.wire_size, mb.wire_size);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(what, ma.recent, mb.recent);
      }
    }
    CPPUNIT_ASSERT(subscribed(*a->mail, a->dir.path(), account) ==
                   subscribed(*b->mail, b->dir.path(), account));
  }

  /// Files of the account on the source, as LIST shows them.
  std::vector<sync::tree_entry> source_tree(const std::string& account) {
    auto t = sync::list_tree(a->account_root(account));
    CPPUNIT_ASSERT(t.has_value());
    return *t;
  }

  static std::size_t file_count(const std::vector<sync::tree_entry>& t) {
    return static_cast<std::size_t>(
        std::count_if(t.begin(), t.end(), [](const sync::tree_entry& e) { return !e.dir; }));
  }

  asio::awaitable<void> pull_scenario() {
    auto& src = *a->mail;
    // INBOX: an unflagged (recent) message, a \Seen one, one with a keyword, one large.
    const auto m1 = deliver(src, "alice", "INBOX", message(1), {}, 1);
    const auto m2 = deliver(src, "alice", "INBOX", message(2), flags(8), 2);
    const auto m3 = deliver(src, "alice", "INBOX", message(3), flags(0, {"$Junk"}), 3);
    deliver(src, "alice", "INBOX", message(4, 700 * 1024), flags(8), 4);
    CPPUNIT_ASSERT(src.create_mailbox("alice", "Sent").has_value());
    CPPUNIT_ASSERT(src.create_mailbox("alice", "Archive/2024").has_value());
    deliver(src, "alice", "Sent", message(5), flags(8), 5);
    const auto s2 = deliver(src, "alice", "Sent", message(6), flags(8 | 1), 6);
    deliver(src, "alice", "Archive/2024", message(7), flags(8), 7);
    {
      auto subs = imap_session_detail::subscriptions::of(src, a->dir.path(), "alice", false);
      const std::vector<std::string> names{"INBOX", "Sent"};
      CPPUNIT_ASSERT(subs->add(names).has_value());
    }
    (void)m1;

    auto admin = co_await connect(*b);
    const std::string pull = "PULL alice 127.0.0.1 " + std::to_string(a->port());
    const std::string pull_final = pull + " FINAL";

    // Pass 1: everything.
    const auto tree1 = source_tree("alice");
    auto t1 = co_await converse(*admin, pull);
    CPPUNIT_ASSERT_MESSAGE(t1.describe(), t1.is_ok());
    auto c1 = t1.counts();
    CPPUNIT_ASSERT_EQUAL(std::size_t(4), c1.size());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(file_count(tree1)), c1[0]);
    CPPUNIT_ASSERT(c1[1] > 700 * 1024);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), c1[2]);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), c1[3]);
    CPPUNIT_ASSERT(fs::exists(b->dir.path() / "incoming" / "alice" / "hamail-incoming"));
    CPPUNIT_ASSERT(!fs::exists(b->account_root("alice")));

    // Pass 2: one flag change (a rename), one expunge, one new message; the metadata that
    // changed with them is the INBOX and Sent indexes.
    {
      auto inbox = box(src, "alice", "INBOX");
      const std::vector<store::imap_uid> u{m2};
      CPPUNIT_ASSERT(inbox->set_flags(u, store::flag_mode::add, flags(2)).has_value());
      auto sent = box(src, "alice", "Sent");
      const std::vector<store::imap_uid> x{s2};
      CPPUNIT_ASSERT(sent->expunge(x).has_value());
    }
    deliver(src, "alice", "INBOX", message(8), {}, 8);
    auto t2 = co_await converse(*admin, pull);
    CPPUNIT_ASSERT_MESSAGE(t2.describe(), t2.is_ok());
    auto c2 = t2.counts();
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), c2[0]);  // the new message, two indexes
    CPPUNIT_ASSERT(c2[1] < 100 * 1024);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), c2[2]);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), c2[3]);

    // Pass 3, FINAL: recent messages claimed, a new keyword, a mailbox deleted and one
    // created and subscribed, one more recent message.
    {
      auto inbox = box(src, "alice", "INBOX");
      CPPUNIT_ASSERT(inbox->claim_recent().has_value());
      const std::vector<store::imap_uid> u{m3};
      CPPUNIT_ASSERT(inbox->set_flags(u, store::flag_mode::add, flags(0, {"Work"})).has_value());
    }
    CPPUNIT_ASSERT(src.delete_mailbox("alice", "Archive/2024").has_value());
    CPPUNIT_ASSERT(src.create_mailbox("alice", "Drafts").has_value());
    {
      auto subs = imap_session_detail::subscriptions::of(src, a->dir.path(), "alice", false);
      const std::vector<std::string> names{"Drafts"};
      CPPUNIT_ASSERT(subs->add(names).has_value());
    }
    deliver(src, "alice", "INBOX", message(9), {}, 9);
    auto t3 = co_await converse(*admin, pull_final);
    CPPUNIT_ASSERT_MESSAGE(t3.describe(), t3.is_ok());
    CPPUNIT_ASSERT(!fs::exists(b->dir.path() / "incoming" / "alice"));
    CPPUNIT_ASSERT(fs::is_directory(b->account_root("alice")));

    // The files first (before the destination's store opens them): same names, sizes and
    // mtimes to the nanosecond.
    auto installed = sync::list_tree(b->account_root("alice"));
    CPPUNIT_ASSERT(installed.has_value());
    const auto expected = source_tree("alice");
    CPPUNIT_ASSERT_EQUAL(expected.size(), installed->size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CPPUNIT_ASSERT_EQUAL(expected[i].path, (*installed)[i].path);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(expected[i].path, expected[i].size, (*installed)[i].size);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(expected[i].path, expected[i].mtime_ns,
                                   (*installed)[i].mtime_ns);
    }
    same_account("alice");

    // FINAL again after an interrupted switch: the installed copy is this move's, nothing
    // changed, nothing moves.
    auto t4 = co_await converse(*admin, pull_final);
    CPPUNIT_ASSERT_MESSAGE(t4.describe(), t4.is_ok());
    CPPUNIT_ASSERT_EQUAL(std::string("0 0 0 0"), t4.last.text);

    // An account that has a tree of its own here is never overwritten.
    deliver(*b->mail, "bob", "INBOX", message(10), {}, 10);
    deliver(src, "bob", "INBOX", message(11), {}, 11);
    const std::string pull_bob = "PULL bob 127.0.0.1 " + std::to_string(a->port()) + " FINAL";
    auto t5 = co_await converse(*admin, pull_bob);
    CPPUNIT_ASSERT_MESSAGE(t5.describe(), t5.is_no("EXISTS"));

    // Once the directory places alice here, PULL refuses to touch her tree.
    {
      auto acct = accounts.lookup_login("alice");
      auto moved = **acct;
      moved.owning_store = "store-b";
      CPPUNIT_ASSERT(accounts.put(moved).has_value());
    }
    auto t6 = co_await converse(*admin, pull_final);
    CPPUNIT_ASSERT_MESSAGE(t6.describe(), t6.is_no("OWNED"));
    co_await admin->close();
  }

  asio::awaitable<void> rate_scenario() {
    deliver(*a->mail, "carol", "INBOX", message(1, 1200 * 1024), {}, 1);
    auto admin = co_await connect(*b);
    const std::string pull = "PULL carol 127.0.0.1 " + std::to_string(a->port()) + " RATE 600000";
    const auto started = std::chrono::steady_clock::now();
    auto t = co_await converse(*admin, pull);
    const auto took = std::chrono::steady_clock::now() - started;
    CPPUNIT_ASSERT_MESSAGE(t.describe(), t.is_ok());
    CPPUNIT_ASSERT(took >= 1500ms);
    std::size_t progress = 0;
    std::uint64_t last_bytes = 0;
    for (const auto& r : t.untagged) {
      if (r.kind != reply::kind_t::progress) continue;
      ++progress;
      CPPUNIT_ASSERT(r.numbers[1] >= last_bytes);  // bytes only grow
      CPPUNIT_ASSERT(r.numbers[1] <= r.numbers[3]);
      last_bytes = r.numbers[1];
    }
    CPPUNIT_ASSERT_MESSAGE(std::to_string(progress), progress >= 2);
    co_await admin->close();
  }

  asio::awaitable<void> bad_input_scenario() {
    deliver(*a->mail, "alice", "INBOX", message(1), {}, 1);
    deliver(*a->mail, "bob", "INBOX", message(2), {}, 2);
    {
      // A command before AUTH: NO AUTH, then the connection is closed.
      auto c = co_await connect(*a, false);
      auto t = co_await converse(*c, "LIST alice");
      CPPUNIT_ASSERT_MESSAGE(t.describe(), t.is_no("AUTH"));
      auto after = co_await converse(*c, "LIST alice");
      CPPUNIT_ASSERT(after.closed);
    }
    {
      auto c = co_await connect(*a, false);
      auto t = co_await converse(*c, "AUTH not-the-secret-at-all");
      CPPUNIT_ASSERT_MESSAGE(t.describe(), t.is_no("AUTH"));
      auto after = co_await converse(*c, "LIST alice");
      CPPUNIT_ASSERT(after.closed);
    }
    {
      // BAD before AUTH ends the session too.
      auto c = co_await connect(*a, false);
      auto t = co_await converse(*c, "GET alice ../bob/cur");
      CPPUNIT_ASSERT(t.is_bad());
      auto after = co_await converse(*c, "LIST alice");
      CPPUNIT_ASSERT(after.closed);
    }
    {
      // An address not in allowed_from is closed without a word.
      a->cfg.sync.allowed_from = {"192.0.2.1"};
      auto ex = co_await asio::this_coro::executor;
      auto c =
          co_await sync::sync_client::connect(ex, "127.0.0.1", a->port(), client_tls, true, 10s);
      if (c) {
        const std::string line = "AUTH " + secret;
        auto t = co_await converse(**c, line);
        CPPUNIT_ASSERT(t.closed);
      }
      a->cfg.sync.allowed_from = {"127.0.0.1"};
    }
    auto c = co_await connect(*a);
    for (const char* traversal :
         {"GET alice ../bob/new", "GET alice /etc/passwd", "GET alice cur/../../bob",
          "GET alice ..", "GET alice new//x", "LIST ../alice", "LIST Alice"}) {
      auto t = co_await converse(*c, traversal);
      CPPUNIT_ASSERT_MESSAGE(traversal, t.is_bad());
    }
    auto unknown = co_await converse(*c, "LIST nobody");
    CPPUNIT_ASSERT_MESSAGE(unknown.describe(), unknown.is_no("NONEXISTENT"));
    auto missing = co_await converse(*c, "GET alice cur/none");
    CPPUNIT_ASSERT_MESSAGE(missing.describe(), missing.is_no("NONEXISTENT"));
    auto dir = co_await converse(*c, "GET alice cur");
    CPPUNIT_ASSERT_MESSAGE(dir.describe(), dir.is_no("NONEXISTENT"));
    auto leftover = co_await converse(*c, "GET alice hamail-index.tmp.1");
    CPPUNIT_ASSERT_MESSAGE(leftover.describe(), leftover.is_no("NONEXISTENT"));
    // A real file comes back byte for byte.
    auto list = co_await converse(*c, "LIST alice");
    CPPUNIT_ASSERT(list.is_ok());
    std::string message_path;
    for (const auto& r : list.untagged)
      if (r.kind == reply::kind_t::file && sync::is_message_file(r.path)) message_path = r.path;
    CPPUNIT_ASSERT(!message_path.empty());
    const std::string get = "GET alice " + message_path;
    auto got = co_await converse(*c, get);
    CPPUNIT_ASSERT_EQUAL(message(1), got.payload);
    auto unknown_cmd = co_await converse(*c, "NOOP");
    CPPUNIT_ASSERT(unknown_cmd.is_bad());
    const std::string long_line(sync::max_command_line + 10, 'A');
    auto too_long = co_await converse(*c, long_line);
    CPPUNIT_ASSERT(too_long.is_bad());
    // Still usable after BADs.
    auto again = co_await converse(*c, "LIST bob");
    CPPUNIT_ASSERT_MESSAGE(again.describe(), again.is_ok());
    co_await c->close();
    // A PULL whose source does not share the secret, or that lists an unknown account.
    auto admin = co_await connect(*b);
    a->ctx->secret = "another-cluster-secret-entirely";
    const std::string pull_alice = "PULL alice 127.0.0.1 " + std::to_string(a->port());
    auto refused = co_await converse(*admin, pull_alice);
    a->ctx->secret = secret;
    CPPUNIT_ASSERT_MESSAGE(refused.describe(), refused.is_no("AUTH"));
    const std::string pull_nobody = "PULL carol 127.0.0.1 " + std::to_string(a->port());
    auto nobody = co_await converse(*admin, pull_nobody);
    CPPUNIT_ASSERT_MESSAGE(nobody.describe(), nobody.is_no("NONEXISTENT"));
    CPPUNIT_ASSERT(!fs::exists(b->dir.path() / "incoming" / "carol"));  // nothing staged
    co_await admin->close();
  }

  asio::awaitable<void> purge_scenario() {
    deliver(*a->mail, "alice", "INBOX", message(1), {}, 1);
    auto c = co_await connect(*a);
    auto t1 = co_await converse(*c, "PURGE alice");
    CPPUNIT_ASSERT_MESSAGE(t1.describe(), t1.is_no("NOTMOVED"));
    auto t2 = co_await converse(*c, "FENCE alice LOCKED store-b 60");
    CPPUNIT_ASSERT_MESSAGE(t2.describe(), t2.is_ok());
    auto t3 = co_await converse(*c, "PURGE alice");
    CPPUNIT_ASSERT_MESSAGE(t3.describe(), t3.is_no("NOTMOVED"));
    auto t4 = co_await converse(*c, "FENCE alice MOVED store-b");
    CPPUNIT_ASSERT_MESSAGE(t4.describe(), t4.is_ok());
    auto t5 = co_await converse(*c, "UNFENCE alice");
    CPPUNIT_ASSERT_MESSAGE(t5.describe(), t5.is_no("MOVED"));
    auto before = box(*a->mail, "alice", "INBOX");  // a loaded mailbox of the account
    auto t6 = co_await converse(*c, "PURGE alice");
    CPPUNIT_ASSERT_MESSAGE(t6.describe(), t6.is_ok());
    CPPUNIT_ASSERT(!fs::exists(a->account_root("alice")));
    CPPUNIT_ASSERT(fences_a.forgotten == std::vector<std::string>{"alice"});
    CPPUNIT_ASSERT(!before->snapshot().has_value());  // marked deleted, not served stale
    auto t7 = co_await converse(*c, "LIST alice");
    CPPUNIT_ASSERT_MESSAGE(t7.describe(), t7.is_no("NONEXISTENT"));
    co_await c->close();
  }

  asio::awaitable<void> discard_scenario() {
    deliver(*a->mail, "alice", "INBOX", message(1), {}, 1);
    deliver(*a->mail, "bob", "INBOX", message(2), {}, 2);
    auto admin = co_await connect(*b);
    const std::string pull = "PULL alice 127.0.0.1 " + std::to_string(a->port());
    auto p = co_await converse(*admin, pull);
    CPPUNIT_ASSERT_MESSAGE(p.describe(), p.is_ok());
    CPPUNIT_ASSERT(fs::is_directory(b->dir.path() / "incoming" / "alice"));
    auto d1 = co_await converse(*admin, "DISCARD alice");
    CPPUNIT_ASSERT_MESSAGE(d1.describe(), d1.is_ok());
    CPPUNIT_ASSERT(!fs::exists(b->dir.path() / "incoming" / "alice"));
    // An installed copy of a move is discarded too while the directory places it elsewhere.
    const std::string pull_final = "PULL bob 127.0.0.1 " + std::to_string(a->port()) + " FINAL";
    auto p2 = co_await converse(*admin, pull_final);
    CPPUNIT_ASSERT_MESSAGE(p2.describe(), p2.is_ok());
    CPPUNIT_ASSERT(fs::is_directory(b->account_root("bob")));
    {
      // Owned here: refused.
      auto acct = accounts.lookup_login("bob");
      auto moved = **acct;
      moved.owning_store = "store-b";
      CPPUNIT_ASSERT(accounts.put(moved).has_value());
    }
    auto d2 = co_await converse(*admin, "DISCARD bob");
    CPPUNIT_ASSERT_MESSAGE(d2.describe(), d2.is_no("OWNED"));
    CPPUNIT_ASSERT(fs::is_directory(b->account_root("bob")));
    {
      auto acct = accounts.lookup_login("bob");
      auto back = **acct;
      back.owning_store = "store-a";
      CPPUNIT_ASSERT(accounts.put(back).has_value());
    }
    auto d3 = co_await converse(*admin, "DISCARD bob");
    CPPUNIT_ASSERT_MESSAGE(d3.describe(), d3.is_ok());
    CPPUNIT_ASSERT(!fs::exists(b->account_root("bob")));
    // The source of a move (a fence here) refuses DISCARD.
    auto src = co_await connect(*a);
    auto f = co_await converse(*src, "FENCE alice LOCKED store-b 60");
    CPPUNIT_ASSERT(f.is_ok());
    auto d4 = co_await converse(*src, "DISCARD alice");
    CPPUNIT_ASSERT_MESSAGE(d4.describe(), d4.is_no("FENCED"));
    CPPUNIT_ASSERT(fs::is_directory(a->account_root("alice")));
    co_await src->close();
    co_await admin->close();
  }

  std::unique_ptr<test::temp_dir> ca_dir;
  std::unique_ptr<test::test_ca> ca;
  std::unique_ptr<tls::context_store> tls_store;
  std::shared_ptr<asio::ssl::context> client_tls;
  std::unique_ptr<asio::io_context> io;
  std::unique_ptr<asio::thread_pool> blocking;
  directory::memory_directory accounts;
  fake_fences fences_a;
  std::unique_ptr<store_node> a;
  std::unique_ptr<store_node> b;
};

CPPUNIT_TEST_SUITE_REGISTRATION(sync_loopback_test);

}  // namespace hamail::backend

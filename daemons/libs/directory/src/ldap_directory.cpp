#include "hamail/directory/ldap_directory.hpp"

#include <ldap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/log.hpp"
#include "hamail/directory/ldap_connection.hpp"
#include "ldap_check.hpp"

namespace hamail::directory {

namespace detail {

namespace {

using clock = std::chrono::steady_clock;

/// Longer lookups cannot name an account (an SMTP path is at most 256 octets);
/// they are answered "not found" without asking the server.
constexpr std::size_t max_query_length = 1024;
/// Two answers are enough to see that a lookup is ambiguous.
constexpr int search_size_limit = 2;

const std::vector<std::string> account_attributes = {"uid",
                                                     "mail",
                                                     "mailLocalAddress",
                                                     "hamailOwningStore",
                                                     "hamailQuotaBytes",
                                                     "hamailQuotaMessages",
                                                     "hamailAccountState",
                                                     "userPassword"};
const std::vector<std::string> store_attributes = {
    "hamailStoreName",  "hamailServiceHost", "hamailServiceAddress", "hamailSmtpPort",
    "hamailLmtpPort",   "hamailImapPort",    "hamailPop3Port",       "hamailCapacityWeight",
    "hamailStoreState", "description"};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// The values of `name` in `e`, or nullptr when it has none.
const std::vector<std::string>* values_of(const ldap_entry& e, std::string_view name) {
  const auto& v = e.values(name);
  return v.empty() ? nullptr : &v;
}

error bad_entry(const std::string& dn, std::string why) {
  // Temporary: mail is deferred and logins refused "try later" until an operator
  // repairs the entry, rather than bounced.
  return error::temporary(errc::invalid_input, "directory error",
                          "directory entry " + dn + ": " + std::move(why));
}

/// Parses a non-negative INTEGER attribute value no larger than `max`.
std::optional<std::uint64_t> parse_unsigned(const std::string& text, std::uint64_t max) {
  std::uint64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || text.empty() || v > max) return std::nullopt;
  return v;
}

/// The uid of the entry's RDN ("uid=alice,ou=accounts,..."), or "" when the RDN
/// has none.
std::string rdn_uid(const std::string& dn) {
  if (auto uid = first_rdn_value(dn, "uid")) return std::move(*uid);
  return first_rdn_value(dn, "0.9.2342.19200300.100.1.1").value_or(std::string());
}

result<account> account_from_entry(const ldap_entry& e) {
  account a;
  a.id = rdn_uid(e.dn);
  if (a.id.empty()) a.id = e.first("uid");
  if (a.id.empty()) return bad_entry(e.dn, "no uid");
  a.login = a.id;
  a.primary_address = normalize_address(e.first("mail"));
  if (const auto* addresses = values_of(e, "maillocaladdress")) {
    for (const auto& raw : *addresses) {
      std::string address = normalize_address(raw);
      if (address.empty() || address == a.primary_address) continue;
      if (std::find(a.aliases.begin(), a.aliases.end(), address) != a.aliases.end()) continue;
      a.aliases.push_back(std::move(address));
    }
  }
  if (a.primary_address.empty() && !a.aliases.empty()) {
    // No mail attribute: the first local address stands in.
    a.primary_address = a.aliases.front();
    a.aliases.erase(a.aliases.begin());
  }
  a.owning_store = e.first("hamailowningstore");
  if (a.owning_store.empty()) return bad_entry(e.dn, "no hamailOwningStore");
  a.password_hash = e.first("userpassword");
  a.dn = e.dn;
  constexpr auto max_u64 = std::numeric_limits<std::uint64_t>::max();
  if (const auto* v = values_of(e, "hamailquotabytes")) {
    auto q = parse_unsigned(v->front(), max_u64);
    if (!q) return bad_entry(e.dn, "hamailQuotaBytes is not a non-negative integer");
    a.quota_bytes = *q;
  }
  if (const auto* v = values_of(e, "hamailquotamessages")) {
    auto q = parse_unsigned(v->front(), max_u64);
    if (!q) return bad_entry(e.dn, "hamailQuotaMessages is not a non-negative integer");
    a.quota_messages = *q;
  }
  if (const auto* v = values_of(e, "hamailaccountstate")) {
    // The attribute matches case-insensitively, so the value may be "Locked".
    auto state = parse_account_state(lower(v->front()));
    if (!state) return bad_entry(e.dn, "unknown hamailAccountState \"" + v->front() + "\"");
    a.state = *state;
  }
  return a;
}

result<store_record> store_from_entry(const ldap_entry& e) {
  store_record s;
  s.name = e.first("hamailstorename");
  s.service_host = e.first("hamailservicehost");
  if (s.name.empty() || s.service_host.empty()) {
    return bad_entry(e.dn, "hamailStoreName and hamailServiceHost are required");
  }
  s.service_address = e.first("hamailserviceaddress");
  s.description = e.first("description");
  const std::pair<const char*, std::uint16_t*> ports[] = {{"hamailsmtpport", &s.smtp_port},
                                                          {"hamaillmtpport", &s.lmtp_port},
                                                          {"hamailimapport", &s.imap_port},
                                                          {"hamailpop3port", &s.pop3_port}};
  for (const auto& [name, field] : ports) {
    if (const auto* v = values_of(e, name)) {
      auto port = parse_unsigned(v->front(), 65535);
      if (!port) return bad_entry(e.dn, std::string(name) + " is not a port number");
      *field = static_cast<std::uint16_t>(*port);
    }
  }
  if (const auto* v = values_of(e, "hamailcapacityweight")) {
    auto w = parse_unsigned(v->front(), std::numeric_limits<std::uint32_t>::max());
    if (!w) return bad_entry(e.dn, "hamailCapacityWeight is not a non-negative integer");
    s.capacity_weight = static_cast<std::uint32_t>(*w);
  }
  if (const auto* v = values_of(e, "hamailstorestate")) {
    auto state = parse_store_state(lower(v->front()));
    if (!state) return bad_entry(e.dn, "unknown hamailStoreState \"" + v->front() + "\"");
    s.state = *state;
  }
  return s;
}

}  // namespace

class worker;

/// A lookup waiting for a worker thread.
class job {
 public:
  virtual ~job() = default;
  /// Runs on a worker thread with that worker's connection.
  virtual void run(worker& w) = 0;
  /// Completes the lookup with `e` without running it.
  virtual void abandon(error e) = 0;
};

/// Everything the directory's worker threads share.
struct ldap_state {
  ldap_settings settings;
  std::string secret;
  ldap_connection_settings connection;  ///< the part of `settings` the connections use
  std::atomic<std::uint64_t> searches{0};

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::unique_ptr<job>> queue;     // guarded by mutex
  bool stopping = false;                      // guarded by mutex
  std::vector<clock::time_point> down_until;  // per server; guarded by mutex
  std::vector<std::thread> threads;

  /// Queues `j` for a worker, or abandons it when the directory is stopping.
  void enqueue(std::unique_ptr<job> j) {
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        queue.push_back(std::move(j));
        wake.notify_one();
        return;
      }
    }
    j->abandon(error::temporary(errc::shutting_down, "directory unavailable",
                                "LDAP directory is shutting down"));
  }

  void worker_loop();

  /// Stops and joins the workers; abandons what is still queued.
  void stop() {
    std::deque<std::unique_ptr<job>> left;
    {
      std::lock_guard lock(mutex);
      stopping = true;
      wake.notify_all();
    }
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
    {
      std::lock_guard lock(mutex);
      left.swap(queue);
    }
    for (auto& j : left) {
      j->abandon(error::temporary(errc::shutting_down, "directory unavailable",
                                  "LDAP directory is shutting down"));
    }
  }

  /// Skips `server` for retry_interval.
  void mark_down(std::size_t server, const std::string& why) {
    bool was_up = false;
    {
      std::lock_guard lock(mutex);
      const auto now = clock::now();
      was_up = down_until[server] <= now;
      down_until[server] = now + settings.retry_interval;
    }
    if (was_up) {
      log::warning("directory server {} failed, skipping it for {} ms: {}", settings.uris[server],
                   settings.retry_interval.count(), why);
    }
  }

  void mark_up(std::size_t server) {
    bool was_down = false;
    {
      std::lock_guard lock(mutex);
      was_down = down_until[server] > clock::time_point{};
      down_until[server] = clock::time_point{};
    }
    if (was_down) log::notice("directory server {} answers again", settings.uris[server]);
  }

  /// Servers to try, in order of preference: those not marked down, or all of
  /// them when every one is (one of them may be back).
  std::vector<std::size_t> candidates() {
    std::vector<std::size_t> out;
    std::lock_guard lock(mutex);
    const auto now = clock::now();
    for (std::size_t i = 0; i < settings.uris.size(); ++i) {
      if (down_until[i] <= now) out.push_back(i);
    }
    if (out.empty()) {
      for (std::size_t i = 0; i < settings.uris.size(); ++i) out.push_back(i);
    }
    return out;
  }

  /// True when `c` should be replaced before use: its server was marked down by
  /// another worker, or it is on a fallback server and an earlier one may be back.
  bool should_reconnect(const ldap_connection& c) {
    std::lock_guard lock(mutex);
    const auto now = clock::now();
    if (down_until[c.server()] > now) return true;
    if (c.server() == 0 || now - c.opened_at() < settings.retry_interval) return false;
    for (std::size_t i = 0; i < c.server(); ++i) {
      if (down_until[i] <= now) return true;
    }
    return false;
  }

  /// Opens `c` to the first candidate server that answers before `deadline`,
  /// bound as `dn`. The time left is shared out among the candidates so that a
  /// server that swallows packets cannot use it all. A rejected bind is
  /// errc::permission_denied; no server is errc::unavailable or errc::timed_out.
  result<void> connect_any(ldap_connection& c, clock::time_point deadline, std::string_view dn,
                           std::string_view password) {
    bool timed_out = false;
    auto f = c.open_first(connection, candidates(), deadline, dn, password,
                          [&](std::size_t server, const ldap_failure& failed) {
                            if (failed.code == LDAP_TIMEOUT) timed_out = true;
                            // A password we refuse to send in plaintext, or credentials
                            // the server rejects, say nothing about the server's health.
                            if (failed.temporary()) mark_down(server, failed.text);
                          });
    if (!f) {
      mark_up(c.server());
      return ok();
    }
    if (f->kind == ldap_failure_kind::bind_rejected) {
      return error::permanent(errc::permission_denied, "authentication failed", f->text);
    }
    if (f->code == LDAP_TIMEOUT) timed_out = true;
    return error::temporary(timed_out ? errc::timed_out : errc::unavailable,
                            "directory unavailable", "no LDAP server answered in time: " + f->text);
  }
};

/// A worker thread's view: its own pooled connection.
class worker {
 public:
  explicit worker(ldap_state& state) : state_(state) {}

  /// Searches with the pooled connection: reconnects when it is broken or a
  /// better server may be back, fails over to the next server on a connection
  /// failure, and gives up at the directory's timeout.
  result<std::vector<ldap_entry>> search(const std::string& filter,
                                         const std::vector<std::string>& attributes) {
    const ldap_settings& s = state_.settings;
    const auto deadline = clock::now() + s.timeout;
    std::string failures;
    for (std::size_t attempt = 0;; ++attempt) {
      bool reused = conn_.is_open();
      if (reused && state_.should_reconnect(conn_)) {
        conn_.close();
        reused = false;
      }
      if (!conn_.is_open()) {
        auto r = state_.connect_any(conn_, deadline, s.bind_dn, state_.secret);
        if (!r) {
          error e = std::move(r).err();
          if (e.code == errc::permission_denied) {
            // The daemon's own bind DN or password is wrong: an operator's
            // problem, and a temporary one for clients.
            e = error::temporary(errc::unavailable, "directory unavailable",
                                 "bind_dn rejected: " + e.detail);
          }
          if (!failures.empty()) e.detail = failures + "; " + e.detail;
          return e;
        }
      }
      const auto now = clock::now();
      if (now >= deadline) {
        return error::temporary(errc::timed_out, "directory unavailable",
                                "LDAP lookup ran out of time before the search");
      }
      ++state_.searches;
      std::vector<ldap_entry> entries;
      // With other servers to fail over to, what is left is shared out among the servers
      // still to try (as for connecting): a server that died without a reset (power loss,
      // partition) must not eat the whole lookup's time, or the lookup fails although the
      // next server would have answered.
      auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      if (attempt + 1 < s.uris.size()) budget /= static_cast<long>(s.uris.size() - attempt);
      auto f = conn_.search(s.base_dn, ldap_scope::subtree, filter, attributes, budget,
                            search_size_limit, entries);
      if (!f) {
        if (entries.size() > 1) {
          return error::temporary(errc::invalid_input, "directory error",
                                  "ambiguous: more than one entry matches " + filter);
        }
        return entries;
      }
      const std::string& uri = s.uris[conn_.server()];
      if (f->size_limit_exceeded()) {
        return error::temporary(errc::invalid_input, "directory error",
                                "ambiguous: more than one entry matches " + filter);
      }
      if (!f->temporary()) {
        return error::temporary(errc::unavailable, "directory unavailable", uri + ": " + f->text);
      }
      if (!failures.empty()) failures += "; ";
      failures += uri + ": " + f->text;
      const std::size_t server = conn_.server();
      conn_.close();
      // A pooled connection may have died while idle (server restart, idle
      // timeout): one fresh try on the same server before blaming it.
      if (!(reused && attempt == 0 && f->code == LDAP_SERVER_DOWN)) {
        state_.mark_down(server, f->text);
      }
      if (clock::now() >= deadline || attempt >= s.uris.size()) {
        return error::temporary(f->code == LDAP_TIMEOUT ? errc::timed_out : errc::unavailable,
                                "directory unavailable", failures);
      }
    }
  }

  /// Binds as `dn` on a connection of its own; true when the server accepts.
  result<bool> bind_as(const std::string& dn, const std::string& password) {
    ldap_connection c;
    auto r = state_.connect_any(c, clock::now() + state_.settings.timeout, dn, password);
    if (r) return true;
    if (r.err().code == errc::permission_denied) return false;
    return std::move(r).err();
  }

 private:
  ldap_state& state_;
  ldap_connection conn_;
};

void ldap_state::worker_loop() {
  worker w(*this);
  for (;;) {
    std::unique_ptr<job> j;
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [this] { return stopping || !queue.empty(); });
      if (stopping) return;
      j = std::move(queue.front());
      queue.pop_front();
    }
    j->run(w);
  }
}

namespace {

/// A job that runs `Fn(worker&) -> R` and resumes the awaiting coroutine with
/// the result on that coroutine's own executor.
template <class R, class Handler, class Fn>
class job_impl final : public job {
 public:
  job_impl(Handler handler, Fn fn)
      : work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(handler))),
        handler_(std::move(handler)),
        fn_(std::move(fn)) {}

  void run(worker& w) override { complete(fn_(w)); }
  void abandon(error e) override { complete(R(std::move(e))); }

 private:
  void complete(R r) {
    auto ex = work_.get_executor();
    boost::asio::post(
        ex, [h = std::move(handler_), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
    work_.reset();
  }

  boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work_;
  Handler handler_;
  Fn fn_;
};

/// Hands `fn` to a worker thread of `state`; the awaitable yields its result.
/// Not a coroutine: the lookup text is already inside `fn` when this returns,
/// and nothing by value lives across a co_await (GCC 12 destroys such objects
/// twice).
template <class R, class Fn>
boost::asio::awaitable<R> submit(std::shared_ptr<ldap_state> state, Fn fn) {
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(R)>(
      [](auto handler, std::shared_ptr<ldap_state> s, Fn f) {
        using handler_type = decltype(handler);
        s->enqueue(
            std::make_unique<job_impl<R, handler_type, Fn>>(std::move(handler), std::move(f)));
      },
      boost::asio::use_awaitable, std::move(state), std::move(fn));
}

using account_result = result<std::optional<account>>;

/// A search for at most one account with `filter` (empty `filter`: not found
/// without asking).
auto account_lookup(std::string filter) {
  return [filter = std::move(filter)](worker& w) -> account_result {
    if (filter.empty()) return std::optional<account>{};
    auto entries = w.search(filter, account_attributes);
    if (!entries) return std::move(entries).err();
    if (entries->empty()) return std::optional<account>{};
    auto a = account_from_entry(entries->front());
    if (!a) return std::move(a).err();
    return std::optional<account>{std::move(*a)};
  };
}

bool usable_query(std::string_view text) {
  return !text.empty() && text.size() <= max_query_length;
}

error config_problem(std::string detail) {
  return error::permanent(errc::config_error, "invalid configuration",
                          "[directory] " + std::move(detail));
}

}  // namespace

}  // namespace detail

result<std::unique_ptr<ldap_directory>> ldap_directory::create(ldap_settings settings) {
  using detail::config_problem;
  auto state = std::make_shared<detail::ldap_state>();
  if (settings.uris.empty()) return config_problem("uris: list at least one server URI");
  for (const auto& uri : settings.uris) {
    detail::ldap_uri_info info;
    if (auto why = detail::check_ldap_uri(uri, info))
      return config_problem("uris: " + uri + ": " + *why);
    if (!settings.bind_dn.empty() && !info.tls && !info.local && !settings.starttls &&
        !settings.allow_plaintext_bind) {
      return config_problem("uris: " + uri +
                            " would carry the bind password in plaintext: use ldaps://, "
                            "starttls = true, or allow_plaintext_bind = true");
    }
  }
  if (auto why = detail::check_dn(settings.base_dn)) return config_problem("base_dn " + *why);
  if (!settings.bind_dn.empty()) {
    if (auto why = detail::check_dn(settings.bind_dn)) return config_problem("bind_dn " + *why);
    if (settings.bind_secret_file.empty()) {
      return config_problem("bind_secret_file is required with bind_dn");
    }
    auto secret = read_secret_file(settings.bind_secret_file);
    if (!secret) return std::move(secret).err();
    state->secret = std::move(*secret);
  } else if (!settings.bind_secret_file.empty()) {
    return config_problem("bind_secret_file is set but bind_dn is not");
  }
  if (settings.timeout <= std::chrono::milliseconds::zero()) {
    return config_problem("timeout must be more than 0");
  }
  if (settings.pool_size == 0) return config_problem("pool_size must be at least 1");
  if (!settings.ca_file.empty() && ::access(settings.ca_file.c_str(), R_OK) != 0) {
    return config_problem("ca_file " + settings.ca_file + " is not readable");
  }

  // libldap initialises its global state on first use; do it here, on one thread,
  // before the workers race for it.
  int version = 0;
  ldap_get_option(nullptr, LDAP_OPT_PROTOCOL_VERSION, &version);

  state->down_until.assign(settings.uris.size(), std::chrono::steady_clock::time_point{});
  state->connection = ldap_connection_settings{settings.uris, settings.starttls, settings.ca_file,
                                               settings.allow_plaintext_bind};
  state->settings = std::move(settings);
  for (std::size_t i = 0; i < state->settings.pool_size; ++i) {
    state->threads.emplace_back([s = state.get()] { s->worker_loop(); });
  }
  return std::unique_ptr<ldap_directory>(new ldap_directory(std::move(state)));
}

ldap_directory::ldap_directory(std::shared_ptr<detail::ldap_state> state)
    : state_(std::move(state)) {}

ldap_directory::~ldap_directory() { state_->stop(); }

boost::asio::awaitable<result<std::optional<account>>> ldap_directory::find_by_address(
    std::string_view address) {
  std::string filter;
  if (detail::usable_query(address)) {
    filter =
        "(&(objectClass=hamailAccount)(mailLocalAddress=" + escape_filter_value(address) + "))";
  }
  auto op = detail::account_lookup(std::move(filter));
  return detail::submit<detail::account_result>(state_, std::move(op));
}

boost::asio::awaitable<result<std::optional<account>>> ldap_directory::find_by_login(
    std::string_view login) {
  std::string filter;
  if (detail::usable_query(login)) {
    const std::string value = escape_filter_value(login);
    filter = "(&(objectClass=hamailAccount)(|(uid=" + value + ")(mail=" + value + ")))";
  }
  auto op = detail::account_lookup(std::move(filter));
  return detail::submit<detail::account_result>(state_, std::move(op));
}

boost::asio::awaitable<result<std::optional<store_record>>> ldap_directory::find_store(
    std::string_view name) {
  using store_result = result<std::optional<store_record>>;
  std::string filter;
  if (detail::usable_query(name)) {
    filter = "(&(objectClass=hamailStore)(hamailStoreName=" + escape_filter_value(name) + "))";
  }
  auto op = [filter = std::move(filter)](detail::worker& w) -> store_result {
    if (filter.empty()) return std::optional<store_record>{};
    auto entries = w.search(filter, detail::store_attributes);
    if (!entries) return std::move(entries).err();
    if (entries->empty()) return std::optional<store_record>{};
    auto s = detail::store_from_entry(entries->front());
    if (!s) return std::move(s).err();
    return std::optional<store_record>{std::move(*s)};
  };
  return detail::submit<store_result>(state_, std::move(op));
}

boost::asio::awaitable<result<bool>> ldap_directory::bind_as(std::string_view dn,
                                                             std::string_view password) {
  // An empty password would make a simple bind "unauthenticated" (RFC 4513 5.1.2),
  // which servers may accept: never let that count as a login.
  auto op = [dn = std::string(dn), password = std::string(password)](detail::worker& w) {
    if (dn.empty() || password.empty()) return result<bool>(false);
    return w.bind_as(dn, password);
  };
  return detail::submit<result<bool>>(state_, std::move(op));
}

std::uint64_t ldap_directory::search_count() const noexcept { return state_->searches.load(); }

}  // namespace hamail::directory

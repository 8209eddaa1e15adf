#include "hamail/backend/account_gate.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/account_id.hpp"
#include "hamail/core/log.hpp"
#include "hamail/directory/store_record.hpp"
#include "hamail/net/connection.hpp"
#include "hamail/net/run_blocking.hpp"
#include "move/fence_file.hpp"

namespace hamail::backend {

namespace asio = boost::asio;
using asio::awaitable;
using kind_t = fence_state::kind_t;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// The longest lease a FENCE LOCKED may ask for: a final phase takes seconds; a day is
/// far beyond any and still bounded.
constexpr std::chrono::seconds max_lease = std::chrono::hours(24);

error os_error(std::string_view what, const std::filesystem::path& path, int err) {
  return error::temporary(errc::io_error, "fence not recorded",
                          fmt::format("cannot {} {}: {}", what, path.string(), std::strerror(err)));
}

std::string_view kind_name(kind_t k) {
  switch (k) {
    case kind_t::locked:
      return "locked";
    case kind_t::moved:
      return "moved";
    case kind_t::none:
      break;
  }
  return "none";
}

result<void> sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error("open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_error("fsync", dir, err);
  return ok();
}

/// Writes `text` as `dir/name` durably: temporary name, fsync, rename, directory fsync.
result<void> write_durably(const std::filesystem::path& dir, const std::string& name,
                           const std::string& text, bool fsync) {
  const auto tmp = dir / ("." + name + ".tmp");
  const auto target = dir / name;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return os_error("create", tmp, errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(tmp.c_str());
      return os_error("write", tmp, err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (fsync && ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return os_error("fsync", tmp, err);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return os_error("close", tmp, err);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return os_error("rename", tmp, err);
  }
  if (fsync) return sync_directory(dir);
  return ok();
}

/// Removes `dir/name` durably; a file already gone is success.
result<void> remove_durably(const std::filesystem::path& dir, const std::string& name, bool fsync) {
  const auto target = dir / name;
  if (::unlink(target.c_str()) != 0 && errno != ENOENT) return os_error("remove", target, errno);
  if (fsync) return sync_directory(dir);
  return ok();
}

/// Reads a fence file (never following a symbolic link), at most max_fence_file_size + 1
/// octets so that an oversized one is refused by the parser.
result<std::string> read_small(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return os_error("open", path, errno);
  std::string out(account_move::max_fence_file_size + 1, '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const auto n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return os_error("read", path, err);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

error invalid_account(std::string_view account, std::string_view problem) {
  return error::permanent(errc::invalid_input, "invalid account id",
                          fmt::format("account id '{}' {}", account.substr(0, 80), problem));
}

std::optional<error> check_account(std::string_view account) {
  if (auto problem = account_id_problem(account)) return invalid_account(account, *problem);
  return std::nullopt;
}

std::optional<error> check_store(std::string_view store, std::string_view this_store) {
  if (!directory::valid_store_name(store)) {
    return error::permanent(errc::invalid_input, "invalid store name",
                            fmt::format("'{}' is not a store name", store.substr(0, 80)));
  }
  if (store == this_store) {
    return error::permanent(errc::invalid_input, "the account is on this store already",
                            fmt::format("store {} cannot fence an account for itself", store));
  }
  return std::nullopt;
}

}  // namespace

// --- gate_token ---

gate_token::gate_token(gate_token&& other) noexcept
    : gate_(std::exchange(other.gate_, nullptr)), id_(other.id_) {}

gate_token& gate_token::operator=(gate_token&& other) noexcept {
  if (this != &other) {
    reset();
    gate_ = std::exchange(other.gate_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

gate_token::~gate_token() { reset(); }

bool gate_token::ended_by_fence() const noexcept { return gate_ != nullptr && gate_->ended(id_); }

void gate_token::reset() noexcept {
  if (gate_ != nullptr) std::exchange(gate_, nullptr)->release(id_);
}

// --- lease decisions ---

lease_decision decide_lease_end(std::span<const placement_answer> answers,
                                std::string_view this_store) {
  using action = lease_decision::action_t;
  if (answers.empty()) return {action::keep, {}, "no directory server to ask"};
  for (const auto& a : answers) {
    if (a && a->has_value() && !(*a)->empty() && **a != this_store) {
      return {action::mark_moved, **a, fmt::format("the directory names store {}", **a)};
    }
  }
  for (const auto& a : answers) {
    if (!a) {
      return {action::keep,
              {},
              fmt::format("a directory server did not answer: {}", a.err().describe())};
    }
    if (!a->has_value()) return {action::keep, {}, "a directory server does not know the account"};
    if ((*a)->empty()) return {action::keep, {}, "the directory names no owning store"};
  }
  return {action::unlock, std::string(this_store),
          fmt::format("every directory server ({}) still names this store", answers.size())};
}

// --- account_gate ---

account_gate::account_gate(std::filesystem::path dir, std::string this_store,
                           asio::thread_pool& blocking, options opts)
    : dir_(std::move(dir)),
      this_store_(std::move(this_store)),
      blocking_(blocking),
      opts_(std::move(opts)) {}

account_gate::~account_gate() = default;

result<std::unique_ptr<account_gate>> account_gate::open(const std::filesystem::path& data_dir,
                                                         std::string this_store,
                                                         asio::thread_pool& blocking,
                                                         options opts) {
  std::unique_ptr<account_gate> g(
      new account_gate(data_dir / "fences", std::move(this_store), blocking, std::move(opts)));
  std::error_code ec;
  if (!std::filesystem::is_directory(g->dir_, ec)) {
    std::filesystem::create_directory(g->dir_, ec);
    if (ec) {
      return error::temporary(errc::io_error, "cannot create the fences directory",
                              fmt::format("{}: {}", g->dir_.string(), ec.message()));
    }
    if (g->opts_.fsync) {
      if (auto r = sync_directory(data_dir); !r) return std::move(r).err();
    }
  }
  if (auto r = g->load(); !r) return std::move(r).err();
  return g;
}

result<void> account_gate::load() {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec) {
    return error::temporary(errc::io_error, "cannot read the fences directory",
                            fmt::format("{}: {}", dir_.string(), ec.message()));
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with('.') && name.ends_with(".tmp")) {
      // A write that crashed before its rename: the fence it was replacing (or none) stands.
      log::notice("fences: removing the unfinished write {}", it->path().string());
      std::error_code ignored;
      std::filesystem::remove(it->path(), ignored);
      continue;
    }
    if (auto problem = account_id_problem(name)) {
      log::warning("fences: ignoring {}: the name {} (not an account id)", it->path().string(),
                   *problem);
      continue;
    }
    auto text = read_small(it->path());
    auto parsed = text ? account_move::parse_fence(*text) : result<fence_state>(text.err());
    if (!parsed) {
      // Never unfence on a damaged file: locked with its lease run out, so the lease review
      // asks the directory and either removes it (still placed here) or makes it moved.
      log::error(
          "fences: {} is not a valid fence ({}); the account stays fenced as locked with an "
          "expired lease until the directory settles it",
          it->path().string(), parsed.err().describe());
      fences_[name] = fence_state{kind_t::locked, {}, {}};
      continue;
    }
    log::notice("fences: account {} is {} (store {})", name, kind_name(parsed->kind),
                parsed->store);
    fences_[name] = std::move(*parsed);
  }
  if (ec) {
    return error::temporary(errc::io_error, "cannot read the fences directory",
                            fmt::format("{}: {}", dir_.string(), ec.message()));
  }
  return ok();
}

gate_admission account_gate::enter(std::string_view account, net::connection* conn) {
  gate_admission out;
  std::lock_guard lock(mutex_);
  if (auto f = fences_.find(account); f != fences_.end()) {
    out.refused = f->second.kind;
    out.store = f->second.store;
    return out;
  }
  const auto id = next_id_++;
  work_.emplace(id, work{std::string(account), conn, false});
  auto count = work_count_.find(account);
  if (count == work_count_.end()) count = work_count_.emplace(std::string(account), 0).first;
  ++count->second;
  out.token = gate_token(this, id);
  return out;
}

void account_gate::release(std::uint64_t id) noexcept {
  std::lock_guard lock(mutex_);
  auto w = work_.find(id);
  if (w == work_.end()) return;
  auto count = work_count_.find(w->second.account);
  if (count != work_count_.end() && --count->second == 0) work_count_.erase(count);
  work_.erase(w);
}

bool account_gate::ended(std::uint64_t id) const noexcept {
  std::lock_guard lock(mutex_);
  auto w = work_.find(id);
  return w != work_.end() && w->second.ended;
}

std::size_t account_gate::work_in_progress(std::string_view account) const {
  std::lock_guard lock(mutex_);
  auto count = work_count_.find(account);
  return count == work_count_.end() ? 0 : count->second;
}

fence_state account_gate::current(std::string_view account) const {
  std::lock_guard lock(mutex_);
  auto f = fences_.find(account);
  return f == fences_.end() ? fence_state{} : f->second;
}

std::map<std::string, fence_state> account_gate::fences() const {
  std::lock_guard lock(mutex_);
  return {fences_.begin(), fences_.end()};
}

std::size_t account_gate::end_sessions(const std::string& account) {
  std::lock_guard lock(mutex_);
  std::vector<net::connection*> asked;
  for (auto& [id, w] : work_) {
    if (w.account != account) continue;
    w.ended = true;
    if (w.conn == nullptr || std::find(asked.begin(), asked.end(), w.conn) != asked.end()) {
      continue;
    }
    asked.push_back(w.conn);
    // Drain this one connection (ADR 0003): an idle session says goodbye now, a command in
    // progress finishes first and the session ends at its next read.
    w.conn->begin_drain();
  }
  return asked.size();
}

awaitable<bool> account_gate::wait_idle(std::string account,
                                        std::chrono::steady_clock::time_point deadline) {
  // Polling, not an event: a lock is rare and short, and tokens may then be released from
  // wherever their session runs without the gate owning a timer on that executor.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (work_in_progress(account) > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) co_return false;
    timer.expires_after(std::min<std::chrono::steady_clock::duration>(opts_.poll, deadline - now));
    co_await timer.async_wait(use_tuple);
  }
  co_return true;
}

awaitable<result<void>> account_gate::write_file(std::string account, fence_state f) {
  auto job = [dir = dir_, account, text = account_move::format_fence(f), fsync = opts_.fsync] {
    return write_durably(dir, account, text, fsync);
  };
  co_return co_await net::run_blocking(blocking_, std::move(job));
}

awaitable<result<void>> account_gate::remove_file(std::string account) {
  auto job = [dir = dir_, account, fsync = opts_.fsync] {
    return remove_durably(dir, account, fsync);
  };
  co_return co_await net::run_blocking(blocking_, std::move(job));
}

bool account_gate::begin_operation(const std::string& account) {
  std::lock_guard lock(mutex_);
  return operations_.insert(account).second;
}

void account_gate::end_operation(const std::string& account) {
  std::lock_guard lock(mutex_);
  operations_.erase(account);
}

namespace {

/// Ends a fence operation on every way out of the coroutine.
class operation_guard {
 public:
  explicit operation_guard(std::function<void()> done) : done_(std::move(done)) {}
  ~operation_guard() { done_(); }
  operation_guard(const operation_guard&) = delete;
  operation_guard& operator=(const operation_guard&) = delete;

 private:
  std::function<void()> done_;
};

error busy_error(std::string_view account) {
  return error::temporary(
      errc::unavailable, "another fence operation is in progress",
      fmt::format("account {}: another fence operation is in progress", account));
}

}  // namespace

awaitable<result<void>> account_gate::lock(std::string account, std::string to_store,
                                           std::chrono::seconds lease) {
  if (auto e = check_account(account)) co_return std::move(*e);
  if (auto e = check_store(to_store, this_store_)) co_return std::move(*e);
  if (lease.count() <= 0 || lease > max_lease) {
    co_return error::permanent(
        errc::invalid_input, "invalid lease",
        fmt::format("lease of {} s (1 to {} s)", lease.count(), max_lease.count()));
  }
  if (!begin_operation(account)) co_return busy_error(account);
  operation_guard guard([this, account] { end_operation(account); });

  const fence_state wanted{kind_t::locked, to_store, opts_.now() + lease};
  fence_state previous;
  {
    std::lock_guard lock(mutex_);
    auto f = fences_.find(account);
    if (f != fences_.end()) {
      if (f->second.kind == kind_t::moved) {
        co_return error::permanent(
            errc::already_exists, "the account has moved",
            fmt::format("account {} is fenced moved to {}", account, f->second.store));
      }
      previous = f->second;
    }
    // From this instant every login and recipient of the account is refused.
    fences_[account] = wanted;
  }
  if (previous.kind == kind_t::none) {
    const auto asked = end_sessions(account);
    log::notice("account {}: locked for a move to {}; {} connection(s) asked to end", account,
                to_store, asked);
    auto waiting = wait_idle(account, std::chrono::steady_clock::now() + opts_.drain_wait);
    if (!co_await std::move(waiting)) {
      const auto left = work_in_progress(account);
      {
        std::lock_guard lock(mutex_);
        fences_.erase(account);
      }
      log::warning("account {}: {} operation(s) still in progress after {} ms; not fenced", account,
                   left, opts_.drain_wait.count());
      co_return error::temporary(
          errc::unavailable, "the account is busy, try again later",
          fmt::format("account {}: {} operation(s) still in progress after {} ms", account, left,
                      opts_.drain_wait.count()));
    }
  }
  auto writing = write_file(account, wanted);
  if (auto r = co_await std::move(writing); !r) {
    restore(account, previous);
    log::error("account {}: fence not recorded: {}", account, r.err().describe());
    co_return std::move(r).err();
  }
  recorded(account);
  log::notice("account {}: fenced locked (move to {}, lease {} s)", account, to_store,
              lease.count());
  co_return ok();
}

void account_gate::restore(const std::string& account, const fence_state& previous) {
  std::lock_guard lock(mutex_);
  if (previous.kind == kind_t::none) {
    fences_.erase(account);
  } else {
    fences_[account] = previous;
  }
}

void account_gate::recorded(const std::string& account) {
  std::lock_guard lock(mutex_);
  lease_warned_.erase(account);
}

awaitable<result<void>> account_gate::mark_moved(std::string account, std::string to_store) {
  if (auto e = check_account(account)) co_return std::move(*e);
  if (auto e = check_store(to_store, this_store_)) co_return std::move(*e);
  if (!begin_operation(account)) co_return busy_error(account);
  operation_guard guard([this, account] { end_operation(account); });

  const fence_state wanted{kind_t::moved, to_store, {}};
  fence_state previous;
  {
    std::lock_guard lock(mutex_);
    auto f = fences_.find(account);
    if (f != fences_.end()) previous = f->second;
    if (previous.kind == kind_t::moved && previous.store == to_store) co_return ok();
    fences_[account] = wanted;
  }
  if (work_in_progress(account) > 0) {
    const auto asked = end_sessions(account);
    log::notice("account {}: moved to {}; {} connection(s) asked to end", account, to_store, asked);
    auto waiting = wait_idle(account, std::chrono::steady_clock::now() + opts_.drain_wait);
    if (!co_await std::move(waiting)) {
      // The directory names the other store already: the fence is right whatever is
      // still running here, and the sessions end at their next command.
      log::warning("account {}: {} operation(s) still in progress after {} ms; fenced moved anyway",
                   account, work_in_progress(account), opts_.drain_wait.count());
    }
  }
  auto writing = write_file(account, wanted);
  if (auto r = co_await std::move(writing); !r) {
    restore(account, previous);
    log::error("account {}: moved fence not recorded: {}", account, r.err().describe());
    co_return std::move(r).err();
  }
  recorded(account);
  log::notice("account {}: fenced moved (now served by store {})", account, to_store);
  co_return ok();
}

awaitable<result<void>> account_gate::unlock(std::string account) {
  if (auto e = check_account(account)) co_return std::move(*e);
  if (!begin_operation(account)) co_return busy_error(account);
  operation_guard guard([this, account] { end_operation(account); });
  const auto f = current(account);
  if (f.kind == kind_t::none) co_return ok();
  if (f.kind == kind_t::moved) {
    co_return error::permanent(
        errc::permission_denied, "the account has moved",
        fmt::format("account {} is fenced moved to {}: not unlocked", account, f.store));
  }
  auto removing = remove_file(account);
  if (auto r = co_await std::move(removing); !r) {
    log::error("account {}: fence not removed: {}", account, r.err().describe());
    co_return std::move(r).err();
  }
  {
    std::lock_guard lock(mutex_);
    fences_.erase(account);
    lease_warned_.erase(account);
  }
  log::notice("account {}: unfenced (the move to {} was rolled back)", account, f.store);
  co_return ok();
}

awaitable<result<void>> account_gate::forget(std::string account) {
  if (auto e = check_account(account)) co_return std::move(*e);
  if (!begin_operation(account)) co_return busy_error(account);
  operation_guard guard([this, account] { end_operation(account); });
  const auto f = current(account);
  if (f.kind == kind_t::none) co_return ok();
  if (f.kind == kind_t::locked) {
    co_return error::permanent(
        errc::permission_denied, "the account is locked, not moved",
        fmt::format("account {} is fenced locked: unlock it instead", account));
  }
  auto removing = remove_file(account);
  if (auto r = co_await std::move(removing); !r) {
    log::error("account {}: moved fence not removed: {}", account, r.err().describe());
    co_return std::move(r).err();
  }
  {
    std::lock_guard lock(mutex_);
    fences_.erase(account);
  }
  log::notice("account {}: moved fence removed (the account's files are gone)", account);
  co_return ok();
}

awaitable<void> account_gate::review_leases(placement_source& placement) {
  std::vector<std::string> due;
  {
    std::lock_guard lock(mutex_);
    const auto now = opts_.now();
    for (const auto& [account, f] : fences_) {
      if (f.kind == kind_t::locked && f.until <= now) due.push_back(account);
    }
  }
  for (const auto& account : due) {
    auto asking = placement.ask(account);
    const auto answers = co_await std::move(asking);
    const auto d = decide_lease_end(answers, this_store_);
    switch (d.action) {
      case lease_decision::action_t::keep: {
        bool first = false;
        {
          std::lock_guard lock(mutex_);
          first = lease_warned_.insert(account).second;
        }
        if (first) {
          log::warning("account {}: the lease of its locked fence ran out; kept: {}", account,
                       d.why);
        } else {
          log::debug("account {}: expired locked fence kept: {}", account, d.why);
        }
        break;
      }
      case lease_decision::action_t::mark_moved: {
        log::notice("account {}: the lease of its locked fence ran out and {}: fencing it moved",
                    account, d.why);
        auto marking = mark_moved(account, d.store);
        if (auto r = co_await std::move(marking); !r) {
          log::error("account {}: cannot fence it moved: {}", account, r.err().describe());
        }
        break;
      }
      case lease_decision::action_t::unlock: {
        if (!begin_operation(account)) break;  // a fence operation runs: next review
        operation_guard guard([this, &account] { end_operation(account); });
        {
          // A FENCE LOCKED may have renewed the lease while the directory was asked.
          std::lock_guard lock(mutex_);
          auto f = fences_.find(account);
          if (f == fences_.end() || f->second.kind != kind_t::locked ||
              f->second.until > opts_.now()) {
            break;
          }
        }
        auto removing = remove_file(account);
        if (auto r = co_await std::move(removing); !r) {
          log::error("account {}: expired fence not removed: {}", account, r.err().describe());
          break;
        }
        {
          std::lock_guard lock(mutex_);
          fences_.erase(account);
          lease_warned_.erase(account);
        }
        log::notice("account {}: the lease of its locked fence ran out and {}: unfenced", account,
                    d.why);
        break;
      }
    }
  }
}

awaitable<void> account_gate::run_lease_reviews(placement_source& placement,
                                                std::chrono::milliseconds interval) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  review_timer_ = &timer;
  while (!stopped_) {
    auto reviewing = review_leases(placement);
    co_await std::move(reviewing);
    if (stopped_) break;
    timer.expires_after(interval);
    co_await timer.async_wait(use_tuple);
  }
  review_timer_ = nullptr;
}

void account_gate::stop() {
  stopped_ = true;
  if (review_timer_ != nullptr) review_timer_->cancel();
}

}  // namespace hamail::backend

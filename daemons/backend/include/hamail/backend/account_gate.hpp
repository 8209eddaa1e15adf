#pragma once

// The account gate of hamail-backend (docs/adr/0005-account-moves.md, "The fence"): the
// per-account fences of account moves, kept in `<data_dir>/fences/<account>` and in memory,
// and the registry of each account's live work (logged-in IMAP and POP3 sessions, SMTP/LMTP
// transactions with a recipient of the account) that fencing ends and waits for.
//
// Threading: enter(), the tokens, lock(), mark_moved(), unlock(), forget() and the lease
// review run on the daemon's io_context thread, where the sessions run (lock() calls
// net::connection::begin_drain, which belongs to that thread). current() and the counters
// may be called from any thread. File writes go to the blocking pool.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/backend/fence.hpp"
#include "hamail/core/result.hpp"

namespace hamail::net {
class connection;
}

namespace hamail::backend {

class account_gate;

/// One piece of an account's live work registered at the gate: a logged-in session, or an
/// SMTP/LMTP transaction's accepted recipient. Leaves the gate when destroyed or reset().
class gate_token {
 public:
  gate_token() noexcept = default;
  gate_token(gate_token&& other) noexcept;
  gate_token& operator=(gate_token&& other) noexcept;
  gate_token(const gate_token&) = delete;
  gate_token& operator=(const gate_token&) = delete;
  ~gate_token();

  /// True while registered.
  explicit operator bool() const noexcept { return gate_ != nullptr; }
  /// True once a fence asked this token's session to end: the session's goodbye then says
  /// the account is being moved rather than that the server shuts down.
  bool ended_by_fence() const noexcept;
  /// Leaves the gate now (idempotent).
  void reset() noexcept;

 private:
  friend class account_gate;
  gate_token(account_gate* gate, std::uint64_t id) noexcept : gate_(gate), id_(id) {}
  account_gate* gate_ = nullptr;
  std::uint64_t id_ = 0;
};

/// The gate's answer to a login or a recipient.
struct gate_admission {
  /// none: admitted (token set); locked: refuse temporarily ("being moved"); moved: answer
  /// "served by another store".
  fence_state::kind_t refused = fence_state::kind_t::none;
  std::string store;  ///< the fence's destination store, when refused
  gate_token token;   ///< set when admitted
};

/// What one directory server said about an account's owning store: the store's name, an
/// empty optional when the server does not know the account, an error when it could not answer.
using placement_answer = result<std::optional<std::string>>;

/// Where the directory places an account, asked when a locked fence's lease has run out.
class placement_source {
 public:
  virtual ~placement_source() = default;
  /// One answer per directory server (ADR 0005: every server is asked, so a provider that
  /// has not replicated the switch yet cannot make the store take the account back).
  virtual boost::asio::awaitable<std::vector<placement_answer>> ask(std::string account) = 0;
};

/// What to do with a locked fence whose lease ran out.
struct lease_decision {
  enum class action_t {
    keep,        ///< ask again later (a server unreachable, the account unknown)
    unlock,      ///< every server names this store: the move was abandoned, serve it again
    mark_moved,  ///< a server names another store: the switch happened, the fence becomes moved
  };
  action_t action = action_t::keep;
  std::string store;  ///< mark_moved: the store named
  std::string why;    ///< for the log
};

/// Decides from every server's answer: any server naming another store → mark_moved (the
/// directory's switch is the commit point, so one server having it means it happened); else
/// any unreachable server, unknown account or empty owning store → keep; else (all name
/// `this_store`) → unlock. No answers at all → keep.
lease_decision decide_lease_end(std::span<const placement_answer> answers,
                                std::string_view this_store);

/// The account gate: implements fence_control for the sync channel and admits logins and
/// recipients for the sessions.
///
/// lock() marks the account locked in memory first (every later enter() is refused), asks
/// every registered session of the account to end (net::connection::begin_drain: an idle
/// session says goodbye at once, a command in progress finishes first), waits until every
/// token of the account is released, at most options::drain_wait, and only then writes the
/// fence file durably. When work is still in progress at the deadline the lock fails with a
/// temporary error and the in-memory mark is removed: the safer choice, since cutting a
/// command (an APPEND's literal, a DATA body) half-way is never needed — the move's final
/// phase is retried later, and the sessions asked to end still end at their next command.
class account_gate final : public fence_control {
 public:
  struct options {
    /// How long lock() waits for work in progress (ADR 0005: 5 s).
    std::chrono::milliseconds drain_wait = std::chrono::seconds(5);
    /// How often that wait checks the account's tokens.
    std::chrono::milliseconds poll = std::chrono::milliseconds(10);
    /// fsync fence files and the directory (tests turn it off).
    bool fsync = true;
    /// Wall-clock time, for leases (tests substitute their own).
    std::function<std::chrono::system_clock::time_point()> now = std::chrono::system_clock::now;
  };

  /// Opens `<data_dir>/fences` (created on first use) and loads every fence in it. A file
  /// whose name is not an account id is logged and ignored; a leftover temporary file
  /// (".<account>.tmp", a crash before its rename) is removed; an unparsable fence file is
  /// logged as an error and taken as a locked fence whose lease has run out, so the account
  /// stays fenced until the directory settles it (never unfenced by a damaged file).
  /// Errors: io_error when the directory cannot be created or read.
  static result<std::unique_ptr<account_gate>> open(const std::filesystem::path& data_dir,
                                                    std::string this_store,
                                                    boost::asio::thread_pool& blocking,
                                                    options opts);
  static result<std::unique_ptr<account_gate>> open(const std::filesystem::path& data_dir,
                                                    std::string this_store,
                                                    boost::asio::thread_pool& blocking) {
    return open(data_dir, std::move(this_store), blocking, options{});
  }
  ~account_gate() override;
  account_gate(const account_gate&) = delete;
  account_gate& operator=(const account_gate&) = delete;

  /// A login or recipient of `account` on `conn`: refused while the account is fenced,
  /// otherwise registered until the returned token goes (the session's life, or the SMTP
  /// transaction's). `conn` is the connection a fence ends; it must outlive the token.
  gate_admission enter(std::string_view account, net::connection* conn);

  boost::asio::awaitable<result<void>> lock(std::string account, std::string to_store,
                                            std::chrono::seconds lease) override;
  boost::asio::awaitable<result<void>> mark_moved(std::string account,
                                                  std::string to_store) override;
  boost::asio::awaitable<result<void>> unlock(std::string account) override;
  boost::asio::awaitable<result<void>> forget(std::string account) override;
  fence_state current(std::string_view account) const override;

  /// Reviews every locked fence whose lease has run out (decide_lease_end on `placement`'s
  /// answers): unlocks it, turns it into moved, or keeps it for the next review.
  boost::asio::awaitable<void> review_leases(placement_source& placement);
  /// Runs review_leases() every `interval` until stop().
  boost::asio::awaitable<void> run_lease_reviews(placement_source& placement,
                                                 std::chrono::milliseconds interval);
  /// Ends run_lease_reviews() (daemon shutdown).
  void stop();

  /// Every fence now, by account.
  std::map<std::string, fence_state> fences() const;
  /// Tokens registered for `account` now.
  std::size_t work_in_progress(std::string_view account) const;
  /// The fences directory.
  const std::filesystem::path& directory() const noexcept { return dir_; }

 private:
  friend class gate_token;
  struct work {
    std::string account;
    net::connection* conn = nullptr;
    bool ended = false;
  };

  account_gate(std::filesystem::path dir, std::string this_store,
               boost::asio::thread_pool& blocking, options opts);
  result<void> load();
  void release(std::uint64_t id) noexcept;
  bool ended(std::uint64_t id) const noexcept;
  /// Marks the account's work ended and asks its sessions to end; returns how many.
  std::size_t end_sessions(const std::string& account);
  /// Waits until the account has no work or `deadline`; true when none is left.
  boost::asio::awaitable<bool> wait_idle(std::string account,
                                         std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<result<void>> write_file(std::string account, fence_state f);
  boost::asio::awaitable<result<void>> remove_file(std::string account);
  /// After a fence file failed to be written: the account's fence in memory is `previous`
  /// again (none: no fence).
  void restore(const std::string& account, const fence_state& previous);
  /// After a fence file was written: a later lease warning is logged afresh.
  void recorded(const std::string& account);
  /// Claims `account` for one fence operation; false when another one is running.
  bool begin_operation(const std::string& account);
  void end_operation(const std::string& account);

  std::filesystem::path dir_;
  std::string this_store_;
  boost::asio::thread_pool& blocking_;
  options opts_;

  mutable std::mutex mutex_;
  std::map<std::string, fence_state, std::less<>> fences_;
  std::map<std::uint64_t, work> work_;
  std::map<std::string, std::size_t, std::less<>> work_count_;
  std::set<std::string, std::less<>> operations_;    ///< accounts with a fence operation running
  std::set<std::string, std::less<>> lease_warned_;  ///< kept fences already logged at warning
  std::uint64_t next_id_ = 1;

  boost::asio::steady_timer* review_timer_ = nullptr;  ///< run_lease_reviews()'s, while it runs
  bool stopped_ = false;
};

}  // namespace hamail::backend

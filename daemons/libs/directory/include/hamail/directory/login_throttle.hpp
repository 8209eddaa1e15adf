#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace hamail::directory {

/// Slows and stops password guessing, shared by every protocol of a daemon.
///
/// Per client address: after `max_failures_per_address` failures within
/// `window`, that address may not try again until the window has passed
/// (answered as a temporary failure). Per account: each failure within the
/// window doubles the delay before the next answer (1 s, 2 s, 4 s … up to
/// `max_account_delay`) but never locks the account out, so a stranger cannot
/// lock a user out by failing on purpose. The two counts are independent: a
/// success clears the account's count only, never the address's, so one valid
/// login cannot reset the budget of an address guessing other accounts. Memory
/// is bounded: past `max_entries` the oldest entries are forgotten. Thread-safe.
class login_throttle {
 public:
  using clock = std::chrono::steady_clock;

  /// Limits; the defaults suit a public-facing frontend.
  struct limits {
    unsigned max_failures_per_address = 10;
    std::chrono::milliseconds window{300000};
    std::chrono::milliseconds first_delay{1000};
    std::chrono::milliseconds max_account_delay{16000};
    std::size_t max_entries = 100000;
  };

  /// What to do with a login attempt.
  struct decision {
    bool refused = false;  ///< the address is blocked: answer a temporary failure at once
    std::chrono::milliseconds delay{0};  ///< wait this long before answering a failure
  };

  /// A throttle with the default limits.
  login_throttle();
  /// A throttle with the given limits.
  explicit login_throttle(limits l) : limits_(l) {}

  /// Before checking credentials: whether `address` is blocked.
  decision before_attempt(std::string_view address, clock::time_point now = clock::now());
  /// After a failed check: records it and returns how long to wait before answering.
  decision after_failure(std::string_view address, std::string_view account,
                         clock::time_point now = clock::now());
  /// After a successful login: forgets the failures of `account`. The address's
  /// failures stay counted until its window passes.
  void after_success(std::string_view address, std::string_view account);
  /// Entries held (addresses + accounts), for tests and statistics.
  std::size_t size() const;

 private:
  struct entry {
    unsigned failures = 0;
    clock::time_point first{};
    clock::time_point last{};
  };
  using table = std::map<std::string, entry, std::less<>>;

  entry& touch(table& t, std::string_view key, clock::time_point now);
  void bound(table& t);

  limits limits_;
  mutable std::mutex mutex_;
  table addresses_;
  table accounts_;
};

}  // namespace hamail::directory

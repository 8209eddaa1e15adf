#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/core/result.hpp"

namespace hamail::auth {

/// Checks login passwords on a thread pool of its own, apart from the store's
/// disk I/O pool, so that expensive hashes (argon2, yescrypt) and fsync waits
/// never starve each other. The pool is bounded: `threads` hashes run at once
/// and at most `max_queued` more wait; a session that finds it full answers a
/// temporary failure instead of queueing without limit.
///
/// Logins for accounts that do not exist are checked too, against a dummy value
/// of the scheme and cost of the real values seen last, so that the time an
/// answer takes does not tell which accounts exist. Thread-safe.
class password_checker {
 public:
  /// The verification function; directory::verify_password unless a test hooks it.
  using verify_fn = std::function<result<bool>(std::string_view stored, std::string_view password)>;

  /// Sizes of the pool.
  struct limits {
    unsigned threads = 2;         ///< hashes computed at once
    std::size_t max_queued = 32;  ///< hashes waiting for a thread
  };

  /// Starts the pool. The dummy value starts as SHA512-CRYPT, hamail-admin's
  /// default scheme, and follows the real values checked afterwards.
  explicit password_checker(limits l, verify_fn verify = {});
  ~password_checker();
  password_checker(const password_checker&) = delete;
  password_checker& operator=(const password_checker&) = delete;

  /// Takes a place in the pool for one check; false when every thread is busy
  /// and the queue is full (answer a temporary failure). A successful claim
  /// must be followed by exactly one verify() or verify_unknown().
  bool try_claim() noexcept;
  /// Checks `password` against the `userPassword` value `stored` on the pool and
  /// frees the claimed place. Result as directory::verify_password.
  boost::asio::awaitable<result<bool>> verify(std::string stored, std::string password);
  /// Does the work of a check for an account that does not exist, against the
  /// dummy value, and frees the claimed place. Always false.
  boost::asio::awaitable<bool> verify_unknown(std::string password);
  /// The cost class (directory::password_cost_class) of the current dummy value.
  std::string dummy_cost_class() const;
  /// Waits for the checks in progress and stops the threads.
  void join();

 private:
  result<bool> check(const std::string& stored, const std::string& password);
  bool check_unknown(const std::string& password);
  void release() noexcept;

  std::size_t capacity_;
  std::atomic<std::size_t> claimed_{0};
  verify_fn verify_;
  mutable std::mutex mutex_;
  std::string dummy_;
  std::string dummy_class_;
  boost::asio::thread_pool pool_;
};

}  // namespace hamail::auth

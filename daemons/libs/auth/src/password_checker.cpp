#include "hamail/auth/password_checker.hpp"

#include <boost/asio/use_awaitable.hpp>

#include "hamail/directory/password.hpp"
#include "hamail/net/run_blocking.hpp"

namespace hamail::auth {

password_checker::password_checker(limits l, verify_fn verify)
    : capacity_(static_cast<std::size_t>(l.threads) + l.max_queued),
      verify_(verify ? std::move(verify) : verify_fn(&directory::verify_password)),
      pool_(l.threads) {
  auto first = directory::hash_password(directory::password_scheme::crypt_sha512,
                                        "no account has this password");
  if (first) {
    auto d = directory::password_like(*first);
    if (d) {
      dummy_ = std::move(*d);
      dummy_class_ = directory::password_cost_class(dummy_);
    }
  }
}

password_checker::~password_checker() { join(); }

void password_checker::join() { pool_.join(); }

bool password_checker::try_claim() noexcept {
  std::size_t n = claimed_.load();
  while (n < capacity_) {
    if (claimed_.compare_exchange_weak(n, n + 1)) return true;
  }
  return false;
}

void password_checker::release() noexcept { claimed_.fetch_sub(1); }

std::string password_checker::dummy_cost_class() const {
  std::lock_guard lock(mutex_);
  return dummy_class_;
}

result<bool> password_checker::check(const std::string& stored, const std::string& password) {
  auto r = verify_(stored, password);
  // Follow the cost of the real values, so unknown logins keep costing the same.
  const std::string cls = directory::password_cost_class(stored);
  bool differs = false;
  {
    std::lock_guard lock(mutex_);
    differs = !cls.empty() && cls != dummy_class_;
  }
  if (differs) {
    if (auto d = directory::password_like(stored)) {
      std::lock_guard lock(mutex_);
      dummy_ = std::move(*d);
      dummy_class_ = cls;
    }
  }
  release();
  return r;
}

bool password_checker::check_unknown(const std::string& password) {
  std::string dummy;
  {
    std::lock_guard lock(mutex_);
    dummy = dummy_;
  }
  if (!dummy.empty()) (void)verify_(dummy, password);
  release();
  return false;
}

boost::asio::awaitable<result<bool>> password_checker::verify(std::string stored,
                                                              std::string password) {
  // Not a coroutine: see run_blocking about GCC 12 and by-value coroutine parameters.
  auto work = [this, stored = std::move(stored), password = std::move(password)] {
    return check(stored, password);
  };
  return net::run_blocking(pool_, std::move(work));
}

boost::asio::awaitable<bool> password_checker::verify_unknown(std::string password) {
  auto work = [this, password = std::move(password)] { return check_unknown(password); };
  return net::run_blocking(pool_, std::move(work));
}

}  // namespace hamail::auth

#include "hamail/directory/login_throttle.hpp"

#include <algorithm>

namespace hamail::directory {

login_throttle::login_throttle() : login_throttle(limits{}) {}

login_throttle::entry& login_throttle::touch(table& t, std::string_view key,
                                             clock::time_point now) {
  auto it = t.find(key);
  if (it == t.end()) {
    bound(t);
    it = t.emplace(std::string(key), entry{}).first;
  }
  entry& e = it->second;
  if (e.failures != 0 && now - e.first >= limits_.window) e = entry{};  // the window has passed
  return e;
}

void login_throttle::bound(table& t) {
  if (t.size() < limits_.max_entries) return;
  // Forget the entry whose last failure is oldest. O(n), but only when full,
  // which an attack from many addresses makes rare relative to attempts.
  auto oldest = std::min_element(t.begin(), t.end(), [](const auto& a, const auto& b) {
    return a.second.last < b.second.last;
  });
  if (oldest != t.end()) t.erase(oldest);
}

login_throttle::decision login_throttle::before_attempt(std::string_view address,
                                                        clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = addresses_.find(address);
  if (it == addresses_.end()) return {};
  const entry& e = it->second;
  if (now - e.first >= limits_.window) return {};
  decision d;
  d.refused = e.failures >= limits_.max_failures_per_address;
  return d;
}

login_throttle::decision login_throttle::after_failure(std::string_view address,
                                                       std::string_view account,
                                                       clock::time_point now) {
  std::lock_guard lock(mutex_);
  decision d;
  for (auto* t : {&addresses_, &accounts_}) {
    entry& e = touch(*t, t == &addresses_ ? address : account, now);
    if (e.failures == 0) e.first = now;
    ++e.failures;
    e.last = now;
  }
  const unsigned n = accounts_.find(account)->second.failures;
  auto delay = limits_.first_delay;
  for (unsigned i = 1; i < n && delay < limits_.max_account_delay; ++i) delay *= 2;
  d.delay = std::min(delay, limits_.max_account_delay);
  d.refused = addresses_.find(address)->second.failures >= limits_.max_failures_per_address;
  return d;
}

void login_throttle::after_success(std::string_view /*address*/, std::string_view account) {
  // The address's count is deliberately kept: otherwise one account the
  // attacker owns would reset the budget for guessing every other one.
  std::lock_guard lock(mutex_);
  if (auto it = accounts_.find(account); it != accounts_.end()) accounts_.erase(it);
}

std::size_t login_throttle::size() const {
  std::lock_guard lock(mutex_);
  return addresses_.size() + accounts_.size();
}

}  // namespace hamail::directory

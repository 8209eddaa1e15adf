#include "hamail/core/shutdown_gate.hpp"

#include <utility>

namespace hamail {

shutdown_gate::ticket& shutdown_gate::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    if (gate_ != nullptr) gate_->leave();
    gate_ = std::exchange(other.gate_, nullptr);
  }
  return *this;
}

shutdown_gate::ticket::~ticket() {
  if (gate_ != nullptr) gate_->leave();
}

std::optional<shutdown_gate::ticket> shutdown_gate::enter() {
  std::lock_guard lock(mutex_);
  if (closed_) return std::nullopt;
  ++count_;
  return ticket(this);
}

void shutdown_gate::close(std::function<void()> on_drained) {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    if (count_ != 0) {
      if (on_drained) waiters_.push_back(std::move(on_drained));
      return;
    }
  }
  // Nothing in progress: drained already. Called outside the lock so the
  // callback may use the gate.
  if (on_drained) on_drained();
}

bool shutdown_gate::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::size_t shutdown_gate::in_progress() const {
  std::lock_guard lock(mutex_);
  return count_;
}

void shutdown_gate::leave() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mutex_);
    --count_;
    if (closed_ && count_ == 0) ready.swap(waiters_);
  }
  for (auto& callback : ready) callback();
}

}  // namespace hamail

#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace hamail {

/// Counts work in progress (sessions, deliveries) so a daemon can drain: once
/// closed it admits nothing new and reports when the last admitted piece ends.
/// Thread-safe.
class shutdown_gate {
 public:
  /// Proof of admission; leaving the gate happens when the ticket is destroyed.
  class ticket {
   public:
    ticket(ticket&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    ticket& operator=(ticket&& other) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket();

   private:
    friend class shutdown_gate;
    explicit ticket(shutdown_gate* g) : gate_(g) {}
    shutdown_gate* gate_;
  };

  shutdown_gate() = default;
  shutdown_gate(const shutdown_gate&) = delete;
  shutdown_gate& operator=(const shutdown_gate&) = delete;

  /// Admits one piece of work; nullopt once the gate is closed.
  std::optional<ticket> enter();
  /// Stops admitting. `on_drained` runs once, when nothing is in progress (at
  /// once if nothing is); it runs on the thread that releases the last ticket.
  void close(std::function<void()> on_drained = {});
  bool closed() const;
  /// Pieces of work admitted and not yet finished.
  std::size_t in_progress() const;

 private:
  void leave();

  mutable std::mutex mutex_;
  std::size_t count_ = 0;
  bool closed_ = false;
  std::vector<std::function<void()>> waiters_;
};

}  // namespace hamail

#include "hamail/core/shutdown_gate.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

namespace {

using hamail::shutdown_gate;

class shutdown_gate_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(shutdown_gate_test);
  CPPUNIT_TEST(drain_callback_fires_once_after_last_ticket);
  CPPUNIT_TEST(enter_after_close_is_refused);
  CPPUNIT_TEST(close_with_nothing_in_progress_fires_at_once);
  CPPUNIT_TEST(close_without_callback_still_refuses_entry);
  CPPUNIT_TEST(moved_ticket_leaves_only_once);
  CPPUNIT_TEST(move_assignment_releases_the_overwritten_ticket);
  CPPUNIT_TEST(every_close_callback_fires_when_drained);
  CPPUNIT_TEST(callback_runs_outside_the_lock);
  CPPUNIT_TEST(callback_runs_on_thread_releasing_last_ticket);
  CPPUNIT_TEST(concurrent_enter_and_close_drain_exactly_once);
  CPPUNIT_TEST_SUITE_END();

 public:
  void drain_callback_fires_once_after_last_ticket() {
    shutdown_gate gate;
    auto a = gate.enter();
    auto b = gate.enter();
    CPPUNIT_ASSERT(a && b);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, gate.in_progress());
    int fired = 0;
    gate.close([&] { ++fired; });
    CPPUNIT_ASSERT(gate.closed());
    CPPUNIT_ASSERT_EQUAL(0, fired);
    a.reset();
    CPPUNIT_ASSERT_EQUAL(0, fired);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, gate.in_progress());
    b.reset();
    CPPUNIT_ASSERT_EQUAL(1, fired);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, gate.in_progress());
    // Nothing left to release; further activity must not fire it again.
    CPPUNIT_ASSERT(!gate.enter());
    CPPUNIT_ASSERT_EQUAL(1, fired);
  }

  void enter_after_close_is_refused() {
    shutdown_gate gate;
    auto held = gate.enter();
    gate.close();
    CPPUNIT_ASSERT(!gate.enter().has_value());
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, gate.in_progress());
  }

  void close_with_nothing_in_progress_fires_at_once() {
    shutdown_gate gate;
    {
      auto t = gate.enter();
      CPPUNIT_ASSERT(t);
    }
    int fired = 0;
    gate.close([&] { ++fired; });
    CPPUNIT_ASSERT_EQUAL(1, fired);
  }

  void close_without_callback_still_refuses_entry() {
    shutdown_gate gate;
    CPPUNIT_ASSERT(!gate.closed());
    gate.close();
    CPPUNIT_ASSERT(gate.closed());
    CPPUNIT_ASSERT(!gate.enter());
  }

  void moved_ticket_leaves_only_once() {
    shutdown_gate gate;
    int fired = 0;
    auto t = gate.enter();
    CPPUNIT_ASSERT(t);
    gate.close([&] { ++fired; });
    {
      shutdown_gate::ticket moved(std::move(*t));
      t.reset();  // the moved-from ticket must not leave
      CPPUNIT_ASSERT_EQUAL(std::size_t{1}, gate.in_progress());
      CPPUNIT_ASSERT_EQUAL(0, fired);
    }
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, gate.in_progress());
    CPPUNIT_ASSERT_EQUAL(1, fired);
  }

  void move_assignment_releases_the_overwritten_ticket() {
    shutdown_gate gate;
    auto a = gate.enter();
    auto b = gate.enter();
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, gate.in_progress());
    *a = std::move(*b);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, gate.in_progress());
    b.reset();
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, gate.in_progress());
    auto& self = *a;
    *a = std::move(self);  // self-move keeps the ticket
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, gate.in_progress());
    a.reset();
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, gate.in_progress());
  }

  void every_close_callback_fires_when_drained() {
    shutdown_gate gate;
    auto t = gate.enter();
    int first = 0;
    int second = 0;
    gate.close([&] { ++first; });
    gate.close([&] { ++second; });
    CPPUNIT_ASSERT_EQUAL(0, first + second);
    t.reset();
    CPPUNIT_ASSERT_EQUAL(1, first);
    CPPUNIT_ASSERT_EQUAL(1, second);
    int late = 0;
    gate.close([&] { ++late; });  // already drained: at once
    CPPUNIT_ASSERT_EQUAL(1, late);
    CPPUNIT_ASSERT_EQUAL(1, first);
  }

  void callback_runs_outside_the_lock() {
    // A callback that touches the gate deadlocks if it runs under the mutex;
    // run it on a thread so a regression fails instead of hanging ctest.
    auto done = std::async(std::launch::async, [] {
      shutdown_gate gate;
      auto t = gate.enter();
      std::size_t seen = 99;
      bool refused = false;
      gate.close([&] {
        seen = gate.in_progress();
        refused = !gate.enter().has_value();
      });
      t.reset();
      shutdown_gate idle;
      bool idle_closed = false;
      idle.close([&] { idle_closed = idle.closed(); });
      return seen == 0 && refused && idle_closed;
    });
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      std::fputs("shutdown_gate callback deadlocked: it runs under the mutex\n", stderr);
      std::abort();
    }
    CPPUNIT_ASSERT(done.get());
  }

  void callback_runs_on_thread_releasing_last_ticket() {
    shutdown_gate gate;
    auto t = gate.enter();
    std::thread::id ran_on;
    gate.close([&] { ran_on = std::this_thread::get_id(); });
    std::thread worker([ticket = std::move(*t)]() mutable {
      auto released = std::move(ticket);  // leaves when this scope ends, on this thread
    });
    const auto worker_id = worker.get_id();
    t.reset();  // moved-from: must not count
    worker.join();
    CPPUNIT_ASSERT(ran_on == worker_id);
    CPPUNIT_ASSERT(ran_on != std::this_thread::get_id());
  }

  void concurrent_enter_and_close_drain_exactly_once() {
    for (int round = 0; round < 20; ++round) {
      shutdown_gate gate;
      std::atomic<int> fired{0};
      std::atomic<int> admitted_after_drain{0};
      std::atomic<bool> drained{false};
      std::vector<std::thread> workers;
      for (int w = 0; w < 4; ++w) {
        workers.emplace_back([&] {
          for (int i = 0; i < 2000; ++i) {
            auto t = gate.enter();
            if (!t) break;
            if (drained.load()) admitted_after_drain.fetch_add(1);
          }
        });
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      gate.close([&] {
        drained.store(true);
        fired.fetch_add(1);
      });
      for (auto& w : workers) w.join();
      CPPUNIT_ASSERT_EQUAL(1, fired.load());
      CPPUNIT_ASSERT_EQUAL(0, admitted_after_drain.load());
      CPPUNIT_ASSERT_EQUAL(std::size_t{0}, gate.in_progress());
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(shutdown_gate_test);

}  // namespace

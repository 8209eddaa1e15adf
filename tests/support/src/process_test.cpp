#include "hamail/test/process.hpp"

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "hamail/test/temp_dir.hpp"

namespace {

bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

// At global scope so that tests are named "process_test::<name>" for the runner's filter.
class process_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(process_test);
  CPPUNIT_TEST(collects_stdout_stderr_and_exit_code_apart);
  CPPUNIT_TEST(arguments_are_not_shell_expanded);
  CPPUNIT_TEST(signal_death_is_128_plus_signal);
  CPPUNIT_TEST(sigpipe_is_default_in_child);
  CPPUNIT_TEST(timeout_kills_the_whole_group);
  CPPUNIT_TEST(missing_program_throws);
  CPPUNIT_TEST(background_child_logs_and_terminates);
  CPPUNIT_TEST(terminate_escalates_to_sigkill);
  CPPUNIT_TEST(terminate_leaves_non_children_alone);
  CPPUNIT_TEST_SUITE_END();

 public:
  void collects_stdout_stderr_and_exit_code_apart() {
    auto r = hamail::test::run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
    CPPUNIT_ASSERT_EQUAL(3, r.exit_code);
    CPPUNIT_ASSERT_EQUAL(std::string("out\n"), r.out);
    CPPUNIT_ASSERT_EQUAL(std::string("err\n"), r.err);
    CPPUNIT_ASSERT(!r.timed_out);
    // More than a pipe buffer on both streams at once must not deadlock.
    auto big = hamail::test::run_command(
        {"sh", "-c", "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2"});
    CPPUNIT_ASSERT_EQUAL(0, big.exit_code);
    CPPUNIT_ASSERT_EQUAL(std::size_t{300000}, big.out.size());
    CPPUNIT_ASSERT_EQUAL(std::size_t{300000}, big.err.size());
  }

  void arguments_are_not_shell_expanded() {
    auto r = hamail::test::run_command({"printf", "%s|", "$HOME", "a b", "*", ""});
    CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
    CPPUNIT_ASSERT_EQUAL(std::string("$HOME|a b|*||"), r.out);
  }

  void signal_death_is_128_plus_signal() {
    auto r = hamail::test::run_command({"sh", "-c", "kill -TERM $$"});
    CPPUNIT_ASSERT_EQUAL(128 + SIGTERM, r.exit_code);
  }

  void sigpipe_is_default_in_child() {
    // The runner ignores SIGPIPE; children must not inherit that.
    CPPUNIT_ASSERT(std::signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    auto r = hamail::test::run_command({"grep", "^SigIgn:", "/proc/self/status"});
    CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
    // "SigIgn:\t<hex mask>": bit (signal - 1) set means ignored.
    const unsigned long long ignored = std::stoull(r.out.substr(r.out.find('\t') + 1), nullptr, 16);
    CPPUNIT_ASSERT_MESSAGE(r.out, (ignored & (1ULL << (SIGPIPE - 1))) == 0);
  }

  void timeout_kills_the_whole_group() {
    hamail::test::temp_dir d;
    const auto pid_file = d.path() / "grandchild";
    const auto start = std::chrono::steady_clock::now();
    auto r = hamail::test::run_command(
        {"sh", "-c", "sleep 30 & echo $! > " + pid_file.string() + "; wait"},
        std::chrono::milliseconds{300});
    CPPUNIT_ASSERT(r.timed_out);
    CPPUNIT_ASSERT_EQUAL(128 + SIGKILL, r.exit_code);
    CPPUNIT_ASSERT(std::chrono::steady_clock::now() - start < std::chrono::seconds{10});
    const pid_t grandchild = std::stoi(read_file(pid_file));
    // The grandchild is reparented to init (or a subreaper), which reaps it soon.
    for (int i = 0; i < 200 && !process_gone(grandchild); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    CPPUNIT_ASSERT(process_gone(grandchild));
  }

  void missing_program_throws() {
    CPPUNIT_ASSERT_THROW(hamail::test::run_command({"hamail-no-such-program"}), std::runtime_error);
    CPPUNIT_ASSERT_THROW(hamail::test::run_command({"/nonexistent/program"}), std::runtime_error);
  }

  void background_child_logs_and_terminates() {
    hamail::test::temp_dir d;
    const auto log = d.path() / "log";
    const pid_t pid = hamail::test::spawn_background(
        {"sh", "-c", "echo started; echo on-stderr >&2; exec sleep 30"}, {.log_file = log});
    CPPUNIT_ASSERT(pid > 0);
    CPPUNIT_ASSERT_EQUAL(pid, ::getpgid(pid));
    for (int i = 0; i < 500 && read_file(log).find("on-stderr") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    CPPUNIT_ASSERT_EQUAL(std::string("started\non-stderr\n"), read_file(log));
    const int status = hamail::test::terminate_child(pid);
    CPPUNIT_ASSERT(WIFSIGNALED(status));
    CPPUNIT_ASSERT_EQUAL(SIGTERM, WTERMSIG(status));
    CPPUNIT_ASSERT(process_gone(pid));
  }

  void terminate_escalates_to_sigkill() {
    hamail::test::temp_dir d;
    const auto log = d.path() / "log";
    const pid_t pid = hamail::test::spawn_background(
        {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, {.log_file = log});
    for (int i = 0; i < 500 && read_file(log).find("ready") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    const auto start = std::chrono::steady_clock::now();
    const int status = hamail::test::terminate_child(pid, std::chrono::milliseconds{300});
    CPPUNIT_ASSERT(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds{300});
    CPPUNIT_ASSERT(WIFSIGNALED(status));
    CPPUNIT_ASSERT_EQUAL(SIGKILL, WTERMSIG(status));
    CPPUNIT_ASSERT(process_gone(pid));
  }

  void terminate_leaves_non_children_alone() {
    // Our own pid is not our child: nothing may be signalled (we would die).
    CPPUNIT_ASSERT_EQUAL(-1, hamail::test::terminate_child(::getpid()));
    CPPUNIT_ASSERT_EQUAL(-1, hamail::test::terminate_child(0));
    // A child that exited on its own is reaped and its status returned.
    hamail::test::temp_dir d;
    const pid_t pid =
        hamail::test::spawn_background({"sh", "-c", "exit 7"}, {.log_file = d.path() / "log"});
    for (int i = 0; i < 500; ++i) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    const int status = hamail::test::terminate_child(pid);
    CPPUNIT_ASSERT(WIFEXITED(status));
    CPPUNIT_ASSERT_EQUAL(7, WEXITSTATUS(status));
    CPPUNIT_ASSERT_EQUAL(-1, hamail::test::terminate_child(pid));  // already reaped
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(process_test);

#include "hamail/ocf/process.hpp"

#include <arpa/inet.h>
#include <cppunit/extensions/HelperMacros.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "hamail/test/temp_dir.hpp"

using namespace hamail::ocf;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// A listening TCP socket on 127.0.0.1, port chosen by the kernel.
struct listener {
  int fd = -1;
  std::uint16_t port = 0;
  listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd); }
};

}  // namespace

class process_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(process_test);
  CPPUNIT_TEST(pid_files);
  CPPUNIT_TEST(spawned_daemon_is_detached_and_identified);
  CPPUNIT_TEST(exec_failure_is_reported);
  CPPUNIT_TEST(exit_status_and_wait_gone);
  CPPUNIT_TEST(listening_sockets_of_a_pid);
  CPPUNIT_TEST(wildcards_cover_addresses);
  CPPUNIT_TEST(mount_points);
  CPPUNIT_TEST_SUITE_END();

 public:
  void pid_files() {
    hamail::test::temp_dir dir;
    const auto f = dir.path() / "x.pid";
    CPPUNIT_ASSERT(!read_pid_file(f));
    write(f, "1234\n");
    CPPUNIT_ASSERT(read_pid_file(f) == 1234);
    write(f, "  42 ");
    CPPUNIT_ASSERT(read_pid_file(f) == 42);
    for (const char* bad : {"", "abc", "-5", "0", "12 13", "99999999999999999999"}) {
      write(f, bad);
      CPPUNIT_ASSERT_MESSAGE(bad, !read_pid_file(f));
    }
  }

  void spawned_daemon_is_detached_and_identified() {
    hamail::test::temp_dir dir;
    const auto config = dir.path() / "a.toml";
    write(config, "");
    // sh is a symlink on Debian (to dash): identity compares resolved programs.
    spawn_options o;
    o.argv = {"/bin/sh", "-c", "echo started; exec sleep 30", "--config", config.string()};
    o.output = dir.path() / "out";
    const auto r = spawn_detached(o);
    CPPUNIT_ASSERT_EQUAL(std::string(), r.error);
    CPPUNIT_ASSERT(r.pid > 0);
    CPPUNIT_ASSERT_EQUAL(r.pid, ::getsid(r.pid));
    CPPUNIT_ASSERT_EQUAL(r.pid, ::getpgid(r.pid));
    CPPUNIT_ASSERT(process_alive(r.pid));
    // "exec sleep" replaces the shell: the identity follows the exe, so it no longer matches.
    // (Wait for the exec by watching the exe, not a fixed delay: test machines are loaded.)
    const auto shell = fs::canonical("/bin/sh");
    for (int i = 0; i < 500 && process_exe(r.pid) == shell; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CPPUNIT_ASSERT(!is_instance(r.pid, {"/bin/sh", config}));
    CPPUNIT_ASSERT(send_signal(r.pid, SIGKILL));
    CPPUNIT_ASSERT(
        wait_gone({r.pid}, std::chrono::steady_clock::now() + std::chrono::seconds(5)).empty());
    std::ifstream out(o.output);
    std::string line;
    std::getline(out, line);
    CPPUNIT_ASSERT_EQUAL(std::string("started"), line);

    // A shell that stays a shell is an instance of (/bin/sh, config) and of nothing else.
    o.argv = {"/bin/sh", "-c", "sleep 30; true", "--config", config.string()};
    const auto r2 = spawn_detached(o);
    CPPUNIT_ASSERT(r2.pid > 0);
    CPPUNIT_ASSERT(is_instance(r2.pid, {"/bin/sh", config}));
    CPPUNIT_ASSERT(is_instance(r2.pid, {fs::canonical("/bin/sh"), config}));
    CPPUNIT_ASSERT(!is_instance(r2.pid, {"/bin/sh", dir.path() / "b.toml"}));
    CPPUNIT_ASSERT(!is_instance(r2.pid, {"/bin/bash", config}));
    // The shell forks the child that runs "sleep" from itself: until that child
    // has exec'ed, it is a second copy of the same shell with the same command
    // line. Wait for it to become sleep (seen once on a loaded CI machine).
    auto found = find_instances({"/bin/sh", config});
    for (int i = 0; i < 500 && found.size() != 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      found = find_instances({"/bin/sh", config});
    }
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT_EQUAL(r2.pid, found.front());
    send_signal(r2.pid, SIGKILL);
    CPPUNIT_ASSERT(
        wait_gone({r2.pid}, std::chrono::steady_clock::now() + std::chrono::seconds(5)).empty());
    CPPUNIT_ASSERT(find_instances({"/bin/sh", config}).empty());
  }

  void exec_failure_is_reported() {
    spawn_options o;
    o.argv = {"/nonexistent/program"};
    const auto r = spawn_detached(o);
    CPPUNIT_ASSERT(r.pid < 0);
    CPPUNIT_ASSERT(r.error.find("exec") != std::string::npos);
  }

  void exit_status_and_wait_gone() {
    spawn_options o;
    o.argv = {"/bin/sh", "-c", "exit 78"};
    const auto r = spawn_detached(o);
    CPPUNIT_ASSERT(r.pid > 0);
    std::optional<int> st;
    for (int i = 0; i < 500 && !st; ++i) {
      st = exit_status(r.pid);
      if (!st) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CPPUNIT_ASSERT(st == 78);
    CPPUNIT_ASSERT(!process_alive(r.pid));
    CPPUNIT_ASSERT(!exit_status(::getpid()));  // not our child
  }

  void listening_sockets_of_a_pid() {
    listener l;
    const auto mine = listening_sockets(::getpid());
    bool seen = false;
    for (const auto& s : mine) seen |= s.address == "127.0.0.1" && s.port == l.port;
    CPPUNIT_ASSERT(seen);
    const auto pids = listeners_of("127.0.0.1", l.port);
    CPPUNIT_ASSERT(std::find(pids.begin(), pids.end(), ::getpid()) != pids.end());
    CPPUNIT_ASSERT(listeners_of("127.0.0.2", l.port).empty());
  }

  void wildcards_cover_addresses() {
    CPPUNIT_ASSERT(covers({"0.0.0.0", 25}, "10.1.2.3"));
    CPPUNIT_ASSERT(!covers({"0.0.0.0", 25}, "2001:db8::1"));
    CPPUNIT_ASSERT(covers({"::", 25}, "2001:db8::1"));
    CPPUNIT_ASSERT(covers({"::", 25}, "10.1.2.3"));
    CPPUNIT_ASSERT(covers({"10.1.2.3", 25}, "10.1.2.3"));
    CPPUNIT_ASSERT(covers({"10.1.2.3", 25}, "::ffff:10.1.2.3"));
    CPPUNIT_ASSERT(covers({"2001:db8::1", 25}, "2001:DB8:0::1"));
    CPPUNIT_ASSERT(!covers({"10.1.2.3", 25}, "10.1.2.4"));
  }

  void mount_points() {
    CPPUNIT_ASSERT(is_mount_point("/"));
    CPPUNIT_ASSERT(is_mount_point("/proc"));
    hamail::test::temp_dir dir;
    CPPUNIT_ASSERT(!is_mount_point(dir.path()));
    CPPUNIT_ASSERT(!is_mount_point(dir.path() / "missing"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(process_test);

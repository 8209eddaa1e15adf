// ldap_directory against real slapd servers loaded with ldap-schema/: lookups,
// mapping, injection attempts, failover, timeouts, TLS, binds and the cache.
// Every slapd is started by the test and stopped by its pid.

#include "hamail/directory/ldap_directory.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/directory/cached_directory.hpp"
#include "hamail/directory/password.hpp"
#include "hamail/test/ports.hpp"
#include "hamail/test/process.hpp"
#include "hamail/test/temp_dir.hpp"
#include "hamail/test/test_ca.hpp"
#include "ldap_test_support.hpp"

using namespace hamail;
using namespace hamail::directory;
using namespace hamail::test;
using namespace std::chrono_literals;
using lookup_result = result<std::optional<account>>;
using steady = std::chrono::steady_clock;

namespace {

const std::string suffix = "dc=example,dc=org";
const std::string root_dn = "cn=admin,dc=example,dc=org";
const std::string root_password = "secret";
const std::string alice_dn = "uid=alice,ou=accounts,dc=example,dc=org";
const std::string service_dn = "cn=hamail,dc=example,dc=org";
const std::string service_password = "service password 7";

/// An account that only server B holds: finding it tells which server answered.
const char* const marker_ldif = R"(dn: uid=only-on-b,ou=accounts,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: hamailAccount
uid: only-on-b
cn: Marker
sn: Marker
mail: only-on-b@example.org
hamailOwningStore: store-b
)";

/// Runs one awaitable to completion on a private io_context.
template <class R>
R await_now(boost::asio::awaitable<R> op) {
  boost::asio::io_context io;
  std::optional<R> out;
  auto body = [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(op)); };
  boost::asio::co_spawn(io, body(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  CPPUNIT_ASSERT(out.has_value());
  return std::move(*out);
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  CPPUNIT_ASSERT(static_cast<bool>(out));
  ::chmod(p.c_str(), 0600);
}

std::string describe(const lookup_result& r) {
  if (!r) return "error " + r.err().describe();
  return r->has_value() ? "found " + (*r)->id : "not found";
}

bool found_id(const lookup_result& r, const std::string& id) {
  return r.has_value() && r->has_value() && (*r)->id == id;
}

bool not_found(const lookup_result& r) { return r.has_value() && !r->has_value(); }

std::chrono::milliseconds since(steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
}

/// The process state letter from /proc/<pid>/stat ('T' when stopped).
char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() ? '?' : text[paren + 2];
}

/// SIGSTOPs a process (a server that accepts connections but never answers) and
/// SIGCONTs it on destruction, before anyone tries to stop it.
class frozen_process {
 public:
  explicit frozen_process(pid_t pid) : pid_(pid) {
    CPPUNIT_ASSERT(pid_ > 0);
    CPPUNIT_ASSERT_EQUAL(0, ::kill(pid_, SIGSTOP));
    for (int i = 0; i < 200 && process_state(pid_) != 'T'; ++i) std::this_thread::sleep_for(5ms);
    CPPUNIT_ASSERT_EQUAL('T', process_state(pid_));
  }
  ~frozen_process() { ::kill(pid_, SIGCONT); }
  frozen_process(const frozen_process&) = delete;
  frozen_process& operator=(const frozen_process&) = delete;

 private:
  pid_t pid_;
};

/// slapd started again on a stopped instance's port and configuration;
/// stopped by its pid on destruction.
class restarted_slapd {
 public:
  restarted_slapd(const std::filesystem::path& dir, const slapd_instance& old) {
    CPPUNIT_ASSERT_EQUAL(pid_t{-1}, old.pid());
    pid_ = spawn_background(
        {"/usr/sbin/slapd", "-d", "none", "-F", (dir / "slapd.d").string(), "-h", old.uri()},
        {.log_file = dir / "slapd-restarted.log", .die_with_parent = true});
    const auto deadline = steady::now() + 20s;
    while (!port_accepts("127.0.0.1", old.port(), 200ms)) {
      CPPUNIT_ASSERT_MESSAGE("restarted slapd does not accept", steady::now() < deadline);
      std::this_thread::sleep_for(20ms);
    }
  }
  ~restarted_slapd() { terminate_child(pid_, 5s); }
  restarted_slapd(const restarted_slapd&) = delete;
  restarted_slapd& operator=(const restarted_slapd&) = delete;

 private:
  pid_t pid_ = -1;
};

/// Captures what this process writes to file descriptor 2 while it lives.
class stderr_capture {
 public:
  explicit stderr_capture(std::filesystem::path file) : file_(std::move(file)) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CPPUNIT_ASSERT(saved_ >= 0 && fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
  }
  /// Restores stderr and returns what was written.
  std::string finish() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
    std::ifstream in(file_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  ~stderr_capture() { finish(); }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;

 private:
  std::filesystem::path file_;
  int saved_ = -1;
};

}  // namespace

class ldap_directory_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ldap_directory_test);
  CPPUNIT_TEST(finds_account_by_primary_address_with_every_field);
  CPPUNIT_TEST(finds_account_by_alias_case_insensitively);
  CPPUNIT_TEST(finds_account_by_uid_and_by_mail_but_not_by_alias);
  CPPUNIT_TEST(unknown_address_and_login_are_empty_not_errors);
  CPPUNIT_TEST(locked_state_and_default_quotas_are_mapped);
  CPPUNIT_TEST(injection_in_login_or_address_finds_nothing_and_is_no_error);
  CPPUNIT_TEST(address_held_by_two_accounts_is_a_temporary_error);
  CPPUNIT_TEST(find_store_returns_the_service_record);
  CPPUNIT_TEST(password_check_end_to_end);
  CPPUNIT_TEST(bind_secret_is_read_from_file_and_a_wrong_one_never_leaks);
  CPPUNIT_TEST(anonymous_bind_finds_accounts_but_not_passwords);
  CPPUNIT_TEST(documented_acl_lets_the_service_dn_read_what_it_needs);
  CPPUNIT_TEST(bind_as_checks_user_passwords_on_the_server);
  CPPUNIT_TEST(starttls_with_ca_file_and_wrong_ca_is_refused);
  CPPUNIT_TEST(failover_from_dead_port_to_second_server);
  CPPUNIT_TEST(failover_when_first_server_stops_and_back_when_it_returns);
  CPPUNIT_TEST(both_servers_down_is_a_temporary_error_within_the_timeout);
  CPPUNIT_TEST(broken_pooled_connection_is_replaced_transparently);
  CPPUNIT_TEST(unanswering_server_times_out_without_blocking_the_event_loop);
  CPPUNIT_TEST(unanswering_first_server_fails_over_within_one_lookup);
  CPPUNIT_TEST(hung_pooled_connection_fails_over_within_one_lookup);
  CPPUNIT_TEST(destruction_ends_queued_lookups_with_shutting_down);
  CPPUNIT_TEST(concurrent_lookups_share_the_pool);
  CPPUNIT_TEST(cache_over_ldap_saves_searches_until_ttl);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    dir_.emplace();
    secret_file_ = dir_->path() / "bind.secret";
    write_file(secret_file_, root_password + "\n");
  }

  void tearDown() override {
    // Servers first (stopped by pid), then their files.
    for (auto& s : slapds_) s.reset();
    slapds_.clear();
    dir_.reset();
  }

  // --- lookups -----------------------------------------------------------------

  void finds_account_by_primary_address_with_every_field() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    auto r = await_now(d->find_by_address("alice@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "alice"));
    const account& alice = **r;
    CPPUNIT_ASSERT_EQUAL(std::string("alice"), alice.login);
    CPPUNIT_ASSERT_EQUAL(std::string("alice@example.org"), alice.primary_address);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, alice.aliases.size());
    CPPUNIT_ASSERT_EQUAL(std::string("a.smith@example.org"), alice.aliases[0]);
    CPPUNIT_ASSERT_EQUAL(std::string("postmaster@example.org"), alice.aliases[1]);
    CPPUNIT_ASSERT_EQUAL(std::string("store-a"), alice.owning_store);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1073741824}, alice.quota_bytes);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{100000}, alice.quota_messages);
    CPPUNIT_ASSERT(alice.state == account_state::active);
    CPPUNIT_ASSERT_EQUAL(std::string("{SSHA512}"), alice.password_hash.substr(0, 9));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1}, d->search_count());
  }

  void finds_account_by_alias_case_insensitively() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    for (const char* address : {"a.smith@example.org", "A.Smith@EXAMPLE.org",
                                "postmaster@example.org", "ALICE@example.org"}) {
      auto r = await_now(d->find_by_address(address));
      CPPUNIT_ASSERT_MESSAGE(address + (": " + describe(r)), found_id(r, "alice"));
      CPPUNIT_ASSERT_EQUAL(std::string("alice@example.org"), (*r)->primary_address);
    }
  }

  void finds_account_by_uid_and_by_mail_but_not_by_alias() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    for (const char* login : {"alice", "ALICE", "alice@example.org", "Alice@Example.Org"}) {
      auto r = await_now(d->find_by_login(login));
      CPPUNIT_ASSERT_MESSAGE(login + (": " + describe(r)), found_id(r, "alice"));
    }
    // Aliases receive mail but are no login names (as memory_directory).
    auto r = await_now(d->find_by_login("a.smith@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), not_found(r));
  }

  void unknown_address_and_login_are_empty_not_errors() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    auto r = await_now(d->find_by_address("nobody@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), not_found(r));
    r = await_now(d->find_by_login("nobody"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), not_found(r));
    r = await_now(d->find_by_login(""));
    CPPUNIT_ASSERT_MESSAGE(describe(r), not_found(r));
    r = await_now(d->find_by_address(std::string(5000, 'a') + "@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), not_found(r));
  }

  void locked_state_and_default_quotas_are_mapped() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    auto carol = await_now(d->find_by_login("carol"));
    CPPUNIT_ASSERT_MESSAGE(describe(carol), found_id(carol, "carol"));
    CPPUNIT_ASSERT(carol.value()->state == account_state::locked);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{536870912}, carol.value()->quota_bytes);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{0}, carol.value()->quota_messages);
    auto bob = await_now(d->find_by_address("bob@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(bob), found_id(bob, "bob"));
    CPPUNIT_ASSERT(bob.value()->state == account_state::active);  // attribute absent
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{0}, bob.value()->quota_bytes);
    CPPUNIT_ASSERT(bob.value()->aliases.empty());
    CPPUNIT_ASSERT_EQUAL(std::string("store-b"), bob.value()->owning_store);
  }

  void injection_in_login_or_address_finds_nothing_and_is_no_error() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    // Unescaped, each of these would match every account (an ambiguous-answer
    // error) or alice; escaped they are plain values that match nothing.
    const std::vector<std::string> attacks = {"*",
                                              "alice)(uid=*",
                                              "*)(|(uid=*",
                                              "alice*",
                                              "*@example.org",
                                              "alice)",
                                              "*)",
                                              "\\2a",
                                              "\\",
                                              "(",
                                              std::string("alice\0", 6),
                                              "\xff\xfe",
                                              "alice)(|(objectClass=*"};
    for (const auto& attack : attacks) {
      const auto searches = d->search_count();
      auto r = await_now(d->find_by_login(attack));
      CPPUNIT_ASSERT_MESSAGE("login [" + attack + "]: " + describe(r), not_found(r));
      r = await_now(d->find_by_address(attack));
      CPPUNIT_ASSERT_MESSAGE("address [" + attack + "]: " + describe(r), not_found(r));
      // The server was asked both times: "nothing" is its answer, not a shortcut.
      CPPUNIT_ASSERT_EQUAL(searches + 2, d->search_count());
    }
    auto s = await_now(d->find_store("*"));
    CPPUNIT_ASSERT(s.has_value() && !s->has_value());
    // The same directory still finds alice.
    CPPUNIT_ASSERT(found_id(await_now(d->find_by_login("alice")), "alice"));
  }

  void address_held_by_two_accounts_is_a_temporary_error() {
    auto& a = start_slapd("a");
    auto root = root_ldap(a);
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS, root->modify("uid=bob,ou=accounts," + suffix,
                                   {{LDAP_MOD_ADD, "mailLocalAddress", {"a.smith@example.org"}}}));
    auto d = make_directory(settings({a.uri()}));
    auto r = await_now(d->find_by_address("a.smith@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), !r.has_value());
    CPPUNIT_ASSERT(r.err().is_temporary());
    CPPUNIT_ASSERT_MESSAGE(r.err().detail, r.err().detail.find("ambiguous") != std::string::npos);
  }

  void find_store_returns_the_service_record() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    auto r = await_now(d->find_store("store-a"));
    CPPUNIT_ASSERT(r.has_value() && r->has_value());
    const store_record& s = **r;
    CPPUNIT_ASSERT_EQUAL(std::string("store-a"), s.name);
    CPPUNIT_ASSERT_EQUAL(std::string("store-a.mail.example.org"), s.service_host);
    CPPUNIT_ASSERT_EQUAL(std::string("192.0.2.10"), s.service_address);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{25}, s.smtp_port);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{24}, s.lmtp_port);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{143}, s.imap_port);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{110}, s.pop3_port);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{100}, s.capacity_weight);
    CPPUNIT_ASSERT(s.state == store_state::open);
    auto b = await_now(d->find_store("STORE-B"));
    CPPUNIT_ASSERT(b.has_value() && b->has_value());
    CPPUNIT_ASSERT(b.value()->state == store_state::draining);
    CPPUNIT_ASSERT_EQUAL(std::uint16_t{1143}, b.value()->imap_port);
    // The owning store of an account leads to the host its mailHost names.
    auto alice = await_now(d->find_by_login("alice"));
    CPPUNIT_ASSERT(found_id(alice, "alice"));
    auto owner = await_now(d->find_store(alice.value()->owning_store));
    CPPUNIT_ASSERT(owner.has_value() && owner->has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("store-a.mail.example.org"), owner.value()->service_host);
    auto none = await_now(d->find_store("store-z"));
    CPPUNIT_ASSERT(none.has_value() && !none->has_value());
  }

  void password_check_end_to_end() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    const std::pair<const char*, const char*> users[] = {
        {"alice", "alice-example-password"},
        {"bob@example.org", "bob-example-password"},
        {"carol", "carol-example-password"}};
    for (const auto& [login, password] : users) {
      auto r = await_now(d->find_by_login(login));
      CPPUNIT_ASSERT_MESSAGE(describe(r), r.has_value() && r->has_value());
      auto ok = verify_password((*r)->password_hash, password);
      CPPUNIT_ASSERT_MESSAGE(login, ok.has_value() && *ok);
      auto wrong = verify_password((*r)->password_hash, std::string(password) + "!");
      CPPUNIT_ASSERT_MESSAGE(login, wrong.has_value() && !*wrong);
    }
  }

  // --- binding -------------------------------------------------------------------

  void bind_secret_is_read_from_file_and_a_wrong_one_never_leaks() {
    auto& a = start_slapd("a");
    // The secret file ends in a newline (setUp); it is stripped, or the bind fails.
    {
      auto d = make_directory(settings({a.uri()}));
      auto r = await_now(d->find_by_login("alice"));
      CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "alice"));
      CPPUNIT_ASSERT(!(*r)->password_hash.empty());
    }
    const std::string wrong_secret = "not-the-root-password-41";
    write_file(secret_file_, wrong_secret + "\n");
    stderr_capture capture(dir_->path() / "stderr.txt");
    auto d = make_directory(settings({a.uri()}));
    auto r = await_now(d->find_by_login("alice"));
    d.reset();
    const std::string logged = capture.finish();
    CPPUNIT_ASSERT_MESSAGE(describe(r), !r.has_value());
    CPPUNIT_ASSERT(r.err().is_temporary());
    CPPUNIT_ASSERT_MESSAGE(r.err().detail,
                           r.err().detail.find("Invalid credentials") != std::string::npos);
    CPPUNIT_ASSERT(r.err().detail.find(wrong_secret) == std::string::npos);
    CPPUNIT_ASSERT(r.err().user_text.find(wrong_secret) == std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(logged, logged.find(wrong_secret) == std::string::npos);
  }

  void anonymous_bind_finds_accounts_but_not_passwords() {
    auto& a = start_slapd("a");
    auto s = settings({a.uri()});
    s.bind_dn.clear();
    s.bind_secret_file.clear();
    auto d = make_directory(s);
    auto r = await_now(d->find_by_address("a.smith@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "alice"));
    // slapd_instance's ACL gives anonymous users "auth" on userPassword only.
    CPPUNIT_ASSERT_EQUAL(std::string(), (*r)->password_hash);
    auto check = verify_password((*r)->password_hash, "alice-example-password");
    CPPUNIT_ASSERT(!check.has_value() || !*check);
  }

  void documented_acl_lets_the_service_dn_read_what_it_needs() {
    auto& a = start_slapd("a");
    auto root = root_ldap(a);
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS,
        root->add(service_dn, {{"objectClass", {"organizationalRole", "simpleSecurityObject"}},
                               {"cn", {"hamail"}},
                               {"userPassword", {ssha_hash(service_password)}}}));
    // The olcAccess of docs/directory.md, for suffix dc=example,dc=org.
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS,
        root->modify("olcDatabase={1}mdb,cn=config",
                     {{LDAP_MOD_REPLACE,
                       "olcAccess",
                       {"{0}to attrs=userPassword"
                        " by dn.exact=\"cn=hamail,dc=example,dc=org\" read"
                        " by self =xw by anonymous auth by * none",
                        "{1}to dn.subtree=\"ou=accounts,dc=example,dc=org\""
                        " by dn.exact=\"cn=hamail,dc=example,dc=org\" read by * none",
                        "{2}to dn.subtree=\"ou=stores,dc=example,dc=org\""
                        " by dn.exact=\"cn=hamail,dc=example,dc=org\" read by * none",
                        "{3}to dn.base=\"dc=example,dc=org\""
                        " by dn.exact=\"cn=hamail,dc=example,dc=org\" search by * none",
                        "{4}to * by * none"}}}));
    write_file(secret_file_, service_password + "\n");
    auto s = settings({a.uri()});
    s.bind_dn = service_dn;
    auto d = make_directory(s);
    auto r = await_now(d->find_by_address("a.smith@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "alice"));
    auto ok = verify_password((*r)->password_hash, "alice-example-password");
    CPPUNIT_ASSERT(ok.has_value() && *ok);
    auto store = await_now(d->find_store("store-b"));
    CPPUNIT_ASSERT(store.has_value() && store->has_value());
    // Anyone else cannot even see the base: slapd answers noSuchObject, which is
    // a temporary error (a misconfigured bind DN must defer mail, not bounce it).
    auto anon = settings({a.uri()});
    anon.bind_dn.clear();
    anon.bind_secret_file.clear();
    auto nobody = make_directory(anon);
    auto hidden = await_now(nobody->find_by_address("a.smith@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(hidden), !hidden.has_value() && hidden.err().is_temporary());
    CPPUNIT_ASSERT_MESSAGE(hidden.err().detail,
                           hidden.err().detail.find("No such object") != std::string::npos);
    // Users can still bind (by anonymous auth).
    CPPUNIT_ASSERT_EQUAL(LDAP_SUCCESS, root->bind(service_dn, service_password));
  }

  void bind_as_checks_user_passwords_on_the_server() {
    auto& a = start_slapd("a");
    // slapd needs pw-sha2 to check {SSHA512} (docs/directory.md says so).
    auto root = root_ldap(a);
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS,
        root->modify("cn=module{0},cn=config", {{LDAP_MOD_ADD, "olcModuleLoad", {"pw-sha2"}}}));
    auto d = make_directory(settings({a.uri()}));
    auto r = await_now(d->bind_as(alice_dn, "alice-example-password"));
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value() && *r);
    r = await_now(d->bind_as(alice_dn, "wrong password"));
    CPPUNIT_ASSERT(r.has_value() && !*r);
    r = await_now(d->bind_as("uid=nobody,ou=accounts," + suffix, "x"));
    CPPUNIT_ASSERT(r.has_value() && !*r);
    // An empty password would be an unauthenticated bind, which slapd accepts.
    r = await_now(d->bind_as(alice_dn, ""));
    CPPUNIT_ASSERT(r.has_value() && !*r);
    // A server that cannot be reached is an error, not a wrong password.
    auto dead = make_directory(settings({dead_uri()}));
    r = await_now(dead->bind_as(alice_dn, "alice-example-password"));
    CPPUNIT_ASSERT(!r.has_value() && r.err().is_temporary());
  }

  void starttls_with_ca_file_and_wrong_ca_is_refused() {
    auto& a = start_slapd("a");
    const auto ca = test_ca::make(dir_->path() / "ca", {"127.0.0.1", "localhost"});
    const auto other_ca = test_ca::make(dir_->path() / "other-ca", {"127.0.0.1"});
    auto root = root_ldap(a);
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS,
        root->modify("cn=config",
                     {{LDAP_MOD_REPLACE, "olcTLSCertificateFile", {ca.fullchain.string()}},
                      {LDAP_MOD_REPLACE, "olcTLSCertificateKeyFile", {ca.server_key.string()}}}));
    auto s = settings({a.uri()});
    s.starttls = true;
    s.ca_file = ca.ca_cert.string();
    auto d = make_directory(s);
    auto r = await_now(d->find_by_login("alice"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "alice"));

    s.ca_file = other_ca.ca_cert.string();
    auto untrusting = make_directory(s);
    r = await_now(untrusting->find_by_login("alice"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), !r.has_value());
    CPPUNIT_ASSERT(r.err().is_temporary());
    CPPUNIT_ASSERT_MESSAGE(r.err().detail, r.err().detail.find("StartTLS") != std::string::npos);
  }

  // --- failover and timeouts ------------------------------------------------------

  void failover_from_dead_port_to_second_server() {
    auto& b = start_slapd("b", true);
    auto d = make_directory(settings({dead_uri(), b.uri()}));
    auto r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "only-on-b"));
    r = await_now(d->find_by_address("alice@example.org"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "alice"));
  }

  void failover_when_first_server_stops_and_back_when_it_returns() {
    auto& a = start_slapd("a");
    auto& b = start_slapd("b", true);
    auto s = settings({a.uri(), b.uri()});
    s.pool_size = 1;        // one connection: the test knows which one is used
    s.retry_interval = 2s;  // long enough to restart A within it on a busy machine
    auto d = make_directory(s);
    auto r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE("A answers first: " + describe(r), not_found(r));

    a.stop();
    r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE("B answers once A is gone: " + describe(r), found_id(r, "only-on-b"));
    const auto b_since = steady::now();

    restarted_slapd a_again(dir_->path() / "a", a);
    r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE("A is still skipped: " + describe(r), found_id(r, "only-on-b"));
    std::this_thread::sleep_until(b_since + s.retry_interval + 100ms);
    r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE("back on A after retry_interval: " + describe(r), not_found(r));
    CPPUNIT_ASSERT(found_id(await_now(d->find_by_login("alice")), "alice"));
  }

  void both_servers_down_is_a_temporary_error_within_the_timeout() {
    auto& a = start_slapd("a");
    auto& b = start_slapd("b", true);
    auto s = settings({a.uri(), b.uri()});
    s.timeout = 1500ms;
    auto d = make_directory(s);
    CPPUNIT_ASSERT(found_id(await_now(d->find_by_login("alice")), "alice"));
    a.stop();
    b.stop();
    for (int i = 0; i < 3; ++i) {
      const auto start = steady::now();
      auto r = await_now(d->find_by_login("alice"));
      CPPUNIT_ASSERT_MESSAGE(describe(r), !r.has_value());
      CPPUNIT_ASSERT(r.err().is_temporary());
      CPPUNIT_ASSERT(r.err().code == errc::unavailable || r.err().code == errc::timed_out);
      CPPUNIT_ASSERT_MESSAGE(std::to_string(since(start).count()) + " ms",
                             since(start) <= s.timeout + 500ms);
    }
  }

  void broken_pooled_connection_is_replaced_transparently() {
    auto& a = start_slapd("a");
    auto s = settings({a.uri()});
    s.pool_size = 1;
    auto d = make_directory(s);
    CPPUNIT_ASSERT(found_id(await_now(d->find_by_login("alice")), "alice"));
    a.stop();  // the pooled connection dies with it
    restarted_slapd again(dir_->path() / "a", a);
    auto r = await_now(d->find_by_login("alice"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "alice"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{3}, d->search_count());  // 1 + the failed one + retry
  }

  void unanswering_server_times_out_without_blocking_the_event_loop() {
    auto& a = start_slapd("a");
    auto s = settings({a.uri()});
    s.timeout = 1000ms;
    auto d = make_directory(s);
    CPPUNIT_ASSERT(found_id(await_now(d->find_by_login("alice")), "alice"));
    frozen_process frozen(a.pid());

    boost::asio::io_context io;
    std::optional<lookup_result> got;
    bool done = false;
    int ticks = 0;
    const auto start = steady::now();
    auto lookup = [&]() -> boost::asio::awaitable<void> {
      got.emplace(co_await d->find_by_login("alice"));
      done = true;
    };
    auto ticker = [&]() -> boost::asio::awaitable<void> {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
      while (!done) {
        timer.expires_after(20ms);
        co_await timer.async_wait(boost::asio::use_awaitable);
        ++ticks;
      }
    };
    boost::asio::co_spawn(io, lookup(), boost::asio::detached);
    boost::asio::co_spawn(io, ticker(), boost::asio::detached);
    io.run();
    const auto took = since(start);
    CPPUNIT_ASSERT(got.has_value());
    CPPUNIT_ASSERT_MESSAGE(describe(*got), !got->has_value());
    CPPUNIT_ASSERT(got->err().code == errc::timed_out);
    CPPUNIT_ASSERT(got->err().is_temporary());
    CPPUNIT_ASSERT_MESSAGE(std::to_string(took.count()) + " ms", took >= 900ms && took <= 2000ms);
    // The loop kept running while the lookup waited: ~50 ticks of 20 ms.
    CPPUNIT_ASSERT_MESSAGE(std::to_string(ticks) + " ticks", ticks >= 20);
  }

  void unanswering_first_server_fails_over_within_one_lookup() {
    auto& a = start_slapd("a");
    auto& b = start_slapd("b", true);
    auto s = settings({a.uri(), b.uri()});
    s.timeout = 2000ms;
    auto d = make_directory(s);
    frozen_process frozen(a.pid());
    // A accepts the TCP connection (the kernel does) but never answers the bind:
    // it gets half the time, B the rest.
    const auto start = steady::now();
    auto r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "only-on-b"));
    CPPUNIT_ASSERT_MESSAGE(std::to_string(since(start).count()) + " ms",
                           since(start) <= s.timeout + 500ms);
    // A is now skipped: the next lookup is quick.
    const auto again = steady::now();
    r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "only-on-b"));
    CPPUNIT_ASSERT(since(again) < 500ms);
  }

  // A server that stops answering on an established connection (its node lost power, or
  // a partition: no reset ever comes) costs half the lookup's time, not all of it: the same
  // lookup is answered by the other server, and the next ones go there directly.
  void hung_pooled_connection_fails_over_within_one_lookup() {
    auto& a = start_slapd("a");
    auto& b = start_slapd("b", true);
    auto s = settings({a.uri(), b.uri()});
    s.timeout = 1000ms;
    s.pool_size = 1;
    auto d = make_directory(s);
    CPPUNIT_ASSERT(not_found(await_now(d->find_by_login("only-on-b"))));  // on A
    frozen_process frozen(a.pid());
    const auto start = steady::now();
    auto r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "only-on-b"));
    CPPUNIT_ASSERT(since(start) <= s.timeout + 500ms);
    const auto again = steady::now();
    r = await_now(d->find_by_login("only-on-b"));
    CPPUNIT_ASSERT_MESSAGE(describe(r), found_id(r, "only-on-b"));
    CPPUNIT_ASSERT(since(again) < 300ms);  // A is skipped now
  }

  void destruction_ends_queued_lookups_with_shutting_down() {
    auto& a = start_slapd("a");
    auto s = settings({a.uri()});
    s.timeout = 1000ms;
    s.pool_size = 1;
    auto d = make_directory(s);
    CPPUNIT_ASSERT(found_id(await_now(d->find_by_login("alice")), "alice"));
    frozen_process frozen(a.pid());
    boost::asio::io_context io;
    std::vector<lookup_result> results;
    auto lookup = [&]() -> boost::asio::awaitable<void> {
      results.push_back(co_await d->find_by_login("alice"));
    };
    for (int i = 0; i < 3; ++i) boost::asio::co_spawn(io, lookup(), boost::asio::detached);
    io.run_for(200ms);  // one lookup is with the worker, two wait in the queue
    CPPUNIT_ASSERT(results.empty());
    d.reset();  // waits for the one in flight (its timeout), ends the others
    io.restart();
    io.run();
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, results.size());
    int timed_out = 0;
    int shutting_down = 0;
    for (const auto& r : results) {
      CPPUNIT_ASSERT(!r.has_value() && r.err().is_temporary());
      if (r.err().code == errc::timed_out) ++timed_out;
      if (r.err().code == errc::shutting_down) ++shutting_down;
    }
    CPPUNIT_ASSERT_EQUAL(1, timed_out);
    CPPUNIT_ASSERT_EQUAL(2, shutting_down);
  }

  // --- pool and cache ---------------------------------------------------------------

  void concurrent_lookups_share_the_pool() {
    auto& a = start_slapd("a");
    auto s = settings({a.uri()});
    s.pool_size = 3;
    auto d = make_directory(s);
    boost::asio::io_context io;
    int found = 0;
    int wrong = 0;
    const std::vector<std::pair<std::string, std::string>> lookups = {
        {"alice@example.org", "alice"},
        {"a.smith@example.org", "alice"},
        {"bob@example.org", "bob"},
        {"carol@example.org", "carol"},
        {"nobody@example.org", ""}};
    // The lambda outlives io.run(): a coroutine lambda's captures live in the
    // lambda object, not in the coroutine frame.
    auto one = [&](std::size_t k) -> boost::asio::awaitable<void> {
      const auto& [address, id] = lookups[k % lookups.size()];
      auto r = co_await d->find_by_address(address);
      const bool right = id.empty() ? not_found(r) : found_id(r, id);
      ++(right ? found : wrong);
    };
    for (std::size_t i = 0; i < 40; ++i) boost::asio::co_spawn(io, one(i), boost::asio::detached);
    io.run();
    CPPUNIT_ASSERT_EQUAL(0, wrong);
    CPPUNIT_ASSERT_EQUAL(40, found);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{40}, d->search_count());
  }

  void cache_over_ldap_saves_searches_until_ttl() {
    auto& a = start_slapd("a");
    auto d = make_directory(settings({a.uri()}));
    steady::time_point now{};
    cached_directory cache(*d, cache_settings{}, [&] { return now; });
    for (int i = 0; i < 3; ++i) {
      CPPUNIT_ASSERT(found_id(await_now(cache.find_by_address("alice@example.org")), "alice"));
      CPPUNIT_ASSERT(not_found(await_now(cache.find_by_address("nobody@example.org"))));
    }
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, d->search_count());
    now += 5s;  // the negative answer expires, the positive one not
    CPPUNIT_ASSERT(found_id(await_now(cache.find_by_address("alice@example.org")), "alice"));
    CPPUNIT_ASSERT(not_found(await_now(cache.find_by_address("nobody@example.org"))));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{3}, d->search_count());
    now += 25s;  // 30 s: alice expires too
    CPPUNIT_ASSERT(found_id(await_now(cache.find_by_address("alice@example.org")), "alice"));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4}, d->search_count());
    // An admin change: the next lookup sees it at once.
    auto root = root_ldap(a);
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS,
        root->modify(alice_dn, {{LDAP_MOD_REPLACE, "hamailAccountState", {"moving"}}}));
    CPPUNIT_ASSERT(await_now(cache.find_by_address("alice@example.org")).value()->state ==
                   account_state::active);  // still cached
    cache.invalidate("alice");
    CPPUNIT_ASSERT(await_now(cache.find_by_address("alice@example.org")).value()->state ==
                   account_state::moving);
    // Errors are not cached: with the server gone every lookup asks again.
    a.stop();
    cache.clear();
    const auto misses = cache.stats().misses;
    for (int i = 0; i < 2; ++i) {
      auto r = await_now(cache.find_by_address("alice@example.org"));
      CPPUNIT_ASSERT(!r.has_value() && r.err().is_temporary());
    }
    CPPUNIT_ASSERT_EQUAL(misses + 2, cache.stats().misses);
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, cache.stats().entries);
  }

 private:
  slapd_instance& start_slapd(const std::string& name, bool with_marker = false) {
    const auto dir = dir_->path() / name;
    std::filesystem::create_directory(dir);
    std::vector<std::filesystem::path> extra;
    if (with_marker) {
      write_file(dir_->path() / (name + "-marker.ldif"), marker_ldif);
      extra.push_back(dir_->path() / (name + "-marker.ldif"));
    }
    slapds_.push_back(std::make_unique<slapd_instance>(dir, sample_slapd_options(extra)));
    return *slapds_.back();
  }

  ldap_settings settings(std::vector<std::string> uris) const {
    ldap_settings s;
    s.uris = std::move(uris);
    s.base_dn = suffix;
    s.bind_dn = root_dn;
    s.bind_secret_file = secret_file_;
    s.timeout = 3s;
    s.pool_size = 2;
    s.retry_interval = 500ms;
    return s;
  }

  static std::unique_ptr<ldap_directory> make_directory(ldap_settings s) {
    auto d = ldap_directory::create(std::move(s));
    CPPUNIT_ASSERT_MESSAGE(d ? "" : d.err().describe(), d.has_value());
    return std::move(*d);
  }

  /// A loopback URI where nothing listens (connections are refused).
  static std::string dead_uri() {
    return "ldap://127.0.0.1:" + std::to_string(free_tcp_port("127.0.0.1")) + "/";
  }

  std::optional<temp_dir> dir_;
  std::filesystem::path secret_file_;
  std::vector<std::unique_ptr<slapd_instance>> slapds_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(ldap_directory_test);

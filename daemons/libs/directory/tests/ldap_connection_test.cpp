// The shared LDAP connection layer against real slapd servers: paged search over more
// entries than the server's size limit, add/modify/delete with hostile values, failover
// to a second server, and TLS: StartTLS with a CA file, and no TLS below 1.2 even when
// the server offers only that. Every server is started by the test and stopped by pid.

#include "hamail/directory/ldap_connection.hpp"

#include <arpa/inet.h>
#include <cppunit/extensions/HelperMacros.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hamail/directory/ldap_escape.hpp"
#include "hamail/test/ports.hpp"
#include "hamail/test/temp_dir.hpp"
#include "hamail/test/test_ca.hpp"
#include "ldap_test_support.hpp"

using namespace hamail;
using namespace hamail::directory;
using namespace hamail::test;
using namespace std::chrono_literals;

namespace {

// The system's openssl.cnf may already forbid TLS below 1.2 for every program; this
// test must see that the connection layer forbids it by itself.
const bool openssl_conf_cleared = [] {
  ::setenv("OPENSSL_CONF", "/dev/null", 1);
  return true;
}();

const std::string suffix = "dc=example,dc=org";
const std::string root_dn = "cn=admin,dc=example,dc=org";
const std::string root_password = "secret";
const std::string accounts = "ou=accounts,dc=example,dc=org";

/// A TLS server that speaks nothing but TLS 1.0/1.1: records whether a handshake
/// ever completed. One connection at a time until destroyed.
class old_tls_server {
 public:
  explicit old_tls_server(const test_ca& ca) {
    ctx_ = ::SSL_CTX_new(::TLS_server_method());
    ::SSL_CTX_set_security_level(ctx_, 0);
    ::SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");
    ::SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
    ::SSL_CTX_set_max_proto_version(ctx_, TLS1_1_VERSION);
    CPPUNIT_ASSERT(::SSL_CTX_use_certificate_chain_file(ctx_, ca.fullchain.c_str()) == 1);
    CPPUNIT_ASSERT(::SSL_CTX_use_PrivateKey_file(ctx_, ca.server_key.c_str(), SSL_FILETYPE_PEM) ==
                   1);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~old_tls_server() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    ::SSL_CTX_free(ctx_);
  }
  std::string uri() const { return "ldaps://127.0.0.1:" + std::to_string(port_); }
  bool handshake_completed() const { return completed_.load(); }
  int attempts() const { return attempts_.load(); }

 private:
  void serve() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++attempts_;
      SSL* ssl = ::SSL_new(ctx_);
      ::SSL_set_fd(ssl, c);
      if (::SSL_accept(ssl) == 1) completed_ = true;
      ::SSL_free(ssl);
      ::close(c);
    }
  }

  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> completed_{false};
  std::atomic<int> attempts_{0};
};

std::string dead_uri() {
  return "ldap://127.0.0.1:" + std::to_string(free_tcp_port("127.0.0.1")) + "/";
}

std::vector<ldap_change> account_entry(const std::string& id) {
  using op = ldap_change::operation;
  return {{op::add, "objectClass", {"inetOrgPerson", "hamailAccount"}},
          {op::add, "uid", {id}},
          {op::add, "cn", {id}},
          {op::add, "sn", {id}},
          {op::add, "mail", {id + "@paged.example.org"}},
          {op::add, "hamailOwningStore", {"store-a"}}};
}

}  // namespace

class ldap_connection_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ldap_connection_test);
  CPPUNIT_TEST(paged_search_reads_past_the_server_size_limit);
  CPPUNIT_TEST(add_modify_delete_with_hostile_values);
  CPPUNIT_TEST(failover_to_the_second_server);
  CPPUNIT_TEST(wrong_password_stops_failover_as_bind_rejected);
  CPPUNIT_TEST(starttls_with_ca_file_and_untrusted_ca);
  CPPUNIT_TEST(no_tls_below_1_2);
  CPPUNIT_TEST(password_never_sent_in_plaintext_to_a_remote_server);
  CPPUNIT_TEST(secret_file_is_one_line);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    CPPUNIT_ASSERT(openssl_conf_cleared);
    dir_.emplace();
  }
  void tearDown() override {
    slapds_.clear();
    dir_.reset();
  }

  void paged_search_reads_past_the_server_size_limit() {
    auto& a = start_slapd("a");
    // Ordinary users get at most 5 entries per search; paged searches may go on.
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS,
        root_ldap(a)->modify("olcDatabase={1}mdb,cn=config",
                             {{LDAP_MOD_REPLACE,
                               "olcLimits",
                               {"* size.soft=5 size.hard=5 size.prtotal=unlimited"}}}));
    ldap_connection root;
    CPPUNIT_ASSERT(!root.open(settings({a.uri()}), 0, 5s, root_dn, root_password));
    constexpr int count = 23;
    for (int i = 0; i < count; ++i) {
      const std::string id = "paged-" + std::to_string(i);
      const auto f = root.add(*make_child_dn("uid", id, accounts), account_entry(id), 5s);
      CPPUNIT_ASSERT_MESSAGE(f ? f->text : "", !f);
    }
    ldap_connection anonymous;
    CPPUNIT_ASSERT(!anonymous.open(settings({a.uri()}), 0, 5s, "", ""));
    const std::string filter = "(mail=*@paged.example.org)";
    std::vector<ldap_entry> plain;
    auto f = anonymous.search(suffix, ldap_scope::subtree, filter, {"uid"}, 5s, 0, plain);
    CPPUNIT_ASSERT_MESSAGE("the size limit applies to a plain search", f.has_value());
    CPPUNIT_ASSERT(f->size_limit_exceeded());
    CPPUNIT_ASSERT(plain.size() <= 5);

    std::vector<ldap_entry> paged;
    f = anonymous.paged_search(suffix, ldap_scope::subtree, filter, {"uid"}, 5s, 4, paged);
    CPPUNIT_ASSERT_MESSAGE(f ? f->text : "", !f);
    CPPUNIT_ASSERT_EQUAL(std::size_t{count}, paged.size());
    std::set<std::string> ids;
    for (const auto& e : paged) ids.insert(e.first("UID"));
    CPPUNIT_ASSERT_EQUAL(std::size_t{count}, ids.size());

    // A base that does not exist gives no entries, not an error.
    std::vector<ldap_entry> none;
    f = anonymous.paged_search("ou=nowhere," + suffix, ldap_scope::subtree, filter, {}, 5s, 4,
                               none);
    CPPUNIT_ASSERT(!f && none.empty());
  }

  void add_modify_delete_with_hostile_values() {
    auto& a = start_slapd("a");
    ldap_connection c;
    CPPUNIT_ASSERT(!c.open(settings({a.uri()}), 0, 5s, root_dn, root_password));
    // Values a DN or filter must escape: none may break out of its place.
    const std::string hostile_cn = std::string("*()\\") + ",+\"<>;=" + " #x";
    const std::string id = "hostile";
    const std::string dn = *make_child_dn("cn", hostile_cn, accounts);
    using op = ldap_change::operation;
    auto f = c.add(dn,
                   {{op::add, "objectClass", {"inetOrgPerson"}},
                    {op::add, "cn", {hostile_cn}},
                    {op::add, "sn", {"j\xC3\xBCrgen"}},
                    {op::add, "description", {"#leading hash"}}},
                   5s);
    CPPUNIT_ASSERT_MESSAGE(f ? f->text : "", !f);
    f = c.add(dn, {{op::add, "objectClass", {"inetOrgPerson"}}, {op::add, "sn", {"x"}}}, 5s);
    CPPUNIT_ASSERT(f && f->already_exists());

    std::vector<ldap_entry> found;
    f = c.search(accounts, ldap_scope::one_level, "(cn=" + escape_filter_value(hostile_cn) + ")",
                 {"cn", "sn"}, 5s, 0, found);
    CPPUNIT_ASSERT(!f);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());
    CPPUNIT_ASSERT_EQUAL(hostile_cn, found[0].first("cn"));
    CPPUNIT_ASSERT_EQUAL(std::string("j\xC3\xBCrgen"), found[0].first("sn"));
    CPPUNIT_ASSERT_EQUAL(hostile_cn, first_rdn_value(found[0].dn, "cn").value_or(""));
    // A wildcard-looking value matches only itself.
    found.clear();
    f = c.search(accounts, ldap_scope::one_level, "(cn=" + escape_filter_value("*") + ")", {}, 5s,
                 0, found);
    CPPUNIT_ASSERT(!f && found.empty());

    f = c.modify(dn, {{op::replace, "sn", {"smith"}}, {op::remove, "description", {}}}, 5s);
    CPPUNIT_ASSERT_MESSAGE(f ? f->text : "", !f);
    found.clear();
    CPPUNIT_ASSERT(!c.search(dn, ldap_scope::base, "(objectClass=*)", {}, 5s, 0, found));
    CPPUNIT_ASSERT_EQUAL(std::string("smith"), found.at(0).first("sn"));
    CPPUNIT_ASSERT(!found.at(0).has("description"));

    CPPUNIT_ASSERT(!c.remove(dn, 5s));
    f = c.remove(dn, 5s);
    CPPUNIT_ASSERT(f && f->no_such_object() && !f->temporary());
    (void)id;
  }

  void failover_to_the_second_server() {
    auto& b = start_slapd("b");
    const auto s = settings({dead_uri(), b.uri()});
    ldap_connection c;
    std::vector<std::size_t> failed;
    const auto f = c.open_first(s, {0, 1}, ldap_connection::clock::now() + 5s, root_dn,
                                root_password, [&](std::size_t i, const ldap_failure& why) {
                                  CPPUNIT_ASSERT(why.temporary());
                                  failed.push_back(i);
                                });
    CPPUNIT_ASSERT_MESSAGE(f ? f->text : "", !f);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, c.server());
    CPPUNIT_ASSERT_EQUAL(b.uri(), c.uri());
    CPPUNIT_ASSERT(failed == std::vector<std::size_t>{0});

    // Both down: temporary, and the text names every server.
    ldap_connection none;
    const auto both = settings({dead_uri(), dead_uri()});
    const auto g =
        none.open_first(both, {0, 1}, ldap_connection::clock::now() + 5s, root_dn, root_password);
    CPPUNIT_ASSERT(g && g->temporary());
    CPPUNIT_ASSERT_MESSAGE(g->text, g->text.find(both.uris[0]) != std::string::npos &&
                                        g->text.find(both.uris[1]) != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(g->text, g->text.find(root_password) == std::string::npos);
  }

  void wrong_password_stops_failover_as_bind_rejected() {
    auto& a = start_slapd("a");
    auto& b = start_slapd("b");
    ldap_connection c;
    int calls = 0;
    const auto f =
        c.open_first(settings({a.uri(), b.uri()}), {0, 1}, ldap_connection::clock::now() + 5s,
                     root_dn, "wrong password", [&](std::size_t, const ldap_failure&) { ++calls; });
    CPPUNIT_ASSERT(f && f->kind == ldap_failure_kind::bind_rejected);
    CPPUNIT_ASSERT_EQUAL(1, calls);
    CPPUNIT_ASSERT(!c.is_open());
  }

  void starttls_with_ca_file_and_untrusted_ca() {
    auto& a = start_slapd("a");
    const auto ca = test_ca::make(dir_->path() / "ca", {"127.0.0.1", "localhost"});
    const auto other = test_ca::make(dir_->path() / "other", {"127.0.0.1"});
    CPPUNIT_ASSERT_EQUAL(
        LDAP_SUCCESS,
        root_ldap(a)->modify(
            "cn=config", {{LDAP_MOD_REPLACE, "olcTLSCertificateFile", {ca.fullchain.string()}},
                          {LDAP_MOD_REPLACE, "olcTLSCertificateKeyFile", {ca.server_key.string()}},
                          {LDAP_MOD_REPLACE, "olcTLSProtocolMin", {"3.3"}}}));
    auto s = settings({a.uri()});
    s.starttls = true;
    s.ca_file = ca.ca_cert.string();
    ldap_connection c;
    auto f = c.open(s, 0, 5s, root_dn, root_password);
    CPPUNIT_ASSERT_MESSAGE(f ? f->text : "", !f);
    std::vector<ldap_entry> found;
    CPPUNIT_ASSERT(!c.search(suffix, ldap_scope::subtree, "(uid=alice)", {"uid"}, 5s, 0, found));
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, found.size());

    s.ca_file = other.ca_cert.string();
    f = c.open(s, 0, 5s, root_dn, root_password);
    CPPUNIT_ASSERT(f && f->temporary());
    CPPUNIT_ASSERT_MESSAGE(f->text, f->text.find("StartTLS") != std::string::npos);
  }

  void no_tls_below_1_2() {
    const auto ca = test_ca::make(dir_->path() / "ca", {"127.0.0.1", "localhost"});
    old_tls_server old(ca);
    auto s = settings({old.uri()});
    s.ca_file = ca.ca_cert.string();
    ldap_connection c;
    const auto f = c.open(s, 0, 5s, root_dn, root_password);
    CPPUNIT_ASSERT(f.has_value());
    CPPUNIT_ASSERT_MESSAGE(f->text, f->temporary());
    CPPUNIT_ASSERT(old.attempts() >= 1);
    CPPUNIT_ASSERT_MESSAGE("a TLS 1.0/1.1 handshake completed", !old.handshake_completed());
  }

  void password_never_sent_in_plaintext_to_a_remote_server() {
    // 192.0.2.1 is TEST-NET-1: nothing is ever contacted, the check comes first.
    auto s = settings({"ldap://192.0.2.1:389"});
    ldap_connection c;
    auto f = c.open(s, 0, 2s, root_dn, root_password);
    CPPUNIT_ASSERT(f && f->kind == ldap_failure_kind::plaintext_refused);
    CPPUNIT_ASSERT(f->text.find(root_password) == std::string::npos);
  }

  void secret_file_is_one_line() {
    const auto p = dir_->path() / "secret";
    const auto write = [&](const std::string& text) {
      std::ofstream(p, std::ios::trunc | std::ios::binary) << text;
      ::chmod(p.c_str(), 0600);
    };
    write("s3cret\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("s3cret"), read_secret_file(p).value());
    write("s3cret");
    CPPUNIT_ASSERT_EQUAL(std::string("s3cret"), read_secret_file(p).value());
    write("\n");
    CPPUNIT_ASSERT(!read_secret_file(p));
    write("first-s3cret\nsecond\n");
    auto r = read_secret_file(p);
    CPPUNIT_ASSERT(!r && r.err().code == errc::config_error);
    CPPUNIT_ASSERT(r.err().detail.find("first-s3cret") == std::string::npos);
    CPPUNIT_ASSERT(!read_secret_file(dir_->path() / "missing"));
  }

 private:
  slapd_instance& start_slapd(const std::string& name) {
    const auto dir = dir_->path() / name;
    std::filesystem::create_directory(dir);
    slapds_.push_back(std::make_unique<slapd_instance>(dir, sample_slapd_options()));
    return *slapds_.back();
  }

  static ldap_connection_settings settings(std::vector<std::string> uris) {
    ldap_connection_settings s;
    s.uris = std::move(uris);
    return s;
  }

  std::optional<temp_dir> dir_;
  std::vector<std::unique_ptr<slapd_instance>> slapds_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(ldap_connection_test);

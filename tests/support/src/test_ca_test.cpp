#include "hamail/test/test_ca.hpp"

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "hamail/test/process.hpp"
#include "hamail/test/temp_dir.hpp"

namespace {

using hamail::test::run_command;
using hamail::test::temp_dir;
using hamail::test::test_ca;

void free_certs(STACK_OF(X509) * s) noexcept { sk_X509_pop_free(s, X509_free); }
void close_file(FILE* f) noexcept { std::fclose(f); }

using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using store_ptr = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;
using stack_ptr = std::unique_ptr<STACK_OF(X509), decltype(&free_certs)>;
using file_ptr = std::unique_ptr<FILE, decltype(&close_file)>;

std::vector<x509_ptr> read_certs(const std::filesystem::path& path) {
  file_ptr f(std::fopen(path.c_str(), "r"), &close_file);
  CPPUNIT_ASSERT_MESSAGE("cannot open " + path.string(), f != nullptr);
  std::vector<x509_ptr> out;
  while (X509* c = PEM_read_X509(f.get(), nullptr, nullptr, nullptr))
    out.emplace_back(c, &X509_free);
  ERR_clear_error();  // the end of file is reported as an error
  return out;
}

x509_ptr read_cert(const std::filesystem::path& path) {
  auto certs = read_certs(path);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(path.string(), std::size_t{1}, certs.size());
  return std::move(certs.front());
}

pkey_ptr read_key(const std::filesystem::path& path) {
  file_ptr f(std::fopen(path.c_str(), "r"), &close_file);
  CPPUNIT_ASSERT(f != nullptr);
  pkey_ptr key(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  CPPUNIT_ASSERT_MESSAGE("cannot read key " + path.string(), key != nullptr);
  return key;
}

/// X509_verify_cert of the server certificate in `leaf_from`, trusting only
/// `trusted`'s ca.pem and given `untrusted` (possibly empty) as intermediates.
/// Returns X509_V_OK or the verification error.
int verify(const test_ca& trusted, const std::filesystem::path& leaf_path,
           const std::vector<std::filesystem::path>& untrusted, const char* host = nullptr,
           const char* ip = nullptr) {
  store_ptr store(X509_STORE_new(), &X509_STORE_free);
  CPPUNIT_ASSERT(store != nullptr);
  CPPUNIT_ASSERT_EQUAL(1, X509_STORE_load_file(store.get(), trusted.ca_cert.c_str()));
  stack_ptr chain(sk_X509_new_null(), &free_certs);
  for (const auto& p : untrusted) {
    for (auto& c : read_certs(p)) {
      CPPUNIT_ASSERT(sk_X509_push(chain.get(), c.get()) > 0);
      static_cast<void>(c.release());  // owned by the stack now
    }
  }
  x509_ptr leaf = read_cert(leaf_path);
  store_ctx_ptr ctx(X509_STORE_CTX_new(), &X509_STORE_CTX_free);
  CPPUNIT_ASSERT_EQUAL(1, X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), chain.get()));
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  CPPUNIT_ASSERT_EQUAL(1, X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER));
  if (host != nullptr) CPPUNIT_ASSERT_EQUAL(1, X509_VERIFY_PARAM_set1_host(param, host, 0));
  if (ip != nullptr) CPPUNIT_ASSERT_EQUAL(1, X509_VERIFY_PARAM_set1_ip_asc(param, ip));
  const int ok = X509_verify_cert(ctx.get());
  const int err = X509_STORE_CTX_get_error(ctx.get());
  if (ok == 1) CPPUNIT_ASSERT_EQUAL(X509_V_OK, err);
  ERR_clear_error();
  return ok == 1 ? X509_V_OK : err;
}

std::string serial_of(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string s = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return s;
}

std::string key_id(const ASN1_OCTET_STRING* id) {
  CPPUNIT_ASSERT(id != nullptr);
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(id)),
          static_cast<std::size_t>(ASN1_STRING_length(id))};
}

}  // namespace

// At global scope so that tests are named "test_ca_test::<name>" for the runner's filter.
class test_ca_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(test_ca_test);
  CPPUNIT_TEST(leaf_verifies_against_root_with_chain_as_untrusted);
  CPPUNIT_TEST(leaf_without_intermediate_does_not_verify);
  CPPUNIT_TEST(leaf_of_another_ca_does_not_verify);
  CPPUNIT_TEST(names_match_dns_and_ip_sans_only);
  CPPUNIT_TEST(verification_with_wrong_host_fails);
  CPPUNIT_TEST(extensions_make_root_a_ca_and_leaf_a_server);
  CPPUNIT_TEST(key_identifiers_link_leaf_to_intermediate_to_root);
  CPPUNIT_TEST(files_hold_matching_key_chain_and_fullchain);
  CPPUNIT_TEST(reissue_makes_new_leaf_from_same_intermediate);
  CPPUNIT_TEST(openssl_cli_agrees);
  CPPUNIT_TEST_SUITE_END();

 public:
  void leaf_verifies_against_root_with_chain_as_untrusted() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path() / "ca");
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(ca, ca.server_cert, {ca.chain}));
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(ca, ca.server_cert, {ca.chain}, "localhost"));
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(ca, ca.server_cert, {ca.chain}, nullptr, "127.0.0.1"));
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(ca, ca.server_cert, {ca.chain}, nullptr, "::1"));
    // fullchain.pem is what a server sends: leaf + intermediate.
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(ca, ca.server_cert, {ca.fullchain}));
  }

  void leaf_without_intermediate_does_not_verify() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path());
    CPPUNIT_ASSERT_EQUAL(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                         verify(ca, ca.server_cert, {}));
  }

  void leaf_of_another_ca_does_not_verify() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path() / "one");
    const test_ca other = test_ca::make(d.path() / "two");
    // Same names, same structure, different keys: must not cross-verify,
    // whether the other CA's intermediate is offered or not.
    CPPUNIT_ASSERT(verify(ca, other.server_cert, {other.chain}) != X509_V_OK);
    CPPUNIT_ASSERT(verify(ca, other.server_cert, {}) != X509_V_OK);
    CPPUNIT_ASSERT(verify(ca, other.server_cert, {ca.chain}) != X509_V_OK);
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(other, other.server_cert, {other.chain}));
  }

  void names_match_dns_and_ip_sans_only() {
    temp_dir d;
    const test_ca ca =
        test_ca::make(d.path(), {"mail.example.test", "192.0.2.7", "2001:db8::25", "localhost"});
    x509_ptr leaf = read_cert(ca.server_cert);
    CPPUNIT_ASSERT_EQUAL(1, X509_check_host(leaf.get(), "mail.example.test", 0, 0, nullptr));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_host(leaf.get(), "localhost", 0, 0, nullptr));
    CPPUNIT_ASSERT_EQUAL(0, X509_check_host(leaf.get(), "other.example.test", 0, 0, nullptr));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_ip_asc(leaf.get(), "192.0.2.7", 0));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_ip_asc(leaf.get(), "2001:db8::25", 0));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_ip_asc(leaf.get(), "2001:0db8:0:0:0:0:0:25", 0));
    CPPUNIT_ASSERT_EQUAL(0, X509_check_ip_asc(leaf.get(), "192.0.2.8", 0));
    CPPUNIT_ASSERT_EQUAL(0, X509_check_ip_asc(leaf.get(), "127.0.0.1", 0));
    // IP literals are iPAddress entries, not DNS names that merely look like one.
    CPPUNIT_ASSERT_EQUAL(0, X509_check_host(leaf.get(), "192.0.2.7", 0, 0, nullptr));
    // The first name is the subject CN.
    std::array<char, 256> cn{};
    CPPUNIT_ASSERT(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf.get()), NID_commonName,
                                             cn.data(), cn.size()) > 0);
    CPPUNIT_ASSERT_EQUAL(std::string("mail.example.test"), std::string(cn.data()));
  }

  void verification_with_wrong_host_fails() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path());
    CPPUNIT_ASSERT_EQUAL(X509_V_ERR_HOSTNAME_MISMATCH,
                         verify(ca, ca.server_cert, {ca.chain}, "mail.example.test"));
    CPPUNIT_ASSERT_EQUAL(X509_V_ERR_IP_ADDRESS_MISMATCH,
                         verify(ca, ca.server_cert, {ca.chain}, nullptr, "127.0.0.2"));
  }

  void extensions_make_root_a_ca_and_leaf_a_server() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path());
    x509_ptr root = read_cert(ca.ca_cert);
    x509_ptr inter = read_cert(ca.chain);
    x509_ptr leaf = read_cert(ca.server_cert);

    const int bc = X509_get_ext_by_NID(root.get(), NID_basic_constraints, -1);
    CPPUNIT_ASSERT(bc >= 0);
    CPPUNIT_ASSERT_EQUAL(1, X509_EXTENSION_get_critical(X509_get_ext(root.get(), bc)));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_ca(root.get()));
    CPPUNIT_ASSERT(X509_get_extension_flags(root.get()) & EXFLAG_SS);
    CPPUNIT_ASSERT_EQUAL(static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN),
                         X509_get_key_usage(root.get()));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_ca(inter.get()));
    CPPUNIT_ASSERT_EQUAL(0L, X509_get_pathlen(inter.get()));

    CPPUNIT_ASSERT_EQUAL(0, X509_check_ca(leaf.get()));
    CPPUNIT_ASSERT(X509_get_extension_flags(leaf.get()) & EXFLAG_XKUSAGE);
    CPPUNIT_ASSERT_EQUAL(static_cast<uint32_t>(XKU_SSL_SERVER),
                         X509_get_extended_key_usage(leaf.get()));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_SERVER, 0));
    CPPUNIT_ASSERT_EQUAL(0, X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_CLIENT, 0));
    CPPUNIT_ASSERT(X509_get_ext_by_NID(leaf.get(), NID_subject_alt_name, -1) >= 0);
  }

  void key_identifiers_link_leaf_to_intermediate_to_root() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path());
    x509_ptr root = read_cert(ca.ca_cert);
    x509_ptr inter = read_cert(ca.chain);
    x509_ptr leaf = read_cert(ca.server_cert);
    const std::string root_ski = key_id(X509_get0_subject_key_id(root.get()));
    const std::string inter_ski = key_id(X509_get0_subject_key_id(inter.get()));
    const std::string leaf_ski = key_id(X509_get0_subject_key_id(leaf.get()));
    CPPUNIT_ASSERT_EQUAL(root_ski, key_id(X509_get0_authority_key_id(root.get())));
    CPPUNIT_ASSERT_EQUAL(root_ski, key_id(X509_get0_authority_key_id(inter.get())));
    CPPUNIT_ASSERT_EQUAL(inter_ski, key_id(X509_get0_authority_key_id(leaf.get())));
    CPPUNIT_ASSERT(root_ski != inter_ski);
    CPPUNIT_ASSERT(inter_ski != leaf_ski);
  }

  void files_hold_matching_key_chain_and_fullchain() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path());
    x509_ptr leaf = read_cert(ca.server_cert);
    pkey_ptr key = read_key(ca.server_key);
    CPPUNIT_ASSERT_EQUAL(1, X509_check_private_key(leaf.get(), key.get()));
    // Unencrypted PKCS#8, owner-only.
    std::string pem;
    {
      file_ptr f(std::fopen(ca.server_key.c_str(), "r"), &close_file);
      std::array<char, 64> line{};
      CPPUNIT_ASSERT(std::fgets(line.data(), line.size(), f.get()) != nullptr);
      pem = line.data();
    }
    CPPUNIT_ASSERT_EQUAL(std::string("-----BEGIN PRIVATE KEY-----\n"), pem);
    const auto perms = std::filesystem::status(ca.server_key).permissions();
    CPPUNIT_ASSERT((perms & (std::filesystem::perms::group_all |
                             std::filesystem::perms::others_all)) == std::filesystem::perms::none);

    auto full = read_certs(ca.fullchain);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, full.size());
    CPPUNIT_ASSERT_EQUAL(0, X509_cmp(full[0].get(), leaf.get()));
    x509_ptr inter = read_cert(ca.chain);
    CPPUNIT_ASSERT_EQUAL(0, X509_cmp(full[1].get(), inter.get()));
    CPPUNIT_ASSERT(X509_cmp(leaf.get(), inter.get()) != 0);
  }

  void reissue_makes_new_leaf_from_same_intermediate() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path());
    x509_ptr old_leaf = read_cert(ca.server_cert);
    pkey_ptr old_key = read_key(ca.server_key);
    x509_ptr inter_before = read_cert(ca.chain);

    const std::string serial = ca.reissue({"mail.example.test", "192.0.2.9"});
    x509_ptr leaf = read_cert(ca.server_cert);
    pkey_ptr key = read_key(ca.server_key);
    CPPUNIT_ASSERT_EQUAL(serial_of(leaf.get()), serial);
    CPPUNIT_ASSERT(serial != serial_of(old_leaf.get()));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_private_key(leaf.get(), key.get()));
    CPPUNIT_ASSERT(EVP_PKEY_eq(key.get(), old_key.get()) != 1);
    CPPUNIT_ASSERT_EQUAL(1, X509_check_host(leaf.get(), "mail.example.test", 0, 0, nullptr));
    CPPUNIT_ASSERT_EQUAL(0, X509_check_host(leaf.get(), "localhost", 0, 0, nullptr));
    CPPUNIT_ASSERT_EQUAL(1, X509_check_ip_asc(leaf.get(), "192.0.2.9", 0));
    // Same intermediate and root: the chain files did not change and still verify it.
    CPPUNIT_ASSERT_EQUAL(0, X509_cmp(inter_before.get(), read_cert(ca.chain).get()));
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(ca, ca.server_cert, {ca.chain}, "mail.example.test"));
    auto full = read_certs(ca.fullchain);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, full.size());
    CPPUNIT_ASSERT_EQUAL(0, X509_cmp(full[0].get(), leaf.get()));
    // A copy of the value (as a fixture would hold) reissues from the same files.
    const test_ca copy = ca;
    CPPUNIT_ASSERT(copy.reissue() != serial);
    CPPUNIT_ASSERT_EQUAL(X509_V_OK, verify(ca, ca.server_cert, {ca.chain}, "localhost"));
  }

  void openssl_cli_agrees() {
    temp_dir d;
    const test_ca ca = test_ca::make(d.path() / "one");
    const test_ca other = test_ca::make(d.path() / "two");
    auto ok = run_command({"openssl", "verify", "-purpose", "sslserver", "-CAfile",
                           ca.ca_cert.string(), "-untrusted", ca.chain.string(), "-verify_hostname",
                           "localhost", ca.server_cert.string()});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(ok.out + ok.err, 0, ok.exit_code);
    CPPUNIT_ASSERT_EQUAL(ca.server_cert.string() + ": OK\n", ok.out);

    auto ip = run_command({"openssl", "verify", "-CAfile", ca.ca_cert.string(), "-untrusted",
                           ca.chain.string(), "-verify_ip", "::1", ca.server_cert.string()});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(ip.out + ip.err, 0, ip.exit_code);

    auto foreign = run_command({"openssl", "verify", "-CAfile", ca.ca_cert.string(), "-untrusted",
                                other.chain.string(), other.server_cert.string()});
    CPPUNIT_ASSERT_MESSAGE(foreign.out + foreign.err, foreign.exit_code != 0);
    CPPUNIT_ASSERT(!foreign.timed_out);

    auto no_chain =
        run_command({"openssl", "verify", "-CAfile", ca.ca_cert.string(), ca.server_cert.string()});
    CPPUNIT_ASSERT_MESSAGE(no_chain.out + no_chain.err, no_chain.exit_code != 0);

    auto wrong_host = run_command({"openssl", "verify", "-CAfile", ca.ca_cert.string(),
                                   "-untrusted", ca.chain.string(), "-verify_hostname",
                                   "mail.example.test", ca.server_cert.string()});
    CPPUNIT_ASSERT_MESSAGE(wrong_host.out + wrong_host.err, wrong_host.exit_code != 0);

    // The key and certificate match according to the CLI too.
    auto cert_pub =
        run_command({"openssl", "x509", "-in", ca.server_cert.string(), "-noout", "-pubkey"});
    auto key_pub = run_command({"openssl", "pkey", "-in", ca.server_key.string(), "-pubout"});
    CPPUNIT_ASSERT_EQUAL(0, cert_pub.exit_code);
    CPPUNIT_ASSERT_EQUAL(0, key_pub.exit_code);
    CPPUNIT_ASSERT(!cert_pub.out.empty());
    CPPUNIT_ASSERT_EQUAL(cert_pub.out, key_pub.out);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(test_ca_test);

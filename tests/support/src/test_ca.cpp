#include "hamail/test/test_ca.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace hamail::test {
namespace {

// The intermediate's key and certificate stay in `dir` so that reissue() can
// sign new leaves later; the root's key is not kept (nothing signs with it).
constexpr const char* intermediate_cert_name = "intermediate.pem";
constexpr const char* intermediate_key_name = "intermediate.key";

void close_file(FILE* f) noexcept { std::fclose(f); }
void free_ossl_string(char* p) noexcept { OPENSSL_free(p); }

template <auto fn>
struct deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    fn(p);
  }
};

using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using x509_ext_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, deleter<GENERAL_NAMES_free>>;
using general_name_ptr = std::unique_ptr<GENERAL_NAME, deleter<GENERAL_NAME_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
using file_ptr = std::unique_ptr<FILE, deleter<close_file>>;
using ossl_string_ptr = std::unique_ptr<char, deleter<free_ossl_string>>;

/// Throws with OpenSSL's queued errors appended, and clears the queue.
[[noreturn]] void fail(const std::string& what) {
  std::string msg = "test_ca: " + what;
  while (const unsigned long e = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    msg += "; ";
    msg += buf.data();
  }
  throw std::runtime_error(msg);
}

void check(int ok, const char* what) {
  if (ok != 1) fail(what);
}

pkey_ptr make_key() {
  // ECDSA P-256: as good as RSA 2048 for TLS tests, and key generation is instant.
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) fail("EVP_PKEY_Q_keygen");
  return key;
}

/// A fresh positive 127-bit serial, as RFC 5280 wants them unpredictable.
void set_random_serial(X509* cert) {
  std::array<unsigned char, 16> bytes{};
  check(RAND_bytes(bytes.data(), static_cast<int>(bytes.size())), "RAND_bytes");
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;  // never a shorter encoding, never zero
  bignum_ptr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn) fail("BN_bin2bn");
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    fail("BN_to_ASN1_INTEGER");
  }
}

std::string serial_hex(const X509* cert) {
  bignum_ptr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) fail("ASN1_INTEGER_to_BN");
  ossl_string_ptr hex(BN_bn2hex(bn.get()));
  if (!hex) fail("BN_bn2hex");
  return hex.get();
}

/// Adds an extension given in OpenSSL's config syntax ("critical,CA:TRUE").
void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  x509_ext_ptr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext) fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
  check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

/// subjectAltName built from typed entries: IP literals (IPv4 or IPv6) as
/// iPAddress, everything else as dNSName. Built directly rather than through
/// the config syntax, whose comma and colon splitting a name could confuse.
void add_subject_alt_names(X509* cert, const std::vector<std::string>& names) {
  general_names_ptr gens(sk_GENERAL_NAME_new_null());
  if (!gens) fail("sk_GENERAL_NAME_new_null");
  for (const auto& name : names) {
    general_name_ptr gen(GENERAL_NAME_new());
    if (!gen) fail("GENERAL_NAME_new");
    std::array<unsigned char, 16> ip{};
    int ip_len = 0;
    if (::inet_pton(AF_INET, name.c_str(), ip.data()) == 1) {
      ip_len = 4;
    } else if (::inet_pton(AF_INET6, name.c_str(), ip.data()) == 1) {
      ip_len = 16;
    }
    if (ip_len > 0) {
      ASN1_OCTET_STRING* octets = ASN1_OCTET_STRING_new();
      if (octets == nullptr || ASN1_OCTET_STRING_set(octets, ip.data(), ip_len) != 1) {
        ASN1_OCTET_STRING_free(octets);
        fail("ASN1_OCTET_STRING_set");
      }
      GENERAL_NAME_set0_value(gen.get(), GEN_IPADD, octets);
    } else {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (dns == nullptr || ASN1_STRING_set(dns, name.data(), static_cast<int>(name.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        fail("ASN1_STRING_set");
      }
      GENERAL_NAME_set0_value(gen.get(), GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(gens.get(), gen.get()) == 0) fail("sk_GENERAL_NAME_push");
    static_cast<void>(gen.release());  // owned by gens now
  }
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT),
        "X509_add1_ext_i2d subjectAltName");
}

enum class cert_role { root, intermediate, leaf };

/// Makes a certificate for `subject_key` named `common_name`, signed by
/// `issuer_key` on behalf of `issuer` (nullptr: self-signed).
x509_ptr make_cert(cert_role role, const std::string& common_name, EVP_PKEY* subject_key,
                   X509* issuer, EVP_PKEY* issuer_key, const std::vector<std::string>& sans) {
  x509_ptr cert(X509_new());
  if (!cert) fail("X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
  set_random_serial(cert.get());
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60L * 60) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24L * 60 * 60) == nullptr) {
    fail("X509_gmtime_adj");
  }
  check(X509_set_pubkey(cert.get(), subject_key), "X509_set_pubkey");

  X509_NAME* name = X509_get_subject_name(cert.get());
  check(
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("hamail tests"), -1, -1, 0),
      "X509_NAME_add_entry_by_txt O");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                   -1, 0),
        "X509_NAME_add_entry_by_txt CN");
  X509* signer = issuer != nullptr ? issuer : cert.get();
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)), "X509_set_issuer_name");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
  // For the self-signed root the issuer's key identifier is its own.
  if (issuer == nullptr) check(X509V3_set_issuer_pkey(&ctx, issuer_key), "X509V3_set_issuer_pkey");

  switch (role) {
    case cert_role::root:
      add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
      add_ext(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
      break;
    case cert_role::intermediate:
      add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
      add_ext(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
      break;
    case cert_role::leaf:
      add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
      add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
      add_ext(cert.get(), &ctx, NID_ext_key_usage, "serverAuth");
      add_subject_alt_names(cert.get(), sans);
      break;
  }
  add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");

  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) fail("X509_sign");
  return cert;
}

/// Opens `path` for writing with `mode`, replacing it atomically on close
/// through a temporary name, so a reader never sees half a file.
class atomic_file {
 public:
  atomic_file(std::filesystem::path path, mode_t mode)
      : path_(std::move(path)), tmp_(path_.string() + ".tmp") {
    const int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
      throw std::runtime_error("test_ca: open " + tmp_.string() + ": " + std::strerror(errno));
    file_.reset(::fdopen(fd, "w"));
    if (!file_) {
      ::close(fd);
      throw std::runtime_error("test_ca: fdopen " + tmp_.string());
    }
  }
  FILE* get() const noexcept { return file_.get(); }
  void commit() {
    if (std::fflush(file_.get()) != 0 || ::fsync(::fileno(file_.get())) != 0) {
      fail("write " + tmp_.string());
    }
    file_.reset();
    std::filesystem::rename(tmp_, path_);
  }

 private:
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  file_ptr file_;
};

void write_certs(const std::filesystem::path& path, std::initializer_list<X509*> certs) {
  atomic_file out(path, 0644);
  for (X509* c : certs) check(PEM_write_X509(out.get(), c), "PEM_write_X509");
  out.commit();
}

void write_key(const std::filesystem::path& path, EVP_PKEY* key) {
  atomic_file out(path, 0600);
  // PEM_write_PrivateKey writes unencrypted PKCS#8 ("BEGIN PRIVATE KEY").
  check(PEM_write_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
        "PEM_write_PrivateKey");
  out.commit();
}

x509_ptr read_cert(const std::filesystem::path& path) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f) throw std::runtime_error("test_ca: cannot open " + path.string());
  x509_ptr cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!cert) fail("PEM_read_X509 " + path.string());
  return cert;
}

pkey_ptr read_key(const std::filesystem::path& path) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f) throw std::runtime_error("test_ca: cannot open " + path.string());
  pkey_ptr key(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
  if (!key) fail("PEM_read_PrivateKey " + path.string());
  return key;
}

test_ca paths_in(const std::filesystem::path& dir) {
  test_ca ca;
  ca.dir = dir;
  ca.ca_cert = dir / "ca.pem";
  ca.server_cert = dir / "server.pem";
  ca.server_key = dir / "server.key";
  ca.chain = dir / "chain.pem";
  ca.fullchain = dir / "fullchain.pem";
  return ca;
}

/// Issues a leaf for `names` under the intermediate and writes server.pem,
/// server.key and fullchain.pem. Returns the leaf's serial in hex.
std::string issue_leaf(const test_ca& ca, X509* intermediate, EVP_PKEY* intermediate_key,
                       const std::vector<std::string>& names) {
  if (names.empty()) throw std::invalid_argument("test_ca: a leaf needs at least one name");
  pkey_ptr key = make_key();
  x509_ptr leaf =
      make_cert(cert_role::leaf, names.front(), key.get(), intermediate, intermediate_key, names);
  // Key first: a reloader that sees the new certificate finds its key in place.
  write_key(ca.server_key, key.get());
  write_certs(ca.server_cert, {leaf.get()});
  write_certs(ca.fullchain, {leaf.get(), intermediate});
  return serial_hex(leaf.get());
}

}  // namespace

test_ca test_ca::make(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  std::filesystem::create_directories(dir);
  test_ca ca = paths_in(dir);

  pkey_ptr root_key = make_key();
  x509_ptr root = make_cert(cert_role::root, "hamail test root CA", root_key.get(), nullptr,
                            root_key.get(), {});
  pkey_ptr inter_key = make_key();
  x509_ptr inter = make_cert(cert_role::intermediate, "hamail test intermediate CA",
                             inter_key.get(), root.get(), root_key.get(), {});

  write_certs(ca.ca_cert, {root.get()});
  write_certs(ca.chain, {inter.get()});
  write_certs(dir / intermediate_cert_name, {inter.get()});
  write_key(dir / intermediate_key_name, inter_key.get());
  issue_leaf(ca, inter.get(), inter_key.get(), names);
  return ca;
}

std::string test_ca::reissue(const std::vector<std::string>& names) const {
  x509_ptr inter = read_cert(dir / intermediate_cert_name);
  pkey_ptr inter_key = read_key(dir / intermediate_key_name);
  return issue_leaf(*this, inter.get(), inter_key.get(), names);
}

}  // namespace hamail::test

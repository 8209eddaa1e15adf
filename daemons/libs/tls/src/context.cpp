#include "hamail/tls/context.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>

#include <boost/asio/ip/address.hpp>

namespace hamail::tls {

namespace ssl = boost::asio::ssl;

namespace {

struct bio_deleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct pkey_deleter {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct x509_deleter {
  void operator()(X509* c) const noexcept { X509_free(c); }
};
struct bignum_deleter {
  void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct ossl_string_deleter {
  void operator()(char* s) const noexcept { OPENSSL_free(s); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;
using bignum_ptr = std::unique_ptr<BIGNUM, bignum_deleter>;
using ossl_string_ptr = std::unique_ptr<char, ossl_string_deleter>;

error config_error(std::string text) {
  return error::permanent(errc::config_error, "TLS configuration error", std::move(text));
}

// Checked before OpenSSL sees the path so that the common mistakes (typo,
// wrong permissions) read as such instead of as a PEM library error.
result<void> check_readable(const std::string& what, const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    const int e = errno;
    return config_error(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(e)));
  }
  return ok();
}

// A key protected by a passphrase would make OpenSSL prompt on the terminal;
// daemons have none, so refuse it instead.
int no_passphrase(char*, int, int, void*) { return -1; }

result<pkey_ptr> load_private_key(const std::string& path) {
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio)
    return config_error(
        fmt::format("cannot open private key '{}': {}", path, take_openssl_errors()));
  pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    return config_error(
        fmt::format("cannot load private key from '{}' (not a PEM private key, or encrypted, "
                    "which is not supported): {}",
                    path, take_openssl_errors()));
  }
  return key;
}

result<void> add_chain_file(SSL_CTX* ctx, const std::string& path) {
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio)
    return config_error(
        fmt::format("cannot open chain file '{}': {}", path, take_openssl_errors()));
  int count = 0;
  for (;;) {
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
    if (!cert) break;
    if (SSL_CTX_add1_chain_cert(ctx, cert.get()) != 1) {
      return config_error(fmt::format("cannot add certificate from chain file '{}': {}", path,
                                      take_openssl_errors()));
    }
    ++count;
  }
  // The loop ends on a "no start line" error at end of file; anything else is real.
  const unsigned long last = ERR_peek_last_error();
  if (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    return config_error(
        fmt::format("cannot parse chain file '{}': {}", path, take_openssl_errors()));
  }
  ERR_clear_error();
  if (count == 0) return config_error(fmt::format("chain file '{}' holds no certificate", path));
  return ok();
}

result<int> parse_min_version(const std::string& text) {
  if (text.empty() || text == "TLSv1.2") return TLS1_2_VERSION;
  if (text == "TLSv1.3") return TLS1_3_VERSION;
  return config_error(fmt::format("tls min_version '{}' is not one of TLSv1.2, TLSv1.3", text));
}

std::string name_text(X509_NAME* name) {
  if (name == nullptr) return {};
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

std::string serial_text(const X509* cert) {
  bignum_ptr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return {};
  ossl_string_ptr hex(BN_bn2hex(bn.get()));
  return hex ? std::string(hex.get()) : std::string();
}

std::string time_text(const ASN1_TIME* t) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || t == nullptr) return {};
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

}  // namespace

std::string take_openssl_errors(std::string_view fallback) {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string(fallback) : out;
}

result<std::shared_ptr<ssl::context>> make_server_context(const tls_settings& settings) {
  auto min_version = parse_min_version(settings.min_version);
  if (!min_version) return std::move(min_version).err();
  if (settings.cert_file.empty()) return config_error("tls cert_file is not set");
  if (settings.key_file.empty()) return config_error("tls key_file is not set");
  if (auto r = check_readable("certificate file", settings.cert_file); !r)
    return std::move(r).err();
  if (auto r = check_readable("private key file", settings.key_file); !r) return std::move(r).err();
  if (!settings.chain_file.empty()) {
    if (auto r = check_readable("chain file", settings.chain_file); !r) return std::move(r).err();
  }

  ERR_clear_error();
  std::shared_ptr<ssl::context> ctx;
  try {
    ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  } catch (const std::exception& e) {
    return error::internal_error(fmt::format("cannot create TLS server context: {}", e.what()));
  }
  SSL_CTX* h = ctx->native_handle();

  if (SSL_CTX_set_min_proto_version(h, *min_version) != 1) {
    return config_error(fmt::format("cannot set minimum TLS version: {}", take_openssl_errors()));
  }
  // Renegotiation is a DoS lever and has no use in mail protocols; compression
  // leaks plaintext (CRIME). Session tickets stay on for cheap resumption.
  SSL_CTX_set_options(
      h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle IMAP connections are the common case; do not keep 34 KB of buffers each.
  SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_SERVER);
  static constexpr unsigned char session_context[] = "hamail";
  SSL_CTX_set_session_id_context(h, session_context, sizeof session_context - 1);

  if (!settings.ciphers.empty() && SSL_CTX_set_cipher_list(h, settings.ciphers.c_str()) != 1) {
    return config_error(fmt::format("tls ciphers '{}' selects no usable cipher: {}",
                                    settings.ciphers, take_openssl_errors()));
  }
  if (!settings.ciphersuites.empty() &&
      SSL_CTX_set_ciphersuites(h, settings.ciphersuites.c_str()) != 1) {
    return config_error(fmt::format("tls ciphersuites '{}' is not valid: {}", settings.ciphersuites,
                                    take_openssl_errors()));
  }

  if (SSL_CTX_use_certificate_chain_file(h, settings.cert_file.c_str()) != 1) {
    return config_error(fmt::format("cannot load certificate chain from '{}': {}",
                                    settings.cert_file, take_openssl_errors()));
  }
  if (!settings.chain_file.empty()) {
    if (auto r = add_chain_file(h, settings.chain_file); !r) return std::move(r).err();
  }

  auto key = load_private_key(settings.key_file);
  if (!key) return std::move(key).err();
  X509* leaf = SSL_CTX_get0_certificate(h);
  if (leaf == nullptr || X509_check_private_key(leaf, key->get()) != 1) {
    ERR_clear_error();
    return config_error(fmt::format("private key '{}' does not match certificate '{}'",
                                    settings.key_file, settings.cert_file));
  }
  if (SSL_CTX_use_PrivateKey(h, key->get()) != 1 || SSL_CTX_check_private_key(h) != 1) {
    return config_error(fmt::format("cannot use private key '{}' with certificate '{}': {}",
                                    settings.key_file, settings.cert_file, take_openssl_errors()));
  }
  return ctx;
}

result<std::shared_ptr<ssl::context>> make_client_context(const std::string& ca_file, bool verify) {
  ERR_clear_error();
  std::shared_ptr<ssl::context> ctx;
  try {
    ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  } catch (const std::exception& e) {
    return error::internal_error(fmt::format("cannot create TLS client context: {}", e.what()));
  }
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (!ca_file.empty()) {
    if (auto r = check_readable("CA file", ca_file); !r) return std::move(r).err();
    if (SSL_CTX_load_verify_locations(h, ca_file.c_str(), nullptr) != 1) {
      return config_error(
          fmt::format("cannot load CA file '{}': {}", ca_file, take_openssl_errors()));
    }
  } else if (verify && SSL_CTX_set_default_verify_paths(h) != 1) {
    return config_error(
        fmt::format("cannot load the system trust store: {}", take_openssl_errors()));
  }
  SSL_CTX_set_verify(h, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return ctx;
}

result<void> prepare_client(SSL* ssl, const std::string& host) {
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(host, ec);
  if (!ec) {
    // SNI carries host names only (RFC 6066); an address is checked against IP SANs.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
      return error::permanent(errc::invalid_input, "bad address",
                              fmt::format("cannot verify against {}", host));
    }
    return ok();
  }
  if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1 || SSL_set1_host(ssl, host.c_str()) != 1) {
    return error::permanent(
        errc::invalid_input, "bad host name",
        fmt::format("cannot set host name '{}': {}", host, take_openssl_errors()));
  }
  return ok();
}

std::string protocol_name(const SSL* ssl) { return ssl != nullptr ? SSL_get_version(ssl) : ""; }

std::string cipher_name(const SSL* ssl) {
  const char* name = ssl != nullptr ? SSL_get_cipher_name(ssl) : nullptr;
  return name != nullptr ? name : "";
}

std::string peer_certificate_serial(const SSL* ssl) {
  if (ssl == nullptr) return {};
  x509_ptr cert(SSL_get1_peer_certificate(ssl));
  return cert ? serial_text(cert.get()) : std::string();
}

std::string certificate_summary(const ssl::context& ctx) {
  // native_handle() is not const in Asio; reading the certificate does not modify the context.
  X509* cert = SSL_CTX_get0_certificate(const_cast<ssl::context&>(ctx).native_handle());
  if (cert == nullptr) return "no certificate";
  return fmt::format("subject={}, serial={}, not_after={}", name_text(X509_get_subject_name(cert)),
                     serial_text(cert), time_text(X509_get0_notAfter(cert)));
}

}  // namespace hamail::tls

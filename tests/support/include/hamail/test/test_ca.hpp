#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace hamail::test {

/// A throwaway certificate authority made at test time (OpenSSL API, no CLI),
/// with a server certificate and chain, written as PEM files into a directory.
/// Nothing is ever read from or written to the system's trust store.
struct test_ca {
  std::filesystem::path dir;          ///< where the files live (also intermediate.pem/.key)
  std::filesystem::path ca_cert;      ///< ca.pem: the root, to trust in clients
  std::filesystem::path server_cert;  ///< server.pem: leaf only
  std::filesystem::path server_key;   ///< server.key: unencrypted PKCS#8
  std::filesystem::path chain;        ///< chain.pem: intermediates (empty file when none)
  std::filesystem::path fullchain;    ///< fullchain.pem: leaf followed by chain

  /// Makes a CA, an intermediate and a leaf for `names` (DNS names or IP
  /// addresses as SANs; the first is also the CN) in `dir`, which is created if
  /// missing. ECDSA P-256 keys, SHA-256, valid from one hour ago for one day;
  /// the leaf has serverAuth only. Throws std::runtime_error on failure.
  static test_ca make(const std::filesystem::path& dir,
                      const std::vector<std::string>& names = {"localhost", "127.0.0.1", "::1"});

  /// Issues another leaf from the same intermediate (for reload tests),
  /// replacing server_key, then server_cert and fullchain, each by an atomic
  /// rename. Returns the new leaf's serial as upper-case hex.
  std::string reissue(const std::vector<std::string>& names = {"localhost", "127.0.0.1"}) const;
};

}  // namespace hamail::test

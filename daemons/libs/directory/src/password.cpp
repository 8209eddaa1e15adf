#include "hamail/directory/password.hpp"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "hamail/core/base64.hpp"

namespace hamail::directory {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

error malformed(std::string detail) {
  return error::permanent(errc::config_error, "authentication failed", std::move(detail));
}

/// digest(password || salt)
std::vector<unsigned char> digest(const EVP_MD* md, std::string_view password,
                                  const unsigned char* salt, std::size_t salt_len) {
  std::vector<unsigned char> out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), password.data(), password.size()) != 1 ||
      (salt_len != 0 && EVP_DigestUpdate(ctx.get(), salt, salt_len) != 1) ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1) {
    return {};
  }
  out.resize(len);
  return out;
}

bool equal_ct(const unsigned char* a, std::size_t a_len, const unsigned char* b,
              std::size_t b_len) {
  // Lengths are not secret (they follow from the scheme), contents are.
  return a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0;
}

/// {SHA}/{SSHA} family: base64(digest || salt).
result<bool> verify_salted(const EVP_MD* md, std::string_view scheme, std::string_view data,
                           std::string_view password, bool salted) {
  auto decoded = base64_decode(data);
  std::optional<std::vector<unsigned char>> raw;
  if (decoded) raw.emplace(decoded->begin(), decoded->end());
  const auto dlen = static_cast<std::size_t>(EVP_MD_get_size(md));
  if (!raw || raw->size() < dlen || (!salted && raw->size() != dlen)) {
    return malformed("userPassword {" + std::string(scheme) +
                     "} value is not valid base64 of the right length");
  }
  const unsigned char* salt = raw->data() + dlen;
  const std::size_t salt_len = raw->size() - dlen;
  auto d = digest(md, password, salt, salt_len);
  if (d.empty()) return error::internal_error("OpenSSL digest failed");
  return equal_ct(d.data(), d.size(), raw->data(), dlen);
}

result<bool> verify_crypt(std::string_view data, std::string_view password) {
  if (data.empty() || data.size() >= CRYPT_OUTPUT_SIZE)
    return malformed("{CRYPT} value empty or too long");
  const std::string setting(data);
  const std::string pw(password);
  if (pw.find('\0') != std::string::npos) return false;
  auto cd = std::make_unique<crypt_data>();
  std::memset(cd.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(pw.c_str(), setting.c_str(), cd.get());
  // libxcrypt returns a string starting with '*' on failure (unknown method, bad salt).
  if (out == nullptr || out[0] == '*')
    return malformed("{CRYPT} method or salt not supported by libxcrypt");
  const std::size_t out_len = std::strlen(out);
  const bool match =
      equal_ct(reinterpret_cast<const unsigned char*>(out), out_len,
               reinterpret_cast<const unsigned char*>(setting.data()), setting.size());
  OPENSSL_cleanse(cd.get(), sizeof(crypt_data));
  return match;
}

result<bool> verify_argon2(std::string_view data, std::string_view password) {
  argon2_type type;
  if (data.starts_with("$argon2id$")) {
    type = Argon2_id;
  } else if (data.starts_with("$argon2i$")) {
    type = Argon2_i;
  } else if (data.starts_with("$argon2d$")) {
    type = Argon2_d;
  } else {
    return malformed("{ARGON2} value does not start with $argon2id$, $argon2i$ or $argon2d$");
  }
  const std::string encoded(data);
  const int rc = argon2_verify(encoded.c_str(), password.data(), password.size(), type);
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) {
    return error::temporary(errc::unavailable, "temporary authentication failure",
                            "argon2 could not allocate memory");
  }
  return malformed(std::string("{ARGON2} value rejected: ") + argon2_error_message(rc));
}

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) != 1) return {};
  return s;
}

}  // namespace

bool parse_password_scheme(std::string_view text, password_scheme& out) noexcept {
  const std::string u = upper(text);
  if (u == "SSHA")
    out = password_scheme::ssha;
  else if (u == "SSHA256")
    out = password_scheme::ssha256;
  else if (u == "SSHA512")
    out = password_scheme::ssha512;
  else if (u == "SHA512-CRYPT")
    out = password_scheme::crypt_sha512;
  else if (u == "YESCRYPT")
    out = password_scheme::crypt_yescrypt;
  else if (u == "ARGON2ID")
    out = password_scheme::argon2id;
  else
    return false;
  return true;
}

result<bool> verify_password(std::string_view stored, std::string_view password) {
  if (stored.size() < 3 || stored.front() != '{') {
    return malformed("userPassword has no {SCHEME} prefix");
  }
  const auto close = stored.find('}');
  if (close == std::string_view::npos) return malformed("userPassword scheme is not closed by '}'");
  const std::string scheme = upper(stored.substr(1, close - 1));
  const std::string_view data = stored.substr(close + 1);

  if (scheme == "SSHA") return verify_salted(EVP_sha1(), scheme, data, password, true);
  if (scheme == "SSHA256") return verify_salted(EVP_sha256(), scheme, data, password, true);
  if (scheme == "SSHA512") return verify_salted(EVP_sha512(), scheme, data, password, true);
  if (scheme == "SHA") return verify_salted(EVP_sha1(), scheme, data, password, false);
  if (scheme == "SHA256") return verify_salted(EVP_sha256(), scheme, data, password, false);
  if (scheme == "SHA512") return verify_salted(EVP_sha512(), scheme, data, password, false);
  if (scheme == "CRYPT") return verify_crypt(data, password);
  if (scheme == "ARGON2") return verify_argon2(data, password);
  if (scheme == "PLAIN" || scheme == "CLEARTEXT") {
    return equal_ct(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                    reinterpret_cast<const unsigned char*>(password.data()), password.size());
  }
  return malformed("userPassword scheme {" + scheme + "} is not supported");
}

result<std::string> hash_password(password_scheme scheme, std::string_view password) {
  const auto salted = [&](const EVP_MD* md, std::string_view name) -> result<std::string> {
    const std::string salt = random_bytes(16);
    if (salt.empty()) return error::internal_error("RAND_bytes failed");
    auto d = digest(md, password, reinterpret_cast<const unsigned char*>(salt.data()), salt.size());
    if (d.empty()) return error::internal_error("OpenSSL digest failed");
    d.insert(d.end(), salt.begin(), salt.end());
    return "{" + std::string(name) + "}" +
           base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  };
  const auto crypted = [&](const char* prefix) -> result<std::string> {
    std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> setting{};
    if (crypt_gensalt_rn(prefix, 0, nullptr, 0, setting.data(), setting.size()) == nullptr) {
      return error::internal_error(std::string("crypt_gensalt_rn failed for ") + prefix);
    }
    auto cd = std::make_unique<crypt_data>();
    std::memset(cd.get(), 0, sizeof(crypt_data));
    const std::string pw(password);
    const char* out = crypt_r(pw.c_str(), setting.data(), cd.get());
    if (out == nullptr || out[0] == '*') return error::internal_error("crypt_r failed");
    std::string value = std::string("{CRYPT}") + out;
    OPENSSL_cleanse(cd.get(), sizeof(crypt_data));
    return value;
  };
  switch (scheme) {
    case password_scheme::ssha:
      return salted(EVP_sha1(), "SSHA");
    case password_scheme::ssha256:
      return salted(EVP_sha256(), "SSHA256");
    case password_scheme::ssha512:
      return salted(EVP_sha512(), "SSHA512");
    case password_scheme::crypt_sha512:
      return crypted("$6$");
    case password_scheme::crypt_yescrypt:
      return crypted("$y$");
    case password_scheme::argon2id: {
      // OWASP's second recommended set: 19 MiB, 2 passes, 1 lane.
      constexpr std::uint32_t t_cost = 2, m_cost = 19 * 1024, lanes = 1;
      const std::string salt = random_bytes(16);
      if (salt.empty()) return error::internal_error("RAND_bytes failed");
      std::string encoded(argon2_encodedlen(t_cost, m_cost, lanes, 16, 32, Argon2_id), '\0');
      const int rc =
          argon2id_hash_encoded(t_cost, m_cost, lanes, password.data(), password.size(),
                                salt.data(), salt.size(), 32, encoded.data(), encoded.size());
      if (rc != ARGON2_OK)
        return error::internal_error(std::string("argon2: ") + argon2_error_message(rc));
      encoded.resize(std::strlen(encoded.c_str()));
      return "{ARGON2}" + encoded;
    }
  }
  return error::internal_error("unknown password scheme");
}

namespace {

/// The '$'-separated fields of a modular crypt string ("$6$salt$hash" → "", "6", "salt", "hash").
std::vector<std::string_view> dollar_fields(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto d = s.find('$');
    out.push_back(s.substr(0, d));
    if (d == std::string_view::npos) return out;
    s.remove_prefix(d + 1);
  }
}

/// Splits "{SCHEME}data" into the upper-cased scheme and the data; false when malformed.
bool split_stored(std::string_view stored, std::string& scheme, std::string_view& data) {
  if (stored.size() < 3 || stored.front() != '{') return false;
  const auto close = stored.find('}');
  if (close == std::string_view::npos) return false;
  scheme = upper(stored.substr(1, close - 1));
  data = stored.substr(close + 1);
  return true;
}

}  // namespace

std::string password_cost_class(std::string_view stored) {
  std::string scheme;
  std::string_view data;
  if (!split_stored(stored, scheme, data)) return {};
  std::string out = "{" + scheme + "}";
  if (scheme != "CRYPT" && scheme != "ARGON2") return out;
  if (!data.starts_with('$')) return out + (scheme == "CRYPT" ? "des" : "");
  const auto f = dollar_fields(data);
  std::size_t keep = f.size() >= 3 ? f.size() - 2 : f.size();                 // drop salt and hash
  if (scheme == "CRYPT" && f.size() == 4 && f[1].starts_with('2')) keep = 3;  // bcrypt: $2b$12$…
  for (std::size_t i = 1; i < keep; ++i) {
    out += '$';
    out += f[i];
  }
  return out + "$";
}

result<std::string> password_like(std::string_view model) {
  std::string scheme;
  std::string_view data;
  if (!split_stored(model, scheme, data)) return malformed("userPassword has no {SCHEME} prefix");
  // 24 random octets as base64: no NUL (crypt_r), unguessable.
  const std::string raw = random_bytes(24);
  if (raw.empty()) return error::internal_error("RAND_bytes failed");
  const std::string secret = base64_encode(raw);
  if (scheme == "SSHA") return hash_password(password_scheme::ssha, secret);
  if (scheme == "SSHA256") return hash_password(password_scheme::ssha256, secret);
  if (scheme == "SSHA512") return hash_password(password_scheme::ssha512, secret);
  if (scheme == "SHA" || scheme == "SHA256" || scheme == "SHA512") {
    const EVP_MD* md = scheme == "SHA"      ? EVP_sha1()
                       : scheme == "SHA256" ? EVP_sha256()
                                            : EVP_sha512();
    auto d = digest(md, secret, nullptr, 0);
    if (d.empty()) return error::internal_error("OpenSSL digest failed");
    return "{" + scheme + "}" +
           base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  }
  if (scheme == "PLAIN" || scheme == "CLEARTEXT") return "{" + scheme + "}" + secret;
  if (scheme == "CRYPT") {
    if (data.empty() || data.size() >= CRYPT_OUTPUT_SIZE)
      return malformed("{CRYPT} value empty or too long");
    // crypt(3) takes a whole hash as its setting: same method, cost and salt.
    const std::string setting(data);
    auto cd = std::make_unique<crypt_data>();
    std::memset(cd.get(), 0, sizeof(crypt_data));
    const char* out = crypt_r(secret.c_str(), setting.c_str(), cd.get());
    if (out == nullptr || out[0] == '*')
      return malformed("{CRYPT} method or salt not supported by libxcrypt");
    std::string value = std::string("{CRYPT}") + out;
    OPENSSL_cleanse(cd.get(), sizeof(crypt_data));
    return value;
  }
  if (scheme == "ARGON2") {
    // $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
    const auto f = dollar_fields(data);
    argon2_type type{};
    if (f.size() < 5 || !f[0].empty()) return malformed("{ARGON2} value is malformed");
    if (f[1] == "argon2id") {
      type = Argon2_id;
    } else if (f[1] == "argon2i") {
      type = Argon2_i;
    } else if (f[1] == "argon2d") {
      type = Argon2_d;
    } else {
      return malformed("{ARGON2} value names no known argon2 type");
    }
    unsigned version = ARGON2_VERSION_13, m = 0, t = 0, p = 0;
    std::size_t i = 2;
    if (f[i].starts_with("v="))
      version = static_cast<unsigned>(std::atoi(std::string(f[i++].substr(2)).c_str()));
    if (f.size() != i + 3 ||
        std::sscanf(std::string(f[i]).c_str(), "m=%u,t=%u,p=%u", &m, &t, &p) != 3 || m == 0 ||
        t == 0 || p == 0) {
      return malformed("{ARGON2} parameters are malformed");
    }
    // Unpadded base64: 4 characters per 3 octets.
    const std::size_t salt_len = std::max<std::size_t>(8, f[i + 1].size() * 3 / 4);
    const std::size_t hash_len = std::max<std::size_t>(4, f[i + 2].size() * 3 / 4);
    const std::string salt = random_bytes(salt_len);
    if (salt.empty()) return error::internal_error("RAND_bytes failed");
    std::string encoded(argon2_encodedlen(t, m, p, static_cast<std::uint32_t>(salt_len),
                                          static_cast<std::uint32_t>(hash_len), type),
                        '\0');
    const int rc = argon2_hash(t, m, p, secret.data(), secret.size(), salt.data(), salt.size(),
                               nullptr, hash_len, encoded.data(), encoded.size(), type,
                               static_cast<argon2_version>(version));
    if (rc != ARGON2_OK)
      return malformed(std::string("{ARGON2} parameters rejected: ") + argon2_error_message(rc));
    encoded.resize(std::strlen(encoded.c_str()));
    return "{ARGON2}" + encoded;
  }
  return malformed("userPassword scheme {" + scheme + "} is not supported");
}

}  // namespace hamail::directory

#include "hamail/directory/password.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

using namespace hamail::directory;

namespace {

bool verifies(std::string_view stored, std::string_view pw) {
  auto r = verify_password(stored, pw);
  CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
  return *r;
}

}  // namespace

class password_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(password_test);
  CPPUNIT_TEST(ssha_from_slappasswd_verifies);
  CPPUNIT_TEST(unsalted_sha_from_slappasswd_verifies);
  CPPUNIT_TEST(ssha256_and_ssha512_vectors_verify);
  CPPUNIT_TEST(sha512_crypt_from_glibc_verifies);
  CPPUNIT_TEST(yescrypt_from_libxcrypt_verifies);
  CPPUNIT_TEST(argon2id_reference_vector_verifies);
  CPPUNIT_TEST(every_created_scheme_round_trips);
  CPPUNIT_TEST(salts_differ_between_hashes);
  CPPUNIT_TEST(wrong_password_is_false_not_error);
  CPPUNIT_TEST(missing_or_unknown_scheme_is_error);
  CPPUNIT_TEST(truncated_base64_is_error);
  CPPUNIT_TEST(scheme_name_is_case_insensitive);
  CPPUNIT_TEST(password_with_nul_never_matches_crypt);
  CPPUNIT_TEST(plain_scheme_compares_exactly);
  CPPUNIT_TEST(cost_class_keeps_parameters_and_drops_salt);
  CPPUNIT_TEST(dummy_has_the_models_scheme_and_cost_and_matches_nothing);
  CPPUNIT_TEST(dummy_of_malformed_model_is_error);
  CPPUNIT_TEST_SUITE_END();

 public:
  void ssha_from_slappasswd_verifies() {
    // slappasswd -s 'correct horse' -h '{SSHA}'
    CPPUNIT_ASSERT(verifies("{SSHA}xB2ATmDIdEiF0w7qTRBCGxdxVzlC3CaG", "correct horse"));
    CPPUNIT_ASSERT(!verifies("{SSHA}xB2ATmDIdEiF0w7qTRBCGxdxVzlC3CaG", "correct horsE"));
  }
  void unsalted_sha_from_slappasswd_verifies() {
    CPPUNIT_ASSERT(verifies("{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", "correct horse"));
    CPPUNIT_ASSERT(!verifies("{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", "correct hors"));
  }
  void ssha256_and_ssha512_vectors_verify() {
    // Python hashlib, salt "0123456789abcdef".
    CPPUNIT_ASSERT(
        verifies("{SSHA512}uIMBRJDYyi++"
                 "ydl2YpjLqJsD4FEOY4x6dYBTjdryDtlK4nDiaGfezq9n4Yt9tUKSnHDcO95zcLlVgujbGyXJ"
                 "FjAxMjM0NTY3ODlhYmNkZWY=",
                 "correct horse"));
    CPPUNIT_ASSERT(
        verifies("{SSHA256}TycnyLJ5QhE2eprQH+cZDi318lzhJ/29M/zKKptu2m4wMTIzNDU2Nzg5YWJjZGVm",
                 "correct horse"));
  }
  void sha512_crypt_from_glibc_verifies() {
    const char* h =
        "{CRYPT}$6$E5SITMR29NmYxGHO$XEhD4hrQY4UF8Z4Z.uKK8xq0vfe3GqWFIyG7DY3wy1kB2a6iAlfMxj98spBZ/"
        "1MeiYJID6.Fls/n2wRhcKoUx1";
    CPPUNIT_ASSERT(verifies(h, "correct horse"));
    CPPUNIT_ASSERT(!verifies(h, "Correct horse"));
  }
  void yescrypt_from_libxcrypt_verifies() {
    const char* h =
        "{CRYPT}$y$j9T$l7zPPvGFLNXXQtxkjrCn30$QYaWACNpT/ppdJv8N3Sxrw.wyT/OD7yf6ARXqpVMNeD";
    CPPUNIT_ASSERT(verifies(h, "correct horse"));
    CPPUNIT_ASSERT(!verifies(h, "correct horse "));
  }
  void argon2id_reference_vector_verifies() {
    // The reference implementation's own test vector (password "password", salt "somesalt").
    const char* h =
        "{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    CPPUNIT_ASSERT(verifies(h, "password"));
    CPPUNIT_ASSERT(!verifies(h, "passwore"));
  }
  void every_created_scheme_round_trips() {
    for (auto s : {password_scheme::ssha, password_scheme::ssha256, password_scheme::ssha512,
                   password_scheme::crypt_sha512, password_scheme::crypt_yescrypt,
                   password_scheme::argon2id}) {
      auto h = hash_password(s, "pässwörd with spaces");
      CPPUNIT_ASSERT(h.has_value());
      CPPUNIT_ASSERT(verifies(*h, "pässwörd with spaces"));
      CPPUNIT_ASSERT(!verifies(*h, "pässwörd with space"));
    }
  }
  void salts_differ_between_hashes() {
    auto a = hash_password(password_scheme::ssha512, "x");
    auto b = hash_password(password_scheme::ssha512, "x");
    CPPUNIT_ASSERT(a && b);
    CPPUNIT_ASSERT(*a != *b);
  }
  void wrong_password_is_false_not_error() {
    auto r = verify_password("{SSHA}xB2ATmDIdEiF0w7qTRBCGxdxVzlC3CaG", "");
    CPPUNIT_ASSERT(r.has_value());
    CPPUNIT_ASSERT(!*r);
  }
  void missing_or_unknown_scheme_is_error() {
    CPPUNIT_ASSERT(!verify_password("xB2ATmDIdEiF0w7qTRBCGxdxVzlC3CaG", "a").has_value());
    CPPUNIT_ASSERT(!verify_password("{MD5}abc", "a").has_value());
    CPPUNIT_ASSERT(!verify_password("{SSHA", "a").has_value());
    CPPUNIT_ASSERT(!verify_password("", "a").has_value());
    CPPUNIT_ASSERT(!verify_password("{CRYPT}$9$nonsense", "a").has_value());
    CPPUNIT_ASSERT(!verify_password("{ARGON2}$scrypt$x", "a").has_value());
  }
  void truncated_base64_is_error() {
    CPPUNIT_ASSERT(!verify_password("{SSHA}xB2ATmDIdEiF0w7q", "correct horse").has_value());
    CPPUNIT_ASSERT(!verify_password("{SSHA}!!!!", "correct horse").has_value());
    CPPUNIT_ASSERT(
        !verify_password("{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=AAAA", "correct horse").has_value());
  }
  void scheme_name_is_case_insensitive() {
    CPPUNIT_ASSERT(verifies("{ssha}xB2ATmDIdEiF0w7qTRBCGxdxVzlC3CaG", "correct horse"));
    password_scheme s{};
    CPPUNIT_ASSERT(parse_password_scheme("argon2id", s) && s == password_scheme::argon2id);
    CPPUNIT_ASSERT(!parse_password_scheme("md5", s));
  }
  void password_with_nul_never_matches_crypt() {
    auto h = hash_password(password_scheme::crypt_sha512, "abc");
    CPPUNIT_ASSERT(h.has_value());
    CPPUNIT_ASSERT(!verifies(*h, std::string_view("abc\0def", 7)));
  }
  void plain_scheme_compares_exactly() {
    CPPUNIT_ASSERT(verifies("{PLAIN}secret", "secret"));
    CPPUNIT_ASSERT(!verifies("{PLAIN}secret", "secret2"));
    CPPUNIT_ASSERT(!verifies("{PLAIN}secret", "secre"));
  }
  void cost_class_keeps_parameters_and_drops_salt() {
    CPPUNIT_ASSERT_EQUAL(std::string("{CRYPT}$6$"),
                         password_cost_class("{CRYPT}$6$E5SITMR29NmYxGHO$XEhD4hrQY4UF8"));
    CPPUNIT_ASSERT_EQUAL(std::string("{CRYPT}$6$rounds=20000$"),
                         password_cost_class("{crypt}$6$rounds=20000$salt$hash"));
    CPPUNIT_ASSERT_EQUAL(std::string("{CRYPT}$y$j9T$"),
                         password_cost_class("{CRYPT}$y$j9T$l7zPPvGFLNXXQtxkjrCn30$QYaW"));
    CPPUNIT_ASSERT_EQUAL(std::string("{CRYPT}$2b$12$"),
                         password_cost_class("{CRYPT}$2b$12$abcdefghijklmnopqrstuv0123456789"));
    CPPUNIT_ASSERT_EQUAL(std::string("{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$"),
                         password_cost_class("{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c29t$CTFh"));
    CPPUNIT_ASSERT_EQUAL(std::string("{SSHA512}"), password_cost_class("{SSHA512}abcd"));
    CPPUNIT_ASSERT_EQUAL(std::string(), password_cost_class("nothing"));
  }
  void dummy_has_the_models_scheme_and_cost_and_matches_nothing() {
    std::vector<std::string> models = {
        "{SSHA}xB2ATmDIdEiF0w7qTRBCGxdxVzlC3CaG",
        "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=",
        "{PLAIN}correct horse",
        "{CRYPT}$6$rounds=6000$E5SITMR29NmYxGHO$XEhD4hrQY4UF8Z4Z."
        "uKK8xq0vfe3GqWFIyG7DY3wy1kB2a6iAlf",
        "{CRYPT}$y$j9T$l7zPPvGFLNXXQtxkjrCn30$QYaWACNpT/ppdJv8N3Sxrw.wyT/OD7yf6ARXqpVMNeD",
        "{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
    };
    for (auto s :
         {password_scheme::ssha512, password_scheme::crypt_sha512, password_scheme::argon2id}) {
      models.push_back(*hash_password(s, "correct horse"));
    }
    for (const auto& m : models) {
      auto d = password_like(m);
      CPPUNIT_ASSERT_MESSAGE(m + (d ? "" : ": " + d.err().describe()), d.has_value());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(m + " -> " + *d, password_cost_class(m),
                                   password_cost_class(*d));
      CPPUNIT_ASSERT_MESSAGE(m, *d != m);
      CPPUNIT_ASSERT_MESSAGE(m, !verifies(*d, "correct horse"));
      CPPUNIT_ASSERT_MESSAGE(m, !verifies(*d, ""));
    }
  }
  void dummy_of_malformed_model_is_error() {
    CPPUNIT_ASSERT(!password_like("no scheme"));
    CPPUNIT_ASSERT(!password_like("{MD5}abc"));
    CPPUNIT_ASSERT(!password_like("{ARGON2}$argon2id$v=19$bad$c29t$CTFh"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(password_test);

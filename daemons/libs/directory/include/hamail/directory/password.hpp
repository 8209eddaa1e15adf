#pragma once

#include <string>
#include <string_view>

#include "hamail/core/result.hpp"

namespace hamail::directory {

/// Password schemes hamail can create; it verifies these and {SHA}, {SHA256},
/// {SHA512}, {PLAIN}/{CLEARTEXT} and any {CRYPT} method libxcrypt knows.
enum class password_scheme { ssha, ssha256, ssha512, crypt_sha512, crypt_yescrypt, argon2id };

/// Parses "SSHA", "SSHA256", "SSHA512", "SHA512-CRYPT", "YESCRYPT", "ARGON2ID"
/// (case-insensitive). Returns false for anything else.
bool parse_password_scheme(std::string_view text, password_scheme& out) noexcept;

/// Checks `password` against an RFC 2307 `userPassword` value ("{SCHEME}data").
/// Returns true/false for a match; an error when the stored value is malformed or
/// its scheme unknown (an operator's problem: log it, refuse the login).
/// Comparisons are constant-time in the secret.
result<bool> verify_password(std::string_view stored, std::string_view password);

/// Hashes `password` with a fresh random salt in `scheme`, as a `userPassword` value.
result<std::string> hash_password(password_scheme scheme, std::string_view password);

/// What decides the cost of checking a `userPassword` value: its scheme and cost
/// parameters without salt or hash ("{CRYPT}$6$rounds=10000$",
/// "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$", "{SSHA512}"). Two values of the
/// same class take the same time to verify. Empty when the value is malformed.
std::string password_cost_class(std::string_view stored);

/// A `userPassword` value of the same scheme and cost as `model`, for a random
/// password nobody knows (fresh salt, except for {CRYPT}, which keeps the
/// model's setting whole). Logins for unknown accounts are checked against it,
/// so that the time an answer takes does not tell which accounts exist.
/// Errors as verify_password for a malformed or unsupported model.
result<std::string> password_like(std::string_view model);

}  // namespace hamail::directory

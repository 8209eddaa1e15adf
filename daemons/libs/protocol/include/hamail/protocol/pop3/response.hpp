#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/pop3/command.hpp"

namespace hamail::pop3 {

/// Longest response line, CRLF included (RFC 2449 §4).
inline constexpr std::size_t max_response_line = 512;

/// RFC 2449 §8 / RFC 3206 response codes.
enum class resp_code {
  none,
  auth,         ///< [AUTH]: credentials refused
  sys_temp,     ///< [SYS/TEMP]: a temporary failure on the server
  sys_perm,     ///< [SYS/PERM]: a permanent failure on the server
  in_use,       ///< [IN-USE]: the mailbox is locked by another POP3 session
  login_delay,  ///< [LOGIN-DELAY]: logged in too soon after the last login
};

/// Returns the bracketed text of a code ("[SYS/TEMP]"), empty for none.
std::string_view to_string(resp_code code) noexcept;

/// Returns "+OK [CODE] text\r\n". Control octets in `text` become spaces and
/// the line is cut to max_response_line octets.
std::string ok(std::string_view text = {}, resp_code code = resp_code::none);
/// Returns "-ERR [CODE] text\r\n", with the same cleaning and cut as ok.
std::string err(std::string_view text, resp_code code = resp_code::none);
/// Returns the -ERR line for a refused line or command.
std::string err(const command_error& error);
/// Returns a SASL challenge line "+ base64\r\n" (RFC 5034 §4); an empty
/// challenge is "+ \r\n". Not cut: base64 holds no control octets.
std::string challenge(std::string_view base64);

/// What a server offers, for the CAPA response (RFC 2449 §6).
struct capabilities {
  bool top = true;                ///< TOP
  bool uidl = true;               ///< UIDL
  bool user = true;               ///< USER (USER/PASS allowed now)
  bool pipelining = true;         ///< PIPELINING
  bool resp_codes = true;         ///< RESP-CODES
  bool auth_resp_code = true;     ///< AUTH-RESP-CODE (RFC 3206)
  bool stls = false;              ///< STLS (offered only before TLS)
  std::vector<std::string> sasl;  ///< SASL mechanisms, e.g. {"PLAIN", "LOGIN"}; none: no SASL line
  std::optional<std::string> expire;       ///< EXPIRE argument, e.g. "NEVER"
  std::optional<std::string> login_delay;  ///< LOGIN-DELAY argument in seconds
  std::string implementation;              ///< IMPLEMENTATION argument; empty: not listed
};

/// Returns the whole CAPA response: "+OK ...", one line per capability, ".".
/// Every line is cut to max_response_line octets (SASL keeps whole mechanism names).
std::string capa(const capabilities& caps);

}  // namespace hamail::pop3

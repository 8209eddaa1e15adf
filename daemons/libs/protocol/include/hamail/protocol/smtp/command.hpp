#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hamail/protocol/smtp/address.hpp"

namespace hamail::smtp {

/// BODY= values (RFC 6152, RFC 3030).
enum class body_type { seven_bit, eight_bit_mime, binary_mime };

/// RET= values (RFC 3461).
enum class dsn_return { full, headers };

/// An ESMTP parameter the parser has no type for; the session decides (usually 555).
struct esmtp_parameter {
  std::string keyword;               ///< as sent
  std::optional<std::string> value;  ///< as sent; nullopt when there was no "="

  friend bool operator==(const esmtp_parameter&, const esmtp_parameter&) = default;
};

/// The parameters of MAIL FROM, typed where known.
struct mail_parameters {
  std::optional<std::uint64_t> size;  ///< SIZE= (RFC 1870)
  std::optional<body_type> body;      ///< BODY= (RFC 6152, RFC 3030)
  bool smtputf8 = false;              ///< SMTPUTF8 (RFC 6531)
  std::optional<dsn_return> ret;      ///< RET= (RFC 3461)
  std::optional<std::string> envid;   ///< ENVID=, xtext-decoded (RFC 3461)
  std::optional<std::string>
      auth;  ///< AUTH=, xtext-decoded; "<>" means identity unknown (RFC 4954)
  std::vector<esmtp_parameter> unknown;  ///< anything else, in order

  friend bool operator==(const mail_parameters&, const mail_parameters&) = default;
};

/// NOTIFY= (RFC 3461): `never` alone, or any of the other three.
struct dsn_notify {
  bool never = false;
  bool success = false;
  bool failure = false;
  bool delay = false;

  friend bool operator==(const dsn_notify&, const dsn_notify&) = default;
};

/// ORCPT= (RFC 3461): addr-type ";" xtext.
struct original_recipient {
  std::string address_type;  ///< as sent, e.g. "rfc822"
  std::string address;       ///< xtext-decoded; for "utf-8" (RFC 6533) kept as sent
  std::string raw;           ///< the whole value as sent

  friend bool operator==(const original_recipient&, const original_recipient&) = default;
};

/// The parameters of RCPT TO, typed where known.
struct rcpt_parameters {
  std::optional<dsn_notify> notify;         ///< NOTIFY=
  std::optional<original_recipient> orcpt;  ///< ORCPT=
  std::vector<esmtp_parameter> unknown;     ///< anything else, in order

  friend bool operator==(const rcpt_parameters&, const rcpt_parameters&) = default;
};

/// HELO domain. The argument is kept as sent; `well_formed` says whether it is
/// an RFC 5321 Domain, since real clients send all sorts and policy decides.
struct helo_command {
  std::string domain;
  bool well_formed = false;
  friend bool operator==(const helo_command&, const helo_command&) = default;
};
/// EHLO domain-or-address-literal, kept as sent (see helo_command).
struct ehlo_command {
  std::string domain;
  bool well_formed = false;
  friend bool operator==(const ehlo_command&, const ehlo_command&) = default;
};
/// LHLO (RFC 2033), as EHLO.
struct lhlo_command {
  std::string domain;
  bool well_formed = false;
  friend bool operator==(const lhlo_command&, const lhlo_command&) = default;
};
/// MAIL FROM:<reverse-path> [parameters].
struct mail_command {
  path sender;
  mail_parameters params;
  friend bool operator==(const mail_command&, const mail_command&) = default;
};
/// RCPT TO:<forward-path> [parameters].
struct rcpt_command {
  path recipient;
  rcpt_parameters params;
  friend bool operator==(const rcpt_command&, const rcpt_command&) = default;
};
/// DATA.
struct data_command {
  friend bool operator==(const data_command&, const data_command&) = default;
};
/// BDAT chunk-size [LAST] (RFC 3030).
struct bdat_command {
  std::uint64_t size = 0;
  bool last = false;
  friend bool operator==(const bdat_command&, const bdat_command&) = default;
};
/// RSET.
struct rset_command {
  friend bool operator==(const rset_command&, const rset_command&) = default;
};
/// NOOP [string]; the argument is ignored by servers but kept.
struct noop_command {
  std::string argument;
  friend bool operator==(const noop_command&, const noop_command&) = default;
};
/// QUIT.
struct quit_command {
  friend bool operator==(const quit_command&, const quit_command&) = default;
};
/// VRFY string.
struct vrfy_command {
  std::string argument;
  friend bool operator==(const vrfy_command&, const vrfy_command&) = default;
};
/// EXPN string.
struct expn_command {
  std::string argument;
  friend bool operator==(const expn_command&, const expn_command&) = default;
};
/// HELP [topic].
struct help_command {
  std::string topic;
  friend bool operator==(const help_command&, const help_command&) = default;
};
/// STARTTLS (RFC 3207). Bytes pipelined after it must be discarded by the
/// session before the handshake (the CVE-2011-0411 class of injection).
struct starttls_command {
  friend bool operator==(const starttls_command&, const starttls_command&) = default;
};
/// AUTH mechanism [initial-response] (RFC 4954).
struct auth_command {
  std::string mechanism;                        ///< upper-cased SASL mechanism name
  std::optional<std::string> initial_response;  ///< base64 as sent; "=" means empty
  friend bool operator==(const auth_command&, const auth_command&) = default;
};

/// One XCLIENT attribute: NAME upper-cased, VALUE xtext-decoded.
struct xclient_attribute {
  std::string name;
  std::string value;
  friend bool operator==(const xclient_attribute&, const xclient_attribute&) = default;
};

/// Limits of an XCLIENT command, beyond the command line's own.
inline constexpr std::size_t max_xclient_attributes = 16;  ///< attributes in one command
inline constexpr std::size_t max_xclient_name = 32;        ///< octets of an attribute name
inline constexpr std::size_t max_xclient_value = 255;      ///< octets of a decoded value

/// XCLIENT attribute=value ... (Postfix XCLIENT_README): a trusted proxy tells
/// the server who its client really is. Names are atoms (letters, digits, "-",
/// "_"), each at most once; values are xtext. The parser knows no names: which
/// ones are accepted, and from whom, is the session's business.
struct xclient_command {
  std::vector<xclient_attribute> attributes;  ///< in the order sent, at least one
  friend bool operator==(const xclient_command&, const xclient_command&) = default;
};

/// One parsed command; the session dispatches with std::visit.
using command =
    std::variant<helo_command, ehlo_command, lhlo_command, mail_command, rcpt_command, data_command,
                 bdat_command, rset_command, noop_command, quit_command, vrfy_command, expn_command,
                 help_command, starttls_command, auth_command, xclient_command>;

/// Returns the upper-case verb of a command ("MAIL", "STARTTLS"), for logs and tables.
std::string_view verb_name(const command& cmd) noexcept;

/// Returns the command as one canonical wire line, CRLF included; parsing it
/// again yields an equal command. For relaying: AUTH lines carry credentials,
/// so logs should name commands with verb_name instead.
std::string to_wire(const command& cmd);

}  // namespace hamail::smtp

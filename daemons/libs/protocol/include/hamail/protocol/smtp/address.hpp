#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hamail::smtp {

/// RFC 5321 §4.5.3.1 size limits, in octets as sent.
inline constexpr std::size_t max_local_part_length = 64;
/// Longest domain (or address literal).
inline constexpr std::size_t max_domain_length = 255;
/// Longest path, angle brackets and any source route included.
inline constexpr std::size_t max_path_length = 256;

/// An RFC 5321 Mailbox: local-part "@" (Domain / address-literal).
struct mailbox {
  std::string local_part;          ///< decoded: a quoted-string's quotes and quoted-pairs removed
  std::string domain;              ///< as sent: a domain name, or an address literal with brackets
  bool quoted_local_part = false;  ///< the local part was sent as a quoted-string
  bool address_literal = false;    ///< the domain is an address literal ("[192.0.2.1]")

  /// Returns "local@domain" in canonical wire form: the local part re-quoted
  /// only where a dot-string cannot carry it.
  std::string address() const;
  /// Returns true when the local part or domain holds non-ASCII (SMTPUTF8) octets.
  bool is_utf8() const noexcept;

  friend bool operator==(const mailbox&, const mailbox&) = default;
};

/// What a path names.
enum class path_kind {
  null,        ///< "<>": the null reverse-path (bounces)
  postmaster,  ///< "<Postmaster>" without a domain (RCPT only)
  mailbox,     ///< an ordinary mailbox
};

/// An RFC 5321 Reverse-path or Forward-path; any source route is dropped.
struct path {
  path_kind kind = path_kind::null;
  mailbox box;           ///< the mailbox; for a bare postmaster, local part as sent and no domain
  std::string original;  ///< the text between the angle brackets exactly as sent

  /// Returns the canonical wire form with angle brackets ("<>", "<Postmaster>", "<a@b>").
  std::string wire() const;

  friend bool operator==(const path&, const path&) = default;
};

/// Why a path was refused.
enum class address_error {
  syntax,              ///< not an RFC 5321 path
  too_long,            ///< a local part, domain or the whole path is over its limit
  utf8_not_permitted,  ///< non-ASCII octets without SMTPUTF8 (RFC 6531)
  null_not_permitted,  ///< "<>" where a mailbox is required
};

/// What a path may be, decided by the command that carries it.
struct path_options {
  bool allow_null = false;        ///< "<>" is a valid reverse-path (MAIL)
  bool allow_postmaster = false;  ///< "<Postmaster>" is a valid forward-path (RCPT)
  bool utf8 = false;              ///< SMTPUTF8 is in force: UTF-8 local parts and domains allowed
};

/// The outcome of parse_path: a path, or why not and a short text for the reply.
struct path_result {
  std::optional<path> value;  ///< set on success
  address_error error = address_error::syntax;
  std::string_view detail;  ///< static text naming the defect, for the reply
};

/// Parses `text`, which must be exactly "<" path ">"; returns the path or the error.
path_result parse_path(std::string_view text, path_options options);

/// Returns true when `text` is an RFC 5321 Domain (U-labels allowed when `utf8`).
bool is_valid_domain(std::string_view text, bool utf8 = false) noexcept;
/// Returns true when `text` is an RFC 5321 address-literal, brackets included.
bool is_valid_address_literal(std::string_view text) noexcept;
/// Returns true when `text` is an RFC 5321 Dot-string (UTF-8 atoms when `utf8`).
bool is_valid_dot_string(std::string_view text, bool utf8 = false) noexcept;

}  // namespace hamail::smtp

#pragma once

// The `[smtp]` table hamail-backend and hamail-proxy share: timing, limits and
// sender policy of their SMTP, submission and LMTP listeners. Lean (core only),
// so programs that just read a configuration file do not pull in the sessions.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hamail::config {
class section;
}

namespace hamail::smtpd {

/// Senders an authenticated account may use besides its own addresses
/// (`[[smtp.allowed_senders]]`).
struct sender_grant {
  std::string account;               ///< an account id, or "*" for every account
  std::vector<std::string> senders;  ///< addresses, "@domain" (any address there) or "*"
};

/// SMTP/LMTP intake policy (`[smtp]`).
struct smtp_settings {
  // Timing (RFC 5321 §4.5.3.2) and the tighter limits before AUTH on submission.
  std::chrono::milliseconds command_timeout = std::chrono::minutes(5);  ///< for a whole command
  std::chrono::milliseconds data_timeout =
      std::chrono::minutes(3);        ///< no body octet for this long
  std::uint64_t min_data_rate = 500;  ///< octets/s a DATA/BDAT body must average; 0: none
  std::chrono::milliseconds min_data_rate_window = std::chrono::seconds(30);  ///< credit cap
  std::chrono::milliseconds min_data_rate_grace = std::chrono::seconds(30);   ///< not measured
  std::chrono::milliseconds command_timeout_before_auth =
      std::chrono::seconds(60);                  ///< submission, until AUTH succeeds
  std::size_t max_errors_before_auth = 5;        ///< submission, until AUTH succeeds
  std::size_t max_line_before_auth = 512;        ///< command line octets, submission before AUTH
  std::uint64_t max_message_size = 50ull << 20;  ///< octets; advertised as SIZE
  std::size_t max_recipients = 100;              ///< per transaction
  std::size_t max_errors = 20;                   ///< bad commands before 421 and close
  bool bare_newlines_normalize = false;          ///< false: reject messages with bare LF/CR
  std::size_t max_line_length = 10000;           ///< octets per body line incl. CRLF
  bool auth_without_tls = false;                 ///< allow AUTH PLAIN/LOGIN over plain text
  std::string recipient_delimiter = "+";         ///< sub-address delimiters; empty: none
  std::string postmaster;    ///< where RCPT TO:<Postmaster> goes; default postmaster@<domain>
  bool sender_check = true;  ///< authenticated MAIL FROM must be the account's address or alias
  std::vector<sender_grant> allowed_senders;  ///< exceptions to sender_check
};

/// Reads the optional `[smtp]` table of `root` into `out`. `hostname` gives the
/// default postmaster: postmaster@ its domain (the host name without its first
/// label when that leaves a dotted domain). Keys a daemon adds of its own are
/// read by that daemon from the same table.
void read_smtp_settings(config::section& root, const std::string& hostname, smtp_settings& out);

}  // namespace hamail::smtpd

#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/smtp/command_parser.hpp"
#include "hamail/protocol/smtp/data_reader.hpp"

namespace hamail::smtp {

/// A reply the server sends: basic code (RFC 5321), enhanced code (RFC 3463,
/// empty where none applies, e.g. greeting, 354, EHLO) and default text.
struct status_code {
  int code;
  std::string_view enhanced;
  std::string_view text;
};

/// The replies sessions use, so that no session hand-types a code.
namespace status {
inline constexpr status_code ok{250, "2.0.0", "OK"};
inline constexpr status_code sender_ok{250, "2.1.0", "Sender OK"};
inline constexpr status_code recipient_ok{250, "2.1.5", "Recipient OK"};
inline constexpr status_code message_accepted{250, "2.0.0", "Message accepted for delivery"};
inline constexpr status_code chunk_accepted{250, "2.0.0", "Chunk accepted"};
inline constexpr status_code reset_ok{250, "2.0.0", "Reset state"};
inline constexpr status_code noop_ok{250, "2.0.0", "OK"};
inline constexpr status_code closing{221, "2.0.0", "Bye"};
inline constexpr status_code help{214, "2.0.0", "See https://www.rfc-editor.org/rfc/rfc5321"};
inline constexpr status_code ready_for_tls{220, "2.0.0", "Ready to start TLS"};
inline constexpr status_code start_data{354, "", "Start mail input; end with <CRLF>.<CRLF>"};
inline constexpr status_code auth_continue{334, "", ""};
inline constexpr status_code auth_ok{235, "2.7.0", "Authentication successful"};
inline constexpr status_code cannot_verify{
    252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"};

inline constexpr status_code shutting_down{421, "4.3.2",
                                           "Service shutting down, closing transmission channel"};
inline constexpr status_code timeout{421, "4.4.2",
                                     "Timeout exceeded, closing transmission channel"};
inline constexpr status_code busy{421, "4.7.0", "Too busy, try again later"};
inline constexpr status_code too_many_errors{421, "4.7.0",
                                             "Too many errors, closing transmission channel"};
inline constexpr status_code mailbox_unavailable_temp{450, "4.2.0",
                                                      "Mailbox temporarily unavailable"};
inline constexpr status_code local_error{451, "4.3.0",
                                         "Local error in processing, try again later"};
inline constexpr status_code backend_unavailable{
    451, "4.4.1", "Mail store temporarily unavailable, try again later"};
inline constexpr status_code over_quota_temp{452, "4.2.2", "Mailbox full, try again later"};
inline constexpr status_code too_many_recipients{452, "4.5.3", "Too many recipients"};
inline constexpr status_code insufficient_storage{452, "4.3.1", "Insufficient system storage"};
inline constexpr status_code auth_temp_failure{454, "4.7.0", "Temporary authentication failure"};
inline constexpr status_code tls_not_available{454, "4.7.0", "TLS not available"};

inline constexpr status_code unknown_command{500, "5.5.1", "Command unrecognized"};
inline constexpr status_code line_too_long{500, "5.5.2", "Line too long"};
inline constexpr status_code command_bare_lf{500, "5.5.2",
                                             "Bare <LF> received; lines must end with <CR><LF>"};
inline constexpr status_code command_bare_cr{500, "5.5.2", "Bare <CR> received"};
inline constexpr status_code syntax{501, "5.5.4", "Syntax error in parameters or arguments"};
inline constexpr status_code bad_sender_syntax{501, "5.1.7", "Bad sender address syntax"};
inline constexpr status_code bad_recipient_syntax{501, "5.1.3", "Bad recipient address syntax"};
inline constexpr status_code bad_parameter_syntax{501, "5.5.4", "Bad parameter syntax"};
inline constexpr status_code bad_base64{501, "5.5.2", "Cannot decode response"};
inline constexpr status_code auth_cancelled{501, "5.0.0", "Authentication cancelled"};
inline constexpr status_code not_implemented{502, "5.5.1", "Command not implemented"};
inline constexpr status_code bad_sequence{503, "5.5.1", "Bad sequence of commands"};
inline constexpr status_code auth_mechanism_unknown{504, "5.5.4",
                                                    "Unrecognized authentication type"};
inline constexpr status_code auth_required{530, "5.7.0", "Authentication required"};
inline constexpr status_code tls_required{530, "5.7.0", "Must issue a STARTTLS command first"};
inline constexpr status_code auth_failed{535, "5.7.8", "Authentication credentials invalid"};
inline constexpr status_code encryption_required{
    538, "5.7.11", "Encryption required for requested authentication mechanism"};
inline constexpr status_code unknown_user{550, "5.1.1", "No such user"};
inline constexpr status_code relay_denied{550, "5.7.1", "Relaying denied"};
inline constexpr status_code bare_lf{550, "5.5.2",
                                     "Message contains bare <LF>; lines must end with <CR><LF>"};
inline constexpr status_code bare_cr{550, "5.5.2",
                                     "Message contains bare <CR>; lines must end with <CR><LF>"};
inline constexpr status_code too_big{552, "5.3.4", "Message size exceeds fixed limit"};
inline constexpr status_code over_quota_perm{552, "5.2.2", "Mailbox full"};
inline constexpr status_code utf8_not_permitted{
    553, "5.6.7", "Non-ASCII addresses not permitted without SMTPUTF8"};
inline constexpr status_code message_line_too_long{554, "5.6.0", "Message line too long"};
inline constexpr status_code no_valid_recipients{554, "5.5.1", "No valid recipients"};
inline constexpr status_code transaction_failed{554, "5.0.0", "Transaction failed"};
inline constexpr status_code unsupported_parameter{555, "5.5.4", "Unsupported parameter"};
}  // namespace status

/// Longest reply line, CRLF included (RFC 5321 §4.5.3.1.5).
inline constexpr std::size_t max_reply_line = 512;

/// A reply under construction: one code and enhanced code, one or more text
/// lines. Text is sanitised (CR, LF and other controls become spaces;
/// non-ASCII becomes '?') and wrapped so no wire line exceeds max_reply_line.
class reply {
 public:
  /// A reply with a code and optional enhanced code, and no text yet.
  explicit reply(int code, std::string_view enhanced = {});
  /// A reply from the status table with its default text.
  explicit reply(const status_code& s);
  /// A reply from the status table with other text.
  reply(const status_code& s, std::string_view text);

  /// Appends a text line (wrapped on output if too long); returns *this.
  reply& add_line(std::string_view text);

  /// Returns the basic code.
  int code() const noexcept { return code_; }
  /// Returns the enhanced code, empty when none.
  std::string_view enhanced() const noexcept { return enhanced_; }
  /// Returns the sanitised text lines, before wrapping.
  const std::vector<std::string>& lines() const noexcept { return lines_; }

  /// Returns the wire form: "250-a\r\n250 b\r\n".
  std::string wire() const;
  /// Appends the wire form to out.
  void append_wire(std::string& out) const;

 private:
  int code_;
  std::string enhanced_;
  std::vector<std::string> lines_;
};

/// Builds the EHLO/LHLO response: "250-<greeting>" then one line per
/// extension keyword (with its parameters), without enhanced codes (RFC 2034).
reply ehlo_reply(std::string_view greeting, std::span<const std::string_view> extensions);
/// As above, for a braced list.
reply ehlo_reply(std::string_view greeting, std::initializer_list<std::string_view> extensions);

/// Returns the table entry answering a refused command line.
const status_code& status_for(parse_error code) noexcept;
/// Returns the table entry answering a finished body; status::message_accepted for ok.
const status_code& status_for(data_status code) noexcept;
/// Returns the reply for a refused command line, with its detail text when it has one.
reply reply_for(const command_error& error);

}  // namespace hamail::smtp

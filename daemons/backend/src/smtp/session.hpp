#pragma once

// One SMTP/LMTP session of hamail-backend. The loop lives in session.cpp; each
// command has its own cmd_*.cpp; command_table.cpp wires verbs to handlers.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "hamail/backend/smtp_service.hpp"
#include "hamail/directory/account.hpp"
#include "hamail/net/connection.hpp"
#include "hamail/protocol/smtp/command_parser.hpp"
#include "hamail/protocol/smtp/data_reader.hpp"
#include "hamail/protocol/smtp/reply.hpp"
#include "hamail/store/store.hpp"
#include "smtp/body_spool.hpp"

namespace hamail::backend::smtp_session_detail {

using boost::asio::awaitable;

/// Which listener flavour the session serves.
enum class flavour {
  smtp,        ///< MX intake: mail for local accounts, AUTH optional
  submission,  ///< AUTH required before MAIL
  lmtp,        ///< RFC 2033: LHLO, one reply per recipient after DATA
};

/// An accepted recipient.
struct recipient {
  std::string address;  ///< as the client gave it (for Received "for")
  std::string account;  ///< owning account id
  store::quota_limits quota;
  smtp::rcpt_parameters dsn;  ///< NOTIFY= and ORCPT= as given (RFC 3461), kept for the delivery log
};

/// The mail transaction between MAIL and the end of DATA/BDAT LAST.
struct transaction {
  smtp::mail_command mail;
  std::vector<recipient> recipients;
  std::size_t rcpt_commands = 0;     ///< RCPTs tried, accepted or not
  std::unique_ptr<body_spool> body;  ///< BDAT: the message being received
  std::optional<smtp::bdat_filter> bdat;
  bool bdat_failed = false;  ///< an earlier BDAT of this transaction failed
};

/// Why the command loop stops.
enum class ending { none, quit, closed };

/// The whole state of one session; handlers in cmd_*.cpp work on it.
class session {
 public:
  session(smtp_context& ctx, flavour f, net::connection& conn);
  /// Runs the session to its end.
  awaitable<void> run();

  // --- shared by the command handlers ---
  smtp_context& ctx;
  const backend_config& cfg;
  net::connection& conn;
  const flavour kind;
  std::string helo;           ///< HELO/EHLO/LHLO argument; empty before it
  bool esmtp = false;         ///< EHLO or LHLO was used
  std::string authenticated;  ///< login name once AUTH succeeded
  std::optional<transaction> tx;
  ending end = ending::none;
  std::size_t errors = 0;
  std::uint64_t messages = 0;  ///< accepted so far, for ids

  /// Queues a reply; replies go out when the input holds no further command
  /// (RFC 2920 pipelining) or at flush().
  void reply(const smtp::reply& r);
  /// Queues a reply from the status table.
  void reply(const smtp::status_code& s) { reply(smtp::reply(s)); }
  /// Sends queued replies; on failure the session ends.
  awaitable<bool> flush();
  /// Counts a client error; past the limit sends 421 and ends the session.
  void count_error();
  /// Reads at least one more octet into the input buffer. On timeout or drain
  /// it queues the goodbye and ends the session; returns false then. `idle`
  /// waits for a command (or SASL line): the whole of it must arrive within the
  /// command timeout of the last reply, however it trickles in. `in_command`
  /// reads a message body: no octet for data_timeout ends it, and so does
  /// falling below the minimum rate once begin_body() was called.
  awaitable<bool> fill(net::read_mode mode);
  /// Starts metering a DATA/BDAT body against [smtp] min_data_rate; it ends
  /// with the transaction (reset_transaction()).
  void begin_body();
  /// True on submission until AUTH succeeds: tighter timeout, error and line limits.
  bool before_auth() const { return kind == flavour::submission && authenticated.empty(); }
  /// Input received and not yet consumed.
  std::string_view pending() const { return std::string_view(in_).substr(in_pos_); }
  /// Marks `n` octets of pending() as consumed.
  void consume(std::size_t n);
  /// Drops all pending input (STARTTLS: bytes sent before the handshake are never used).
  void discard_input();
  /// Reads one line (SASL responses) within the AUTH line limit; nullopt when the
  /// session ended or the line was refused (reply already queued).
  awaitable<std::optional<std::string>> read_line();
  /// Resets the mail transaction (RSET, after a message, after STARTTLS).
  void reset_transaction();
  /// The parser, for STARTTLS and SMTPUTF8 transactions.
  smtp::command_parser& parser() { return parser_; }
  /// Limits for message bodies from the configuration.
  smtp::data_limits body_limits() const;
  /// The next message id ("<session id>.<n>").
  std::string next_message_id();
  /// The DSN envelope (RFC 3461) of the transaction and of recipient `i`, for the
  /// delivery log: "envid=... ret=... notify=... orcpt=...", empty when none was given.
  std::string dsn_summary(std::size_t i) const;
  /// Return-Path and Received header fields for the current transaction.
  std::string trace_headers(std::string_view message_id) const;
  /// Refuses the whole message after its data (DATA's final dot, BDAT LAST):
  /// one reply, or for LMTP one per accepted recipient (RFC 2033 §4.2), at least one.
  void refuse_message(const smtp::reply& r);
  /// Receives the message through the store and answers (one reply, or one per
  /// recipient for LMTP). `body` is sealed here; `binary` (BODY=BINARYMIME) allows NULs.
  awaitable<void> deliver(body_spool& body, const smtp::data_result& verdict, bool binary = false);

 private:
  awaitable<void> dispatch(const smtp::command& cmd);

  smtp::command_parser parser_;
  bool parser_before_auth_ = false;  ///< parser_ has the pre-AUTH limits
  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
  /// When the client was last answered: the next command must be complete by
  /// then + command timeout (RFC 5321 §4.5.3.2.7), bytes do not extend it.
  std::chrono::steady_clock::time_point last_reply_ = std::chrono::steady_clock::now();
};

// Command handlers: one file each.
awaitable<void> cmd_helo(session& s, const smtp::helo_command& c);
awaitable<void> cmd_ehlo(session& s, const smtp::ehlo_command& c);
awaitable<void> cmd_lhlo(session& s, const smtp::lhlo_command& c);
awaitable<void> cmd_mail(session& s, const smtp::mail_command& c);
awaitable<void> cmd_rcpt(session& s, const smtp::rcpt_command& c);
awaitable<void> cmd_data(session& s, const smtp::data_command& c);
awaitable<void> cmd_bdat(session& s, const smtp::bdat_command& c);
awaitable<void> cmd_rset(session& s, const smtp::rset_command& c);
awaitable<void> cmd_noop(session& s, const smtp::noop_command& c);
awaitable<void> cmd_quit(session& s, const smtp::quit_command& c);
awaitable<void> cmd_vrfy(session& s, const smtp::vrfy_command& c);
awaitable<void> cmd_expn(session& s, const smtp::expn_command& c);
awaitable<void> cmd_help(session& s, const smtp::help_command& c);
awaitable<void> cmd_starttls(session& s, const smtp::starttls_command& c);
awaitable<void> cmd_auth(session& s, const smtp::auth_command& c);

/// The EHLO/LHLO extension list for the session's current state.
std::vector<std::string> extensions(const session& s);

}  // namespace hamail::backend::smtp_session_detail

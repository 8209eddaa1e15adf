#pragma once

// One SMTP/LMTP server session, shared by hamail-backend (which receives mail
// into its store) and hamail-proxy (which passes it on to the owning stores
// and a smarthost). The protocol is here: the loop in session.cpp, each command
// in its own cmd_*.cpp, command_table.cpp wiring verbs to handlers. What
// becomes of recipients and messages is the daemon's mail_handler.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "hamail/auth/login.hpp"
#include "hamail/directory/account.hpp"
#include "hamail/directory/directory.hpp"
#include "hamail/net/connection.hpp"
#include "hamail/net/server.hpp"
#include "hamail/protocol/smtp/command_parser.hpp"
#include "hamail/protocol/smtp/data_reader.hpp"
#include "hamail/protocol/smtp/reply.hpp"
#include "hamail/smtpd/settings.hpp"

namespace hamail::smtpd {

using boost::asio::awaitable;

/// Which listener flavour the session serves.
enum class flavour {
  smtp,        ///< MX intake: mail for local accounts, AUTH optional
  submission,  ///< AUTH required before MAIL
  lmtp,        ///< RFC 2033: LHLO, one reply per recipient after DATA
};

/// An accepted recipient.
struct recipient {
  std::string address;        ///< as the client gave it (for Received "for")
  std::string account;        ///< owning account id; empty for a relayed (non-local) recipient
  smtp::rcpt_parameters dsn;  ///< NOTIFY= and ORCPT= as given (RFC 3461)
};

/// Where a message body goes while it arrives: the session writes the octets
/// (as smtp::output_sink) and calls flush() whenever needs_flush() says so,
/// reading nothing from the client meanwhile, so a slow disk pushes back on
/// the client through TCP instead of filling memory.
class message_body : public smtp::output_sink {
 public:
  /// True when enough is held that the session should flush() before reading on.
  virtual bool needs_flush() const noexcept = 0;
  /// Writes what is held and waits for it.
  virtual boost::asio::awaitable<void> flush() = 0;
  /// True once a NUL octet was written (only BODY=BINARYMIME may carry them).
  virtual bool saw_nul() const noexcept = 0;
};

class session;

/// What a daemon does with recipients and messages. One per session, created
/// with it; per-recipient state of its own follows session::tx->recipients.
class mail_handler {
 public:
  virtual ~mail_handler() = default;
  /// RCPT for `address` (Postmaster already mapped to [smtp] postmaster),
  /// after the session's own checks (sequence, parameters, recipient limit).
  /// Queues exactly one reply; returns the recipient to record when it is
  /// accepted (2xx), nullopt otherwise.
  virtual awaitable<std::optional<recipient>> add_recipient(session& s, const std::string& address,
                                                            const smtp::rcpt_command& c) = 0;
  /// Opens the sink for the message of the current transaction; an error
  /// (temporary) is answered 452 4.3.1.
  virtual awaitable<result<std::unique_ptr<message_body>>> open_body(session& s) = 0;
  /// Delivers the complete body (from open_body) to the recipients and queues
  /// the reply: one, or for LMTP one per recipient. `id` names the message in logs.
  virtual awaitable<void> deliver(session& s, message_body& body, const std::string& id) = 0;
  /// The transaction ended (RSET, after a message, a new greeting, STARTTLS).
  virtual void reset() {}
};

/// What every session of one daemon shares. Outlives the sessions.
struct services {
  const smtp_settings& config;
  std::string hostname;        ///< in greetings, Received "by" and QUIT
  std::string received_as;     ///< Received's comment after the host: "hamail store a"
  auth::login_services login;  ///< AUTH: directory, throttle, password checks
  /// Final delivery (a store) writes Return-Path (RFC 5321 §4.4); a relay (the
  /// proxy) only adds its Received.
  bool final_delivery = true;
  /// Addresses (as net::address_text writes them) of the proxies allowed to
  /// send XCLIENT; only they see it in the EHLO/LHLO reply.
  std::vector<std::string> trusted_proxies;
};

/// The XCLIENT attributes a trusted proxy may send, as advertised (Postfix
/// names, plus hamail's SESSION and TTL as its POP3 proxy sends them).
inline constexpr std::string_view xclient_attributes =
    "ADDR PORT HELO LOGIN NAME PROTO SESSION TTL";

/// Who the mail comes from: the TCP peer, or the client a trusted proxy named with XCLIENT.
struct client_identity {
  std::string address;     ///< in logs, greetings and Received
  std::uint16_t port = 0;  ///< the client's port
  std::string helo;        ///< XCLIENT HELO: the client's own greeting; empty: session::helo
  std::string name;        ///< XCLIENT NAME: the client's host name; empty when unknown
  std::string proto;       ///< XCLIENT PROTO ("SMTP", "ESMTP"): the client's protocol; empty: ours
  bool proxied = false;    ///< XCLIENT set this
};

/// Makes the mail_handler of a new session.
using handler_factory = std::function<std::unique_ptr<mail_handler>(flavour)>;

/// The mail transaction between MAIL and the end of DATA/BDAT LAST.
struct transaction {
  smtp::mail_command mail;
  std::vector<recipient> recipients;
  std::size_t rcpt_commands = 0;       ///< RCPTs tried, accepted or not
  std::unique_ptr<message_body> body;  ///< BDAT: the message being received
  std::optional<smtp::bdat_filter> bdat;
  bool bdat_failed = false;  ///< an earlier BDAT of this transaction failed
};

/// Why the command loop stops.
enum class ending { none, quit, closed };

/// The whole state of one session; handlers in cmd_*.cpp work on it.
class session {
 public:
  session(const services& svc, mail_handler& handler, flavour f, net::connection& conn);
  /// Runs the session to its end.
  awaitable<void> run();

  // --- shared by the command handlers ---
  const services& svc;
  const smtp_settings& cfg;
  mail_handler& handler;
  net::connection& conn;
  const flavour kind;
  /// The TCP peer is one of services::trusted_proxies: it may send XCLIENT.
  const bool trusted_proxy;
  client_identity client;     ///< the peer, until a trusted proxy's XCLIENT says otherwise
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
  /// Checks the received message and hands it to the handler, which answers
  /// (one reply, or one per recipient for LMTP); `binary` (BODY=BINARYMIME) allows NULs.
  awaitable<void> deliver(message_body& body, const smtp::data_result& verdict,
                          bool binary = false);
  /// Opens the handler's body sink and writes the trace header fields into it;
  /// nullptr when it cannot (452 queued, or one per recipient at BDAT LAST).
  awaitable<std::unique_ptr<message_body>> open_body();

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
awaitable<void> cmd_xclient(session& s, const smtp::xclient_command& c);

/// The EHLO/LHLO extension list for the session's current state.
std::vector<std::string> extensions(const session& s);

/// What a recipient's address stands for in the directory (RCPT's lookup).
struct recipient_lookup {
  /// The account (active or locked: both receive mail); nullopt with no reply
  /// when the directory has no such address.
  std::optional<directory::account> account;
  /// Set when the recipient must be refused whatever the daemon: directory
  /// unavailable (451), account disabled (550) or moving (450).
  std::optional<smtp::reply> refusal;
};
/// Looks `address` up as RCPT does: the address, then without its
/// sub-address, then postmaster@ any domain as [smtp] postmaster.
awaitable<recipient_lookup> look_up_recipient(session& s, const std::string& address);
/// Answers RCPT for an address no one has: 550 5.1.1, logged, counted as an error.
void refuse_unknown_recipient(session& s, const std::string& address);

/// The protocol factories for `names` ("smtp", "submission", "lmtp" → their
/// flavour): each connection gets a session and a handler from `make`. What
/// `svc` refers to must outlive the server.
net::protocol_factories protocols(services svc, handler_factory make,
                                  const std::vector<std::string>& names);

/// Runs one session on `conn` with a handler from `make` (tests drive this).
awaitable<void> run_session(const services& svc, const handler_factory& make, flavour f,
                            net::connection& conn);

}  // namespace hamail::smtpd

#pragma once

// The client side of SMTP (RFC 5321) and LMTP (RFC 2033), over any
// hamail::net::byte_stream. hamail-proxy delivers with it to the stores'
// LMTP listeners (in parallel, one client per store) and to a smarthost.
//
// Every wait is bounded by a timer; errors are values. A delivery is never
// reported delivered unless the server answered 2xx for it after the data.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "hamail/core/result.hpp"
#include "hamail/net/byte_stream.hpp"
#include "hamail/protocol/smtp/reply_parser.hpp"
#include "hamail/relay/body_source.hpp"

namespace hamail::relay {

/// Which protocol the client speaks.
enum class protocol_mode {
  lmtp,  ///< LHLO; one reply per accepted recipient after the data
  smtp,  ///< EHLO; one reply for the whole message after the data
};

/// Whether hello() upgrades an SMTP connection with STARTTLS.
enum class starttls_policy {
  never,          ///< stay in plaintext
  opportunistic,  ///< when the server advertises STARTTLS
  required,       ///< fail hello() (errc::tls_error, temporary) when it cannot
};

/// How a client behaves; every duration bounds one wait.
struct client_options {
  protocol_mode mode = protocol_mode::lmtp;
  std::chrono::milliseconds connect_timeout{30'000};   ///< TCP connect
  std::chrono::milliseconds greeting_timeout{60'000};  ///< the 220 greeting (and TLS handshake)
  std::chrono::milliseconds command_timeout{60'000};   ///< each reply to a command, each write
  std::chrono::milliseconds data_timeout{600'000};  ///< each body write and each reply after data
  starttls_policy starttls = starttls_policy::never;
  /// Client context for STARTTLS (tls::make_client_context: CA file, verify on/off).
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  /// Name the server certificate must match (and SNI); empty for no host name check.
  std::string tls_host;
  bool use_pipelining = true;          ///< pipeline the envelope when PIPELINING is advertised
  bool use_chunking = true;            ///< BDAT instead of DATA when CHUNKING is advertised
  std::size_t chunk_size = 64 * 1024;  ///< octets of body per BDAT chunk (and per DATA write)
  smtp::reply_limits reply_limits;     ///< limits on what the server sends
  /// XCLIENT attributes (NAME, raw value) naming the client this connection
  /// speaks for (Postfix XCLIENT_README): hello() sends those the server lists
  /// in its XCLIENT keyword, xtext-encoded (a value longer than 255 octets
  /// encoded goes as "[UNAVAILABLE]"), after its final LHLO/EHLO, then says
  /// hello again. Nothing is sent when empty or when the server offers no XCLIENT.
  std::vector<std::pair<std::string, std::string>> xclient;
};

/// What the server announced in its LHLO/EHLO reply.
struct capabilities {
  std::string greeting;  ///< the first line: the server's name and text
  /// Every keyword line after the first, keyword uppercased, parameters as sent.
  std::vector<std::string> lines;
  bool pipelining = false;
  bool chunking = false;
  bool eightbitmime = false;
  bool enhanced_status_codes = false;
  bool starttls = false;
  bool smtputf8 = false;
  std::optional<std::uint64_t> size;  ///< SIZE limit when announced with a value (0: no limit)

  /// True when `keyword` (case-insensitive) was announced.
  bool has(std::string_view keyword) const;
  /// Parses the reply to LHLO/EHLO.
  static capabilities parse(const smtp::server_reply& reply);
};

/// One recipient: the mailbox (without angle brackets) and RCPT parameters
/// ("NOTIFY=FAILURE ORCPT=rfc822;a@b"), both passed on as given.
struct recipient {
  recipient(std::string a, std::string p = {})  // NOLINT(google-explicit-constructor)
      : address(std::move(a)), params(std::move(p)) {}
  std::string address;
  std::string params;
};

/// The envelope of one transaction.
struct envelope {
  std::string from;         ///< reverse-path mailbox, empty for the null sender <>
  std::string mail_params;  ///< MAIL parameters ("BODY=8BITMIME SMTPUTF8"); SIZE is added
  std::vector<recipient> rcpts;
};

/// What became of one recipient.
struct recipient_result {
  /// The server's reply for this recipient (RCPT rejection, MAIL or data
  /// reply); when local_error is set, a synthetic 4xx that may be passed on.
  smtp::server_reply reply;
  /// Set when the outcome comes from this side (connection lost, timeout,
  /// unreadable reply or body) rather than from a server reply: temporary.
  std::optional<hamail::error> local_error;

  /// True only when the server took responsibility: 2xx after the data.
  bool delivered() const noexcept { return !local_error && reply.positive(); }
  /// True for a 4xx or a local failure: try again later.
  bool temporary() const noexcept { return local_error.has_value() || reply.temporary(); }
  /// True for a 5xx: bounce.
  bool permanent() const noexcept { return !local_error && reply.permanent(); }
};

/// One SMTP or LMTP client connection. Not thread-safe; one transaction at a
/// time. Several transactions may follow each other on one connection (the
/// client sends RSET when the previous one was left open).
class smtp_client {
 public:
  /// Connects over TCP within connect_timeout and reads the greeting; the
  /// error is temporary (timed_out, unavailable, connection_closed) or, on a
  /// 5xx greeting, permanent.
  static boost::asio::awaitable<result<std::unique_ptr<smtp_client>>> connect(
      boost::asio::any_io_executor executor, boost::asio::ip::tcp::endpoint endpoint,
      client_options options);
  /// Starts on a connected stream (a tcp_stream for STARTTLS, or a memory_stream
  /// in tests) and reads the greeting; errors as for connect().
  static boost::asio::awaitable<result<std::unique_ptr<smtp_client>>> start(
      std::unique_ptr<net::byte_stream> stream, client_options options);

  ~smtp_client();
  smtp_client(const smtp_client&) = delete;
  smtp_client& operator=(const smtp_client&) = delete;

  /// Sends LHLO/EHLO `name` and, under the STARTTLS policy, upgrades and
  /// says hello again; then, with client_options::xclient and a server that
  /// offers XCLIENT, names the client and says hello once more. Returns what
  /// the server announced last. A rejection is an error (permanent for a 5xx
  /// to LHLO/EHLO; an XCLIENT refusal is always temporary, errc::unavailable,
  /// so a proxy the server does not trust fails visibly and retryably); the
  /// connection is closed after any error.
  boost::asio::awaitable<result<capabilities>> hello(std::string_view name);
  /// True once the server accepted XCLIENT on this connection.
  bool client_named() const noexcept { return client_named_; }

  /// Runs one transaction; returns one result per recipient, in envelope
  /// order. Never fails as a whole: local failures are per-recipient
  /// temporary results, and the connection is closed after them (usable()
  /// turns false). An invalid envelope (CR/LF/NUL or brackets in it) gives
  /// every recipient a permanent 501 without sending anything.
  boost::asio::awaitable<std::vector<recipient_result>> send(const envelope& env,
                                                             const body_source& body);

  // A transaction step by step, for a frontend that answers each of its
  // client's commands with the server's real reply: begin(), add_recipient()
  // for each RCPT, finish() with the body. No pipelining: one round trip per
  // command. send() and reset() abandon a stepwise transaction left open.

  /// MAIL FROM:<from> [SIZE=<size> when the server announced SIZE and size is set] [mail_params].
  /// Returns the server's reply: 2xx opens the transaction (RSET first if one was left open);
  /// an invalid path/params (CR/LF/NUL, angle brackets) gives a synthetic 501 5.5.4 reply without
  /// sending; a declared size over the server's SIZE gives a synthetic 552 5.3.4 without sending.
  /// An error only when the connection failed (it is closed then; temporary error).
  boost::asio::awaitable<result<smtp::server_reply>> begin(
      std::string_view from, std::string_view mail_params,
      std::optional<std::uint64_t> size = std::nullopt);
  /// RCPT TO:<r.address> [r.params] inside the open transaction; the server's reply (2xx: the
  /// recipient is accepted and will get a result from finish()). Synthetic 501 5.5.4 for an
  /// invalid recipient (not sent), 503 5.5.1 when no transaction is open. Error only when the
  /// connection failed (recipients accepted before it still get temporary results from finish()).
  boost::asio::awaitable<result<smtp::server_reply>> add_recipient(const recipient& r);
  /// Sends the body (BDAT chunks when CHUNKING is announced and use_chunking, else DATA with
  /// dot-stuffing, exactly as send() does) and returns one result per recipient accepted by
  /// add_recipient, in acceptance order (LMTP: each its own reply; SMTP: the one reply for all).
  /// No accepted recipient: returns an empty vector and sends nothing (the transaction stays open
  /// until the next begin() or reset(), which RSETs). Local failures (connection lost, body
  /// unreadable) are per-recipient temporary results as in send(); a body over the server's SIZE
  /// gives each a 552 5.3.4 without sending. The transaction is closed afterwards.
  boost::asio::awaitable<std::vector<recipient_result>> finish(const body_source& body);

  /// Sends RSET; an error closes the connection.
  boost::asio::awaitable<result<void>> reset();
  /// Sends NOOP (a liveness check before reusing a pooled connection).
  boost::asio::awaitable<result<void>> noop();
  /// Sends QUIT, waits (command_timeout) for 221 and closes; errors are only
  /// worth logging, the connection is closed either way.
  boost::asio::awaitable<result<void>> quit();

  /// True while the connection can carry another transaction.
  bool usable() const noexcept { return stream_ != nullptr; }
  /// The capabilities of the last hello(), empty before.
  const capabilities& server_capabilities() const noexcept { return caps_; }
  /// True once bytes travel inside TLS.
  bool is_tls() const noexcept { return stream_ && stream_->is_tls(); }
  /// Closes the connection at once.
  void close();

 private:
  smtp_client(std::unique_ptr<net::byte_stream> stream, client_options options);

  struct transaction;

  boost::asio::awaitable<result<void>> read_greeting();
  boost::asio::awaitable<result<smtp::server_reply>> command(std::string_view line,
                                                             std::chrono::milliseconds limit);
  boost::asio::awaitable<result<smtp::server_reply>> read_reply(std::chrono::milliseconds limit);
  boost::asio::awaitable<result<void>> write(std::string_view data,
                                             std::chrono::milliseconds limit);
  boost::asio::awaitable<result<capabilities>> say_hello(std::string_view name);
  boost::asio::awaitable<result<capabilities>> hello_and_tls(std::string_view name);
  boost::asio::awaitable<result<bool>> start_tls();
  boost::asio::awaitable<void> run_transaction(const envelope& env, transaction& tx);
  /// The body and the final replies, by DATA or BDAT (shared by send() and finish()).
  boost::asio::awaitable<void> send_body(transaction& tx);
  boost::asio::awaitable<void> send_with_data(transaction& tx);
  boost::asio::awaitable<void> send_with_bdat(transaction& tx);
  boost::asio::awaitable<void> read_final_replies(transaction& tx);
  /// Closes and returns `e`, so callers can `co_return fail(e)`.
  error fail(error e);
  /// Forgets the stepwise transaction (not the server's: transaction_open_ says that).
  void end_steps() noexcept;

  std::unique_ptr<net::byte_stream> stream_;
  client_options options_;
  smtp::reply_parser parser_;
  std::string in_;  // octets read and not yet parsed
  capabilities caps_;
  bool transaction_open_ = false;  // MAIL accepted and the transaction not finished
  bool step_open_ = false;         // begin() accepted and finish() not called yet
  std::size_t step_accepted_ = 0;  // recipients add_recipient() saw accepted
  bool client_named_ = false;      // XCLIENT accepted
};

/// The synthetic reply given to recipients when the connection failed: 451 4.4.2.
smtp::server_reply local_failure_reply(const hamail::error& e);

}  // namespace hamail::relay

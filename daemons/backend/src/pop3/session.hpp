#pragma once

// One POP3 session of hamail-backend (RFC 1939, RFC 2449, RFC 5034, RFC 2595
// STLS). The loop and I/O live in session.cpp; the AUTHORIZATION state
// (USER/PASS, AUTH, STLS, XCLIENT) in auth.cpp; the TRANSACTION and UPDATE
// states in transaction.cpp; maildrop.hpp is the session's view of the INBOX.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "hamail/backend/pop3_service.hpp"
#include "hamail/directory/account.hpp"
#include "hamail/net/connection.hpp"
#include "hamail/net/run_blocking.hpp"
#include "hamail/protocol/pop3/command.hpp"
#include "hamail/protocol/pop3/command_parser.hpp"
#include "hamail/protocol/pop3/response.hpp"
#include "pop3/maildrop.hpp"

namespace hamail::backend::pop3_session_detail {

using boost::asio::awaitable;

/// Why the command loop stops.
enum class ending { none, quit, closed };

/// The whole state of one session.
class session {
 public:
  session(pop3_context& ctx, net::connection& conn);
  ~session();
  /// Runs the session to its end.
  awaitable<void> run();

  // --- shared by the command handlers ---
  pop3_context& ctx;
  const pop3_settings& cfg;
  net::connection& conn;
  pop3::session_state st = pop3::session_state::authorization;
  directory::account account;             ///< the logged-in account (transaction state)
  std::string pending_user;               ///< USER's name until PASS
  std::optional<maildrop> drop;           ///< the INBOX snapshot (transaction state)
  std::shared_ptr<store::mailbox> inbox;  ///< the INBOX (transaction state)
  bool holds_lock = false;                ///< this session holds the account's maildrop lock
  ending end = ending::none;
  std::size_t errors = 0;      ///< -ERR answers to bad commands and failed logins
  std::string client_address;  ///< the client's address (XCLIENT ADDR from a trusted proxy)
  bool trusted_proxy = false;  ///< the peer is one of [pop3] trusted_proxies
  /// The logged-in account's place in the account gate (ctx.gate): held for the session's
  /// life, so a move's fence ends the session and waits for its command in progress.
  gate_token fence_token;

  /// Queues a response (a whole line or a multi-line block).
  void reply(std::string_view text) { out_.append(text); }
  /// Direct access to the output buffer, for responses built in place.
  std::string& output() noexcept { return out_; }
  /// Queues `err(text)` and counts an error; past the limit closes the session.
  void refuse(std::string_view text, pop3::resp_code code = pop3::resp_code::none);
  /// Counts a client error; past the limit queues the goodbye and ends the session.
  void count_error();
  /// Sends queued output; false (and the session ends) when the client is gone.
  awaitable<bool> flush();
  /// Reads more input; false when the session ended (timeout, drain, close).
  awaitable<bool> fill();
  /// Reads one AUTH continuation line (RFC 5034 §4): the base64 text or "*";
  /// nullopt after answering a refused line, or when the session ended.
  awaitable<std::optional<std::string>> read_response();
  /// Drops all pending input and resets the parser (STLS).
  void discard_input();
  /// True when USER/PASS and AUTH PLAIN/LOGIN may be used now.
  bool password_login_allowed() const;
  /// The CAPA response for the current state.
  std::string capa() const;
  /// Runs `fn` (a blocking store call) on the blocking pool. Pass a named
  /// function object (std::move(local)), see blocking.hpp.
  template <class F>
  awaitable<std::invoke_result_t<F&>> blocking(F fn) {
    return net::run_blocking(ctx.blocking, std::move(fn));
  }

 private:
  awaitable<void> dispatch(const pop3::request& req);

  pop3::command_parser parser_;
  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
};

// AUTHORIZATION state (auth.cpp).
awaitable<void> cmd_user(session& s, const pop3::request& r);
awaitable<void> cmd_pass(session& s, const pop3::request& r);
awaitable<void> cmd_auth(session& s, const pop3::request& r);
awaitable<void> cmd_stls(session& s, const pop3::request& r);
awaitable<void> cmd_xclient(session& s, const pop3::request& r);

// TRANSACTION and UPDATE states (transaction.cpp).
awaitable<void> cmd_stat(session& s, const pop3::request& r);
awaitable<void> cmd_list(session& s, const pop3::request& r);  // LIST and UIDL
awaitable<void> cmd_retr(session& s, const pop3::request& r);  // RETR and TOP
awaitable<void> cmd_dele(session& s, const pop3::request& r);
awaitable<void> cmd_rset(session& s, const pop3::request& r);
awaitable<void> cmd_quit(session& s, const pop3::request& r);

}  // namespace hamail::backend::pop3_session_detail

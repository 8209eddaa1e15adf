#pragma once

// One IMAP session of hamail-backend (RFC 3501, RFC 9051). The loop lives in
// session.cpp; each command has its own cmd_*.cpp; command_table.cpp wires
// verbs to handlers and the states they are allowed in; mailbox_view.hpp is
// the selected mailbox as this session sees it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "hamail/backend/imap_service.hpp"
#include "hamail/directory/account.hpp"
#include "hamail/net/connection.hpp"
#include "hamail/net/run_blocking.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/protocol/imap/sequence_set.hpp"
#include "hamail/protocol/imap/writer.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_session_detail {

using boost::asio::awaitable;

class mailbox_view;

/// The session states of RFC 3501 §3, as bits so a command can name several.
enum class state : unsigned {
  not_authenticated = 1,
  authenticated = 2,
  selected = 4,
  logout = 8,
};

/// Extensions the client switched on with ENABLE (or, for CONDSTORE, by using it).
struct enabled_extensions {
  bool condstore = false;    ///< RFC 7162: MODSEQ in FETCH responses, HIGHESTMODSEQ
  bool qresync = false;      ///< RFC 7162: VANISHED instead of EXPUNGE
  bool imap4rev2 = false;    ///< RFC 9051 response forms
  bool utf8_accept = false;  ///< RFC 6855: UTF-8 in quoted strings and mailbox names
};

/// Why the command loop stops.
enum class ending { none, logout, closed };

/// The whole state of one session; handlers in cmd_*.cpp work on it.
class session {
 public:
  session(imap_context& ctx, net::connection& conn);
  ~session();
  /// Runs the session to its end.
  awaitable<void> run();

  // --- shared by the command handlers ---
  imap_context& ctx;
  const backend_config& cfg;
  net::connection& conn;
  state st = state::not_authenticated;
  directory::account account;              ///< the logged-in account (st != not_authenticated)
  store::quota_limits quota;               ///< its quota, from the directory or the store default
  enabled_extensions enabled;              ///< ENABLEd extensions
  std::unique_ptr<mailbox_view> selected;  ///< the selected mailbox (st == selected)
  std::vector<store::imap_uid> saved_search;  ///< SEARCHRES "$" (RFC 5182), UIDs
  ending end = ending::none;
  std::size_t errors = 0;  ///< BAD commands and failed logins so far
  std::string
      client_address;  ///< the client's address (the proxy's ID x-originating-ip if trusted)
  bool trusted_proxy = false;  ///< the peer is one of [imap] trusted_proxies
  /// The logged-in account's place in the account gate (ctx.gate): held for the session's
  /// life, so a move's fence ends the session and waits for its command in progress.
  gate_token fence_token;

  /// The id of the logged-in account.
  const std::string& user() const noexcept { return account.id; }
  /// Queues "* <text>\r\n".
  void untagged(std::string_view text);
  /// Queues raw bytes (response parts with literals).
  void raw(std::string_view bytes) { out_.append(bytes); }
  /// Direct access to the output buffer, for responses built in place.
  std::string& output() noexcept { return out_; }
  /// Queues "<tag> OK [<code>] <text>\r\n" (no brackets when code is empty).
  void ok(const imap::command& c, std::string_view text, std::string_view code = {});
  /// Queues a tagged NO.
  void no(const imap::command& c, std::string_view text, std::string_view code = {});
  /// Queues a tagged BAD and counts an error.
  void bad(const imap::command& c, std::string_view text, std::string_view code = {});
  /// Queues a tagged NO for a store error: [UNAVAILABLE]/[SERVERBUG]/[NONEXISTENT]/... by kind.
  void no_for(const imap::command& c, const error& e, std::string_view what);
  /// Queues "* BYE <text>" and ends the session after the output is flushed.
  void bye(std::string_view text);
  /// Sends queued output; on failure the session ends.
  awaitable<bool> flush();
  /// Counts a client error; past the limit sends BYE and ends the session.
  void count_error();
  /// Reads at least one more octet into the input buffer. On timeout or drain
  /// it queues the goodbye and ends the session; returns false then.
  awaitable<bool> fill(net::read_mode mode);
  /// Reads one line (an AUTHENTICATE response, IDLE's DONE) through the parser's
  /// line mode; nullopt when the session ended or the line was refused (BAD queued
  /// for `c`).
  awaitable<std::optional<std::string>> read_line(const imap::command& c);
  /// Drops all pending input (STARTTLS).
  void discard_input();
  /// Takes the input read beyond the current command (COMPRESS: it is compressed).
  std::string take_input();
  /// The parser (STARTTLS resets it; ENABLE UTF8=ACCEPT switches UTF-8 on).
  imap::command_parser& parser() noexcept { return parser_; }
  /// How strings are written to this client (UTF-8 quoted after ENABLE UTF8=ACCEPT).
  imap::write_options write_options() const;
  /// True when LOGIN/AUTHENTICATE with a password may be used now.
  bool password_login_allowed() const;
  /// Moves to the authenticated state as `a` (limits, timeouts, special-use folders).
  awaitable<void> logged_in(directory::account a);
  /// Leaves the selected state (CLOSE, UNSELECT, a new SELECT).
  void deselect();
  /// Reports what other sessions (and deliveries) changed in the selected
  /// mailbox: EXISTS/RECENT, FETCH FLAGS and, when `allow_expunge`, EXPUNGE or
  /// VANISHED (never during FETCH, STORE or SEARCH by sequence number, RFC 3501 §7.4.1).
  awaitable<void> report_changes(bool allow_expunge);
  /// The untagged responses report_changes() would queue, as text.
  awaitable<std::string> change_report(bool allow_expunge);
  /// Parses a sequence set argument (UID set when `uid`) against the selected
  /// mailbox: the UIDs it names that are in view, ascending. nullopt after
  /// queuing BAD for a malformed set or NO/BAD for sequence numbers past the end.
  std::optional<std::vector<store::imap_uid>> resolve_set(const imap::command& c,
                                                          const imap::value& v, bool uid);
  /// Reads a mailbox-name argument: modified UTF-7 (RFC 3501 §5.1.3) decoded,
  /// or UTF-8 after ENABLE UTF8=ACCEPT; INBOX in any case becomes "INBOX".
  /// nullopt after queuing BAD (not a string) or NO [CANNOT] (bad encoding).
  std::optional<std::string> mailbox_argument(const imap::command& c, const imap::value& v);
  /// As mailbox_argument() for a mailbox that must exist: a name the store
  /// cannot hold cannot name an existing mailbox, so it gets NO [NONEXISTENT].
  /// The store's canonical form of the name, or nullopt after queuing the reply.
  std::optional<std::string> existing_mailbox_argument(const imap::command& c,
                                                       const imap::value& v);
  /// Queues "NO [NONEXISTENT] Mailbox does not exist".
  void no_such_mailbox(const imap::command& c);
  /// A mailbox name as responses write it: encoded for this client and quoted
  /// (or a literal when it cannot be quoted).
  std::string mailbox_text(std::string_view utf8_name) const;
  /// The quota applying to the account.
  std::optional<store::quota_limits> quota_option() const {
    return quota.unlimited() ? std::nullopt : std::optional<store::quota_limits>(quota);
  }
  /// Runs `fn` (a blocking store call) on the blocking pool. Pass a named
  /// function object (std::move(local)), see blocking.hpp.
  template <class F>
  awaitable<std::invoke_result_t<F&>> blocking(F fn) {
    return net::run_blocking(ctx.blocking, std::move(fn));
  }

 private:
  awaitable<void> dispatch(const imap::command& cmd);
  imap::command_limits limits_for_state() const;
  void handle_parse_error(const imap::command_error& e);

  imap::command_parser parser_;
  bool parser_before_login_ = true;
  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
  std::size_t tagged_pos_ = std::string::npos;  // where the last tagged response starts in out_
};

// Command handlers: one file each (some files hold a pair of twins, e.g. SELECT/EXAMINE).
awaitable<void> cmd_capability(session& s, const imap::command& c);
awaitable<void> cmd_noop(session& s, const imap::command& c);
awaitable<void> cmd_logout(session& s, const imap::command& c);
awaitable<void> cmd_id(session& s, const imap::command& c);
awaitable<void> cmd_enable(session& s, const imap::command& c);
awaitable<void> cmd_starttls(session& s, const imap::command& c);
awaitable<void> cmd_compress(session& s, const imap::command& c);
awaitable<void> cmd_login(session& s, const imap::command& c);
awaitable<void> cmd_authenticate(session& s, const imap::command& c);
awaitable<void> cmd_namespace(session& s, const imap::command& c);
awaitable<void> cmd_select(session& s, const imap::command& c);  // SELECT and EXAMINE
awaitable<void> cmd_close(session& s, const imap::command& c);   // CLOSE and UNSELECT
awaitable<void> cmd_create(session& s, const imap::command& c);
awaitable<void> cmd_delete(session& s, const imap::command& c);
awaitable<void> cmd_rename(session& s, const imap::command& c);
awaitable<void> cmd_subscribe(session& s, const imap::command& c);  // and UNSUBSCRIBE
awaitable<void> cmd_list(session& s, const imap::command& c);       // LIST and LSUB
awaitable<void> cmd_status(session& s, const imap::command& c);
awaitable<void> cmd_append(session& s, const imap::command& c);
awaitable<void> cmd_check(session& s, const imap::command& c);
awaitable<void> cmd_expunge(session& s, const imap::command& c);  // and UID EXPUNGE
awaitable<void> cmd_search(session& s, const imap::command& c);   // SEARCH, SORT, THREAD
awaitable<void> cmd_fetch(session& s, const imap::command& c);
awaitable<void> cmd_store(session& s, const imap::command& c);
awaitable<void> cmd_copy(session& s, const imap::command& c);  // COPY and MOVE
awaitable<void> cmd_idle(session& s, const imap::command& c);
awaitable<void> cmd_quota(session& s, const imap::command& c);  // GETQUOTA, GETQUOTAROOT, SETQUOTA

/// Reports expunges this session made itself (EXPUNGE, CLOSE-less MOVE): EXPUNGE
/// or VANISHED responses, and their removal from the view.
void report_own_expunges(session& s, std::span<const store::imap_uid> removed);

/// The CAPABILITY list for the session's current state (no leading "CAPABILITY").
std::string capabilities(const session& s);

}  // namespace hamail::backend::imap_session_detail

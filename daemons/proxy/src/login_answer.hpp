#pragma once

// What a hamail backend's answer to the proxy's login means (IMAP and POP3): pure
// functions of the answer's text, so each kind of answer is tested on its own.

#include <string_view>

namespace hamail::proxy {

/// What a backend store says when the account is placed on another store; the proxy then
/// looks the account up again (the store's own check, or a `moved` fence of an account move).
inline constexpr std::string_view wrong_store_text = "Account is served by another store";
/// What a backend store says while a move's `locked` fence holds the account (ADR 0005).
inline constexpr std::string_view being_moved_text = "Account is being moved";

/// How the proxy takes a backend's answer to its login.
enum class login_answer {
  ok,             ///< logged in
  wrong_store,    ///< the account is another store's: look it up again
  being_moved,    ///< the account is locked for a move: retry, like an unreachable store
  temporary,      ///< another temporary refusal ([UNAVAILABLE], [SYS/TEMP]): retry
  proxy_refused,  ///< the proxy's own login was refused: retry, and log it for the operator
  refused,        ///< the user's own condition (a locked account, a busy maildrop): pass it on
};

/// Classifies the tagged answer to AUTHENTICATE, `rest` being the line after "<tag> "
/// ("OK [CAPABILITY ...] Logged in", "NO [UNAVAILABLE] ...").
login_answer classify_imap_login(std::string_view rest);

/// Classifies the status line answering AUTH PLAIN ("+OK ...", "-ERR [SYS/TEMP] ...").
login_answer classify_pop3_login(std::string_view line);

}  // namespace hamail::proxy

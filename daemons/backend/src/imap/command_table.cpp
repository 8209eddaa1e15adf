// The one place that wires each IMAP command to its handler, the states it is
// allowed in and whether it has a UID form; and the CAPABILITY list.

#include <array>

#include "imap/mailbox_view.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

using handler = awaitable<void> (*)(session&, const imap::command&);

constexpr unsigned any_state = 1 | 2 | 4;
constexpr unsigned not_auth = 1;
constexpr unsigned auth = 2 | 4;  // authenticated or selected
constexpr unsigned selected_only = 4;

/// What a command may interleave with: EXPUNGE responses may not be sent
/// after FETCH, STORE and SEARCH by sequence number (RFC 3501 §7.4.1).
enum class expunge_rule { allowed, not_by_sequence, never };

struct entry {
  std::string_view name;
  handler fn;
  unsigned states;
  bool uid_form;
  expunge_rule expunges;
};

constexpr std::array<entry, 37> table{{
    {"CAPABILITY", cmd_capability, any_state, false, expunge_rule::allowed},
    {"NOOP", cmd_noop, any_state, false, expunge_rule::allowed},
    {"LOGOUT", cmd_logout, any_state, false, expunge_rule::never},
    {"ID", cmd_id, any_state, false, expunge_rule::allowed},
    {"ENABLE", cmd_enable, auth, false, expunge_rule::allowed},
    {"STARTTLS", cmd_starttls, not_auth, false, expunge_rule::never},
    {"COMPRESS", cmd_compress, auth, false, expunge_rule::never},
    {"LOGIN", cmd_login, not_auth, false, expunge_rule::never},
    {"AUTHENTICATE", cmd_authenticate, not_auth, false, expunge_rule::never},
    {"NAMESPACE", cmd_namespace, auth, false, expunge_rule::allowed},
    {"SELECT", cmd_select, auth, false, expunge_rule::never},
    {"EXAMINE", cmd_select, auth, false, expunge_rule::never},
    {"CLOSE", cmd_close, selected_only, false, expunge_rule::never},
    {"UNSELECT", cmd_close, selected_only, false, expunge_rule::never},
    {"CREATE", cmd_create, auth, false, expunge_rule::allowed},
    {"DELETE", cmd_delete, auth, false, expunge_rule::allowed},
    {"RENAME", cmd_rename, auth, false, expunge_rule::allowed},
    {"SUBSCRIBE", cmd_subscribe, auth, false, expunge_rule::allowed},
    {"UNSUBSCRIBE", cmd_subscribe, auth, false, expunge_rule::allowed},
    {"LIST", cmd_list, auth, false, expunge_rule::allowed},
    {"LSUB", cmd_list, auth, false, expunge_rule::allowed},
    {"STATUS", cmd_status, auth, false, expunge_rule::allowed},
    {"APPEND", cmd_append, auth, false, expunge_rule::allowed},
    {"CHECK", cmd_check, selected_only, false, expunge_rule::allowed},
    {"EXPUNGE", cmd_expunge, selected_only, true, expunge_rule::allowed},
    {"SEARCH", cmd_search, selected_only, true, expunge_rule::not_by_sequence},
    {"SORT", cmd_search, selected_only, true, expunge_rule::not_by_sequence},
    {"THREAD", cmd_search, selected_only, true, expunge_rule::not_by_sequence},
    {"FETCH", cmd_fetch, selected_only, true, expunge_rule::not_by_sequence},
    {"STORE", cmd_store, selected_only, true, expunge_rule::not_by_sequence},
    {"COPY", cmd_copy, selected_only, true, expunge_rule::allowed},
    {"MOVE", cmd_copy, selected_only, true, expunge_rule::allowed},
    {"IDLE", cmd_idle, auth, false, expunge_rule::never},
    {"GETQUOTA", cmd_quota, auth, false, expunge_rule::allowed},
    {"GETQUOTAROOT", cmd_quota, auth, false, expunge_rule::allowed},
    {"SETQUOTA", cmd_quota, auth, false, expunge_rule::allowed},
    {"XNOOP", cmd_noop, any_state, false, expunge_rule::allowed},
}};

const entry* find(std::string_view name) {
  for (const auto& e : table) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace

awaitable<void> session::dispatch(const imap::command& cmd) {
  const entry* e = find(cmd.name);
  if (!e || e->name == "XNOOP") {
    bad(cmd, "Unknown command");
    co_return;
  }
  if (cmd.uid && !e->uid_form) {
    bad(cmd, "Unknown UID command");
    co_return;
  }
  if ((e->states & static_cast<unsigned>(st)) == 0) {
    bad(cmd, st == state::not_authenticated ? "Log in first"
             : st == state::selected || e->states != selected_only
                 ? "Command not allowed in this state"
                 : "Select a mailbox first");
    co_return;
  }
  tagged_pos_ = std::string::npos;
  co_await e->fn(*this, cmd);
  // Tell the client what other sessions changed, before the tagged response
  // (RFC 3501 §5.2, §7), where the command allows it.
  if (st == state::selected && end == ending::none && e->expunges != expunge_rule::never) {
    const bool expunges_ok = e->expunges == expunge_rule::allowed || cmd.uid;
    auto text = co_await change_report(expunges_ok);
    if (!text.empty()) {
      if (tagged_pos_ != std::string::npos && tagged_pos_ <= out_.size()) {
        out_.insert(tagged_pos_, text);
      } else {
        out_ += text;
      }
    }
  }
}

std::string capabilities(const session& s) {
  std::string caps = "IMAP4rev1 IMAP4rev2";
  if (s.st == state::not_authenticated) {
    caps += " LITERAL- SASL-IR ID ENABLE";
    if (!s.conn.is_tls() && s.conn.tls_context()) caps += " STARTTLS";
    if (s.password_login_allowed()) {
      caps += " AUTH=PLAIN AUTH=LOGIN";
    } else {
      caps += " LOGINDISABLED";
    }
    return caps;
  }
  caps +=
      " LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS MOVE NAMESPACE UNSELECT CHILDREN SPECIAL-USE"
      " LIST-EXTENDED LIST-STATUS QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE CONDSTORE QRESYNC"
      " ESEARCH SEARCHRES SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES MULTIAPPEND BINARY"
      " STATUS=SIZE UTF8=ACCEPT COMPRESS=DEFLATE";
  caps += " APPENDLIMIT=" + std::to_string(s.cfg.imap.max_append_size);
  return caps;
}

}  // namespace hamail::backend::imap_session_detail

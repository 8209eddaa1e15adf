#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_logout(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, "LOGOUT takes no arguments");
    co_return;
  }
  s.untagged("BYE Logging out");
  s.ok(c, "LOGOUT completed");
  s.deselect();
  s.st = state::logout;
  s.end = ending::logout;
}

}  // namespace hamail::backend::imap_session_detail

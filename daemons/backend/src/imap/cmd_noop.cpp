// NOOP and CHECK (RFC 3501 §6.1.2, §6.4.1): nothing to do but report changes,
// which the dispatcher does before the tagged response. CHECK has nothing to
// flush: every change is durable before it is answered.

#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_noop(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, "NOOP takes no arguments");
    co_return;
  }
  s.ok(c, "NOOP completed");
}

awaitable<void> cmd_check(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, "CHECK takes no arguments");
    co_return;
  }
  s.ok(c, "CHECK completed");
}

}  // namespace hamail::backend::imap_session_detail

#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_capability(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, "CAPABILITY takes no arguments");
    co_return;
  }
  s.untagged("CAPABILITY " + capabilities(s));
  s.ok(c, "Capability completed");
}

}  // namespace hamail::backend::imap_session_detail

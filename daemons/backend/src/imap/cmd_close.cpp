// CLOSE (RFC 3501 §6.4.2: silently expunges \Deleted messages of a mailbox
// selected read-write) and UNSELECT (RFC 3691: leaves it as it is).

#include "imap/mailbox_view.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_close(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, c.name + " takes no arguments");
    co_return;
  }
  if (c.name == "CLOSE" && !s.selected->read_only()) {
    std::shared_ptr<store::mailbox> box = s.selected->shared_box();
    auto purge = [box]() -> result<std::vector<store::imap_uid>> {
      auto snap = box->snapshot();
      if (!snap) return std::move(snap).err();
      std::vector<store::imap_uid> deleted;
      for (const auto& m : snap->messages) {
        if (m.flags.has(store::system_flag::deleted)) deleted.push_back(m.uid);
      }
      if (deleted.empty()) return deleted;
      return box->expunge(deleted);
    };
    auto r = co_await s.blocking(std::move(purge));
    if (!r) {
      // The mailbox is closed all the same; the messages stay (RFC 3501 allows NO only
      // for an unknown state, so say OK with a warning in the log).
      s.conn.log().warning("CLOSE: expunge failed: {}", r.err().describe());
    }
  }
  s.deselect();
  s.ok(c, c.name + " completed");
}

}  // namespace hamail::backend::imap_session_detail

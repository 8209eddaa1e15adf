// COPY and MOVE, with their UID forms (RFC 3501 §6.4.7, RFC 6851) and
// COPYUID (RFC 4315).

#include "imap/flags_text.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/search.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_copy(session& s, const imap::command& c) {
  const bool move = c.name == "MOVE";
  if (c.args.size() != 2) {
    s.bad(c, c.name + " needs a sequence set and a mailbox");
    co_return;
  }
  auto uids = s.resolve_set(c, c.args[0], c.uid);
  if (!uids) co_return;
  auto dest = s.mailbox_argument(c, c.args[1]);
  if (!dest) co_return;
  mailbox_view& view = *s.selected;
  if (move && view.read_only()) {
    s.no(c, "Mailbox is read-only", "READ-ONLY");
    co_return;
  }
  if (uids->empty()) {
    // Nothing to copy (e.g. UID COPY of UIDs that are gone): OK without COPYUID.
    s.ok(c, c.name + " completed");
    co_return;
  }
  std::shared_ptr<store::mailbox> box = view.shared_box();
  auto quota = s.quota_option();
  auto run = [box, u = *uids, d = *dest, quota, move]() -> result<store::copy_result> {
    return move ? box->move(u, d, quota) : box->copy(u, d, quota);
  };
  auto r = co_await s.blocking(std::move(run));
  if (!r) {
    if (r.err().code == errc::not_found) {
      s.no(c, "Mailbox does not exist", "TRYCREATE");
    } else if (r.err().code == errc::quota_exceeded) {
      s.no(c, "Quota exceeded", "OVERQUOTA");
    } else {
      s.no_for(c, r.err(), c.name + " failed");
    }
    co_return;
  }
  std::string code;
  if (!r->uids.empty()) {
    std::vector<std::uint32_t> from, to;
    for (const auto& [a, b] : r->uids) {
      from.push_back(a);
      to.push_back(b);
    }
    code = "COPYUID " + std::to_string(r->uid_validity) + " " +
           imap_search::sequence_set_string(from) + " " + imap_search::sequence_set_string(to);
  }
  if (!move) {
    s.ok(c, "COPY completed", code);
    co_return;
  }
  // RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
  if (!code.empty()) s.untagged("OK [" + code + "] Moved");
  std::vector<store::imap_uid> moved;
  for (const auto& p : r->uids) moved.push_back(p.first);
  std::sort(moved.begin(), moved.end());
  report_own_expunges(s, moved);
  s.ok(c, "MOVE completed");
}

}  // namespace hamail::backend::imap_session_detail

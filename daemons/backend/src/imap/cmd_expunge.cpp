// EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1).

#include "imap/flags_text.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/search.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

/// Reports messages this session removed itself: EXPUNGE responses (or
/// VANISHED under QRESYNC) and their removal from the view.
void report_own_expunges(session& s, std::span<const store::imap_uid> removed) {
  mailbox_view& view = *s.selected;
  // Only what is in view is reported now; a message this session has not been
  // told about yet (delivered and deleted meanwhile) keeps its queued EXISTS and
  // EXPUNGE, which the next report drops together.
  std::vector<store::imap_uid> known;
  for (auto uid : removed) {
    if (view.seq_of(uid)) known.push_back(uid);
  }
  view.changes().forget_expunges(known);
  const auto seqs = view.remove(known);
  if (seqs.empty()) return;
  if (s.enabled.qresync) {
    s.untagged("VANISHED " + imap_search::sequence_set_string(known));
  } else {
    for (auto n : seqs) s.untagged(std::to_string(n) + " EXPUNGE");
  }
}

awaitable<void> cmd_expunge(session& s, const imap::command& c) {
  if (c.uid ? c.args.size() != 1 : !c.args.empty()) {
    s.bad(c, c.uid ? "UID EXPUNGE takes a UID set" : "EXPUNGE takes no arguments");
    co_return;
  }
  std::optional<std::vector<store::imap_uid>> only;
  if (c.uid) {
    only = s.resolve_set(c, c.args[0], true);
    if (!only) co_return;
  }
  mailbox_view& view = *s.selected;
  if (view.read_only()) {
    s.no(c, "Mailbox is read-only", "READ-ONLY");
    co_return;
  }
  std::shared_ptr<store::mailbox> box = view.shared_box();
  auto purge = [box, only]() -> result<std::pair<std::vector<store::imap_uid>, store::mod_seq>> {
    auto snap = box->snapshot();
    if (!snap) return std::move(snap).err();
    std::vector<store::imap_uid> deleted;
    for (const auto& m : snap->messages) {
      if (!m.flags.has(store::system_flag::deleted)) continue;
      if (only && !std::binary_search(only->begin(), only->end(), m.uid)) continue;
      deleted.push_back(m.uid);
    }
    std::vector<store::imap_uid> removed;
    if (!deleted.empty()) {
      auto r = box->expunge(deleted);
      if (!r) return std::move(r).err();
      removed = std::move(*r);
    }
    auto st = box->status();
    return std::make_pair(std::move(removed), st ? st->highest_modseq : store::mod_seq{0});
  };
  auto r = co_await s.blocking(std::move(purge));
  if (!r) {
    s.no_for(c, r.err(), "EXPUNGE failed");
    co_return;
  }
  report_own_expunges(s, r->first);
  if (s.enabled.condstore) {
    view.saw_modseq(r->second);
    s.ok(c, "EXPUNGE completed", "HIGHESTMODSEQ " + std::to_string(r->second));
    co_return;
  }
  s.ok(c, "EXPUNGE completed");
}

}  // namespace hamail::backend::imap_session_detail

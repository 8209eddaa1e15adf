// STORE and UID STORE (RFC 3501 §6.4.6) with UNCHANGEDSINCE (RFC 7162 §3.1.3).

#include <algorithm>

#include "hamail/core/ascii.hpp"
#include "hamail/protocol/imap/arguments.hpp"
#include "imap/fetch.hpp"
#include "imap/flags_text.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/search.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_store(session& s, const imap::command& c) {
  if (c.args.size() < 3) {
    s.bad(c, "STORE needs a sequence set, an item and flags");
    co_return;
  }
  std::size_t i = 1;
  std::optional<store::mod_seq> unchanged_since;
  if (c.args[i].kind == imap::value_kind::list) {
    const auto& mods = c.args[i].items;
    if (mods.size() != 2 || !mods[0].is_atom("UNCHANGEDSINCE") ||
        mods[1].kind != imap::value_kind::number) {
      s.bad(c, "Invalid STORE modifier");
      co_return;
    }
    unchanged_since = mods[1].number;
    s.enabled.condstore = true;
    ++i;
  }
  if (i + 1 >= c.args.size() + 0 || c.args[i].kind != imap::value_kind::atom) {
    s.bad(c, "STORE needs an item and flags");
    co_return;
  }
  const auto item = ascii_upper_copy(c.args[i].text);
  store::flag_mode mode;
  std::string_view base = item;
  if (base.starts_with('+')) {
    mode = store::flag_mode::add;
    base.remove_prefix(1);
  } else if (base.starts_with('-')) {
    mode = store::flag_mode::remove;
    base.remove_prefix(1);
  } else {
    mode = store::flag_mode::replace;
  }
  bool silent = false;
  if (base == "FLAGS.SILENT") {
    silent = true;
  } else if (base != "FLAGS") {
    s.bad(c, "Unknown STORE item");
    co_return;
  }
  ++i;
  // flag-list, or flags without parentheses (RFC 3501 store-att-flags).
  std::vector<std::string> names;
  if (c.args[i].kind == imap::value_kind::list) {
    if (i + 1 != c.args.size()) {
      s.bad(c, "Unexpected arguments after the flag list");
      co_return;
    }
    auto f = imap::parse_flag_list(c.args[i]);
    if (!f) {
      s.bad(c, "Invalid flag list");
      co_return;
    }
    names = std::move(*f);
  } else {
    for (; i < c.args.size(); ++i) {
      auto f = imap::parse_flag_list(c.args[i]);
      if (!f) {
        s.bad(c, "Invalid flag");
        co_return;
      }
      names.insert(names.end(), f->begin(), f->end());
    }
  }
  auto flags = to_message_flags(names);
  if (!flags) {
    s.bad(c, "Invalid keyword");
    co_return;
  }
  auto uids = s.resolve_set(c, c.args[0], c.uid);
  if (!uids) co_return;
  mailbox_view& view = *s.selected;
  if (view.read_only()) {
    s.no(c, "Mailbox is read-only", "READ-ONLY");
    co_return;
  }
  std::shared_ptr<store::mailbox> box = view.shared_box();
  auto apply =
      [box, u = *uids, mode, f = *flags,
       unchanged_since]() -> result<std::pair<store::store_outcome, store::mailbox_snapshot>> {
    auto o = box->set_flags(u, mode, f, unchanged_since);
    if (!o) return std::move(o).err();
    // The flags of every message of the set, changed or not, for the responses.
    auto snap = box->snapshot();
    if (!snap) return std::move(snap).err();
    return std::make_pair(std::move(*o), std::move(*snap));
  };
  auto r = co_await s.blocking(std::move(apply));
  if (!r) {
    s.no_for(c, r.err(), "STORE failed");
    co_return;
  }
  auto& [outcome, snap] = *r;
  std::vector<store::mailbox_change> mine;
  for (const auto& ch : outcome.changed) {
    mine.push_back(
        store::mailbox_change{store::mailbox_change::kind_t::flags, ch.uid, ch.modseq, ch.flags});
    view.saw_modseq(ch.modseq);
  }
  // The client knows its own change; the responses below also show the
  // current flags, so older queued news of these messages need not go out.
  // After .SILENT nothing is shown: others' changes still go out.
  view.changes().forget(mine, !silent);
  std::sort(outcome.modified.begin(), outcome.modified.end());
  const bool condstore = s.enabled.condstore;
  for (auto uid : *uids) {
    if (std::binary_search(outcome.modified.begin(), outcome.modified.end(), uid)) continue;
    const bool changed = std::any_of(outcome.changed.begin(), outcome.changed.end(),
                                     [uid](const auto& ch) { return ch.uid == uid; });
    // .SILENT still reports what changed under CONDSTORE (RFC 7162 §3.1.3) — only
    // the modseq, so clients keep their cache right; otherwise nothing.
    if (silent && !(condstore && changed && unchanged_since)) continue;
    auto it =
        std::lower_bound(snap.messages.begin(), snap.messages.end(), uid,
                         [](const store::message_info& m, store::imap_uid u) { return m.uid < u; });
    if (it == snap.messages.end() || it->uid != uid) continue;
    const auto seq = view.seq_of(uid);
    if (!seq) continue;
    const bool recent = view.is_recent(uid) && !s.enabled.imap4rev2;
    s.raw(imap_fetch::flags_response(
        *seq, it->flags, c.uid ? std::optional<std::uint32_t>(uid) : std::nullopt,
        condstore ? std::optional<store::mod_seq>(it->modseq) : std::nullopt, recent));
  }
  if (!outcome.modified.empty()) {
    std::vector<std::uint32_t> numbers;
    for (auto uid : outcome.modified) {
      if (c.uid) {
        numbers.push_back(uid);
      } else if (auto seq = view.seq_of(uid)) {
        numbers.push_back(*seq);
      }
    }
    std::sort(numbers.begin(), numbers.end());
    s.ok(c, "Conditional STORE failed for some messages",
         "MODIFIED " + imap_search::sequence_set_string(numbers));
    co_return;
  }
  s.ok(c, "STORE completed");
}

}  // namespace hamail::backend::imap_session_detail

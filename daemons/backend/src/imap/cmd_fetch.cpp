// FETCH and UID FETCH (RFC 3501 §6.4.5, RFC 9051 §6.4.5), with BINARY
// (RFC 3516), CHANGEDSINCE and VANISHED (RFC 7162). The items are parsed and
// rendered by fetch.hpp; this file finds the messages, sets \Seen, and loads
// bytes and structures on the blocking pool in batches, sending each batch
// before the next is read so a big FETCH holds little memory.

#include <algorithm>
#include <variant>

#include "imap/fetch.hpp"
#include "imap/flags_text.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/message_access.hpp"
#include "imap/search.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

constexpr std::size_t batch_messages = 256;
constexpr std::size_t batch_octets = 512 * 1024;

/// One batch of FETCH responses, rendered on the blocking pool.
struct batch_result {
  std::string text;
  std::size_t next = 0;  ///< index into the work list where the next batch starts
  bool unknown_cte = false;
};

}  // namespace

awaitable<void> cmd_fetch(session& s, const imap::command& c) {
  if (c.args.size() < 2) {
    s.bad(c, "FETCH needs a sequence set and items");
    co_return;
  }
  imap_fetch::parse_options po;
  po.uid = c.uid;
  po.condstore = true;
  po.qresync = s.enabled.qresync;
  auto parsed = imap_fetch::parse_fetch(std::span(c.args).subspan(1), po);
  if (auto* e = std::get_if<imap_fetch::fetch_error>(&parsed)) {
    s.bad(c, e->text);
    co_return;
  }
  const auto& req = std::get<imap_fetch::fetch_request>(parsed);
  if (req.wants_modseq || req.changedsince) s.enabled.condstore = true;  // RFC 7162 §3.1
  auto uids = s.resolve_set(c, c.args[0], c.uid);
  if (!uids) co_return;

  mailbox_view& view = *s.selected;
  std::shared_ptr<store::mailbox> box = view.shared_box();
  if (req.vanished) {
    // UID FETCH ... (CHANGEDSINCE m VANISHED): UIDs of the set that are gone.
    // hamail keeps no expunge history, so every missing UID up to the
    // highest in view is reported (RFC 7162 §3.2.6 allows a superset).
    imap::sequence_error err{};
    auto set = imap::sequence_set::parse(c.args[0].text, s.cfg.imap.max_sequence_ranges, &err);
    auto snap_fn = [box] { return box->snapshot(); };
    auto snap = co_await s.blocking(std::move(snap_fn));
    if (set && snap && !set->is_saved_result() && snap->uid_next > 1) {
      std::vector<std::uint32_t> gone;
      std::size_t i = 0;
      for (const auto& r : set->resolve(snap->uid_next - 1)) {
        for (std::uint64_t u = r.first; u <= r.last && gone.size() < 1000000; ++u) {
          while (i < snap->messages.size() && snap->messages[i].uid < u) ++i;
          if (i == snap->messages.size() || snap->messages[i].uid != u) {
            gone.push_back(static_cast<std::uint32_t>(u));
          }
        }
      }
      if (!gone.empty()) s.untagged("VANISHED (EARLIER) " + imap_search::sequence_set_string(gone));
    }
  }
  if (uids->empty()) {
    s.ok(c, "FETCH completed");
    co_return;
  }

  // \Seen first, so the responses show it (RFC 3501 §6.4.5).
  std::vector<store::imap_uid> seen_set;
  if (req.sets_seen && !view.read_only()) {
    auto set_seen = [box, u = *uids]() -> result<store::store_outcome> {
      store::message_flags seen;
      seen.set(store::system_flag::seen);
      return box->set_flags(u, store::flag_mode::add, seen);
    };
    auto outcome = co_await s.blocking(std::move(set_seen));
    if (!outcome) {
      s.no_for(c, outcome.err(), "Cannot set \\Seen");
      co_return;
    }
    std::vector<store::mailbox_change> mine;
    for (const auto& ch : outcome->changed) {
      seen_set.push_back(ch.uid);
      mine.push_back(
          store::mailbox_change{store::mailbox_change::kind_t::flags, ch.uid, ch.modseq, ch.flags});
    }
    view.changes().forget(mine, true);
    std::sort(seen_set.begin(), seen_set.end());
  }

  auto snap_fn = [box] { return box->snapshot(); };
  auto snap_r = co_await s.blocking(std::move(snap_fn));
  if (!snap_r) {
    s.no_for(c, snap_r.err(), "Cannot read mailbox");
    co_return;
  }
  auto snap = std::make_shared<store::mailbox_snapshot>(std::move(*snap_r));

  // The work list: (sequence number, index into the snapshot).
  auto work = std::make_shared<std::vector<std::pair<std::uint32_t, std::size_t>>>();
  work->reserve(uids->size());
  for (auto uid : *uids) {
    auto it =
        std::lower_bound(snap->messages.begin(), snap->messages.end(), uid,
                         [](const store::message_info& m, store::imap_uid u) { return m.uid < u; });
    if (it == snap->messages.end() || it->uid != uid) continue;  // expunged meanwhile
    if (!imap_fetch::selected_by(req, *it)) continue;
    const auto seq = view.seq_of(uid);
    if (!seq) continue;
    work->emplace_back(*seq, static_cast<std::size_t>(it - snap->messages.begin()));
  }

  imap_fetch::render_options ro;
  ro.add_uid = c.uid;
  ro.add_modseq = s.enabled.condstore && (req.wants_modseq || req.changedsince.has_value());
  ro.utf8 = s.enabled.utf8_accept;
  ro.rev2 = s.enabled.imap4rev2;
  auto loader = std::make_shared<message_loader>(view.box(), s.ctx.structures, s.user(),
                                                 view.box().name(), view.uid_validity());
  auto request = std::make_shared<imap_fetch::fetch_request>(req);
  auto seen = std::make_shared<std::vector<store::imap_uid>>(std::move(seen_set));
  mailbox_view* v = &view;
  bool unknown_cte = false;
  for (std::size_t start = 0; start < work->size();) {
    auto render = [work, snap, loader, request, seen, ro, start, v]() -> batch_result {
      batch_result b;
      std::size_t i = start;
      for (; i < work->size() && i - start < batch_messages && b.text.size() < batch_octets; ++i) {
        const auto [seq, idx] = (*work)[i];
        store::message_info info = snap->messages[idx];
        info.recent = v->is_recent(info.uid);
        imap_fetch::render_options o = ro;
        o.add_flags_for_seen = std::binary_search(seen->begin(), seen->end(), info.uid);
        loaded_message m;
        if (request->needs_raw || request->needs_structure) {
          auto l = loader->load(info.uid, request->needs_raw, request->needs_structure);
          if (!l) continue;  // expunged meanwhile: nothing to say about it
          m = std::move(*l);
        }
        imap_fetch::message_view mv{seq, info, m.bytes.view(), m.structure.get()};
        auto text = imap_fetch::render_fetch(*request, mv, o);
        if (!text) {
          if (text.err().user_text == "UNKNOWN-CTE") b.unknown_cte = true;
          continue;
        }
        b.text += *text;
      }
      b.next = i;
      return b;
    };
    batch_result b = co_await s.blocking(std::move(render));
    unknown_cte = unknown_cte || b.unknown_cte;
    s.raw(b.text);
    start = b.next;
    if (start < work->size() && !co_await s.flush()) co_return;
  }
  if (unknown_cte) {
    s.no(c, "Unknown content transfer encoding", "UNKNOWN-CTE");
    co_return;
  }
  s.ok(c, "FETCH completed");
}

}  // namespace hamail::backend::imap_session_detail

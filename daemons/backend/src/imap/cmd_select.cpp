// SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 9051 §6.3.2-3), with the
// CONDSTORE and QRESYNC parameters (RFC 7162 §3.1.8, §3.2.5).

#include <algorithm>

#include "hamail/core/ascii.hpp"
#include "hamail/protocol/imap/sequence_set.hpp"
#include "imap/fetch.hpp"
#include "imap/flags_text.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/search.hpp"
#include "imap/session.hpp"
#include "imap/special_use.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

/// SELECT (QRESYNC (uidvalidity modseq [known-uids [(seq-set uid-set)]])).
struct qresync_params {
  std::uint32_t uid_validity = 0;
  store::mod_seq modseq = 0;
  std::optional<imap::sequence_set> known_uids;
};

}  // namespace

awaitable<void> cmd_select(session& s, const imap::command& c) {
  const bool examine = c.name == "EXAMINE";
  if (c.args.empty() || c.args.size() > 2) {
    s.bad(c, "Expected a mailbox name and optional parameters");
    co_return;
  }
  std::optional<qresync_params> qresync;
  bool condstore = false;
  if (c.args.size() == 2) {
    const auto& params = c.args[1];
    if (params.kind != imap::value_kind::list) {
      s.bad(c, "Expected a parameter list");
      co_return;
    }
    for (std::size_t i = 0; i < params.items.size(); ++i) {
      const auto& p = params.items[i];
      if (p.is_atom("CONDSTORE")) {
        condstore = true;
      } else if (p.is_atom("QRESYNC") && i + 1 < params.items.size() &&
                 params.items[i + 1].kind == imap::value_kind::list) {
        if (!s.enabled.qresync) {
          s.bad(c, "Enable QRESYNC first");
          co_return;
        }
        const auto& q = params.items[++i].items;
        if (q.size() < 2 || q[0].kind != imap::value_kind::number ||
            q[1].kind != imap::value_kind::number || q[0].number == 0 || q[0].number > UINT32_MAX ||
            q[1].number == 0) {
          s.bad(c, "Invalid QRESYNC parameter");
          co_return;
        }
        qresync_params qp;
        qp.uid_validity = static_cast<std::uint32_t>(q[0].number);
        qp.modseq = q[1].number;
        if (q.size() >= 3) {
          if (q[2].kind != imap::value_kind::atom && q[2].kind != imap::value_kind::number) {
            s.bad(c, "Invalid known UIDs");
            co_return;
          }
          qp.known_uids = imap::sequence_set::parse(q[2].text, s.cfg.imap.max_sequence_ranges);
          if (!qp.known_uids || qp.known_uids->is_saved_result()) {
            s.bad(c, "Invalid known UIDs");
            co_return;
          }
        }
        // The optional (seq-set uid-set) match data only narrows what the
        // server must send; VANISHED (EARLIER) below is exact without it.
        qresync = std::move(qp);
      } else {
        s.bad(c, "Unknown SELECT parameter");
        co_return;
      }
    }
  }
  auto name = s.mailbox_argument(c, c.args[0]);
  if (!name) co_return;

  // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
  if (s.selected) s.untagged("OK [CLOSED] Previous mailbox closed");
  s.deselect();
  if (condstore) s.enabled.condstore = true;

  store::mail_store* st = &s.ctx.store;
  const std::string account = s.user();
  const std::string mailbox = *name;
  auto open = [st, account, mailbox, examine]() -> result<std::unique_ptr<mailbox_view>> {
    auto box = st->open_mailbox(account, mailbox);
    if (!box) return std::move(box).err();
    return mailbox_view::open(std::move(*box), examine);
  };
  auto view = co_await s.blocking(std::move(open));
  if (!view) {
    if (view.err().code == errc::not_found || view.err().code == errc::invalid_input) {
      s.no_such_mailbox(c);
    } else {
      s.no_for(c, view.err(), "Cannot open mailbox");
    }
    co_return;
  }
  mailbox_view& v = **view;
  const auto& snap = v.initial();

  // Keywords in use, first spelling seen.
  std::vector<std::string> keywords;
  for (const auto& m : snap.messages) {
    for (const auto& k : m.flags.keywords) {
      const bool known = std::any_of(keywords.begin(), keywords.end(),
                                     [&](const std::string& x) { return ascii_iequals(x, k); });
      if (!known) keywords.push_back(k);
    }
  }
  const std::string flags = mailbox_flags_text(keywords);
  s.untagged("FLAGS " + flags);
  if (examine) {
    s.untagged("OK [PERMANENTFLAGS ()] Read-only mailbox");
  } else {
    std::string perm = flags;
    perm.insert(perm.size() - 1, " \\*");
    s.untagged("OK [PERMANENTFLAGS " + perm + "] Flags permitted");
  }
  s.untagged(std::to_string(v.exists()) + " EXISTS");
  if (!s.enabled.imap4rev2) {
    s.untagged(std::to_string(v.recent_count()) + " RECENT");
    for (std::size_t i = 0; i < snap.messages.size(); ++i) {
      if (!snap.messages[i].flags.has(store::system_flag::seen)) {
        s.untagged("OK [UNSEEN " + std::to_string(i + 1) + "] First unseen");
        break;
      }
    }
  }
  s.untagged("OK [UIDVALIDITY " + std::to_string(snap.uid_validity) + "] UIDs valid");
  s.untagged("OK [UIDNEXT " + std::to_string(snap.uid_next) + "] Predicted next UID");
  s.untagged("OK [HIGHESTMODSEQ " +
             std::to_string(std::max<store::mod_seq>(snap.highest_modseq, 1)) + "] Highest");
  if (s.enabled.imap4rev2) {
    std::string attrs;
    if (auto su = special_use_of(mailbox); !su.empty()) attrs = su;
    s.untagged("LIST (" + attrs + ") \"/\" " + s.mailbox_text(mailbox));
  }
  if (qresync && qresync->uid_validity == snap.uid_validity) {
    // VANISHED (EARLIER): known UIDs that no longer exist. hamail keeps no
    // record of expunged UIDs, so every missing UID of the range is listed;
    // RFC 7162 §3.2.5.2 allows UIDs expunged before the client's modseq.
    std::vector<std::uint32_t> vanished;
    const std::uint32_t top = snap.uid_next > 1 ? snap.uid_next - 1 : 0;
    if (top > 0) {
      const auto ranges = qresync->known_uids ? qresync->known_uids->resolve(top)
                                              : std::vector<imap::sequence_range>{{1, top}};
      std::size_t i = 0;
      for (const auto& r : ranges) {
        for (std::uint64_t u = r.first; u <= r.last && vanished.size() < 1000000; ++u) {
          while (i < snap.messages.size() && snap.messages[i].uid < u) ++i;
          if (i == snap.messages.size() || snap.messages[i].uid != u) {
            vanished.push_back(static_cast<std::uint32_t>(u));
          }
        }
      }
    }
    if (!vanished.empty())
      s.untagged("VANISHED (EARLIER) " + imap_search::sequence_set_string(vanished));
    for (std::size_t i = 0; i < snap.messages.size(); ++i) {
      const auto& m = snap.messages[i];
      if (m.modseq <= qresync->modseq) continue;
      s.untagged(std::to_string(i + 1) + " FETCH (UID " + std::to_string(m.uid) + " FLAGS " +
                 imap_fetch::flag_list(m.flags, v.is_recent(m.uid) && !s.enabled.imap4rev2) +
                 " MODSEQ (" + std::to_string(m.modseq) + "))");
    }
  }
  v.drop_initial();
  s.selected = std::move(*view);
  s.st = state::selected;
  s.ok(c, examine ? "EXAMINE completed" : "SELECT completed", examine ? "READ-ONLY" : "READ-WRITE");
}

}  // namespace hamail::backend::imap_session_detail

// STATUS (RFC 3501 §6.3.10, RFC 9051 §6.3.11) and the STATUS items LIST-STATUS
// (RFC 5819) shares.

#include "imap/cmd_status.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "hamail/store/mailbox_name.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

constexpr std::array<std::pair<std::string_view, status_item>, 10> item_names{{
    {"MESSAGES", status_item::messages},
    {"RECENT", status_item::recent},
    {"UIDNEXT", status_item::uid_next},
    {"UIDVALIDITY", status_item::uid_validity},
    {"UNSEEN", status_item::unseen},
    {"HIGHESTMODSEQ", status_item::highest_modseq},
    {"SIZE", status_item::size},
    {"DELETED", status_item::deleted},
    {"DELETED-STORAGE", status_item::deleted_storage},
    {"APPENDLIMIT", status_item::append_limit},
}};

std::string_view name_of(status_item item) noexcept {
  for (const auto& [n, i] : item_names) {
    if (i == item) return n;
  }
  return {};
}

bool needs_snapshot(const std::vector<status_item>& items) noexcept {
  return std::any_of(items.begin(), items.end(), [](status_item i) {
    return i == status_item::deleted || i == status_item::deleted_storage;
  });
}

}  // namespace

std::optional<std::vector<status_item>> parse_status_items(const imap::value& v) {
  if (v.kind != imap::value_kind::list || v.items.empty()) return std::nullopt;
  std::vector<status_item> out;
  for (const auto& x : v.items) {
    const auto* found = std::find_if(item_names.begin(), item_names.end(),
                                     [&](const auto& e) { return x.is_atom(e.first); });
    if (found == item_names.end()) return std::nullopt;
    if (std::find(out.begin(), out.end(), found->second) == out.end()) {
      out.push_back(found->second);
    }
  }
  return out;
}

bool enables_condstore(const std::vector<status_item>& items) noexcept {
  return std::find(items.begin(), items.end(), status_item::highest_modseq) != items.end();
}

result<status_values> read_status(store::mail_store& st, std::string_view account,
                                  std::string_view name, const std::vector<status_item>& items) {
  status_values v;
  if (!needs_snapshot(items)) {
    auto counters = st.status(account, name);
    if (!counters) return std::move(counters).err();
    v.counters = *counters;
    return v;
  }
  auto box = st.open_mailbox(account, name);
  if (!box) return std::move(box).err();
  auto counters = (*box)->status();
  if (!counters) return std::move(counters).err();
  auto snap = (*box)->snapshot();
  if (!snap) return std::move(snap).err();
  v.counters = *counters;
  for (const auto& m : snap->messages) {
    if (!m.flags.has(store::system_flag::deleted)) continue;
    ++v.deleted;
    v.deleted_octets += m.size;
  }
  return v;
}

std::string status_text(const session& s, std::string_view name,
                        const std::vector<status_item>& items, const status_values& values) {
  const auto& c = values.counters;
  std::string out = "STATUS " + s.mailbox_text(name) + " (";
  bool first = true;
  for (auto item : items) {
    if (!first) out += ' ';
    first = false;
    out += name_of(item);
    out += ' ';
    switch (item) {
      case status_item::messages:
        out += std::to_string(c.messages);
        break;
      case status_item::recent:
        out += std::to_string(c.recent);
        break;
      case status_item::uid_next:
        out += std::to_string(c.uid_next);
        break;
      case status_item::uid_validity:
        out += std::to_string(c.uid_validity);
        break;
      case status_item::unseen:
        out += std::to_string(c.unseen);
        break;
      case status_item::highest_modseq:
        // As SELECT reports it: 1 for a mailbox that never changed (RFC 7162 §3.1.1).
        out += std::to_string(std::max<store::mod_seq>(c.highest_modseq, 1));
        break;
      case status_item::size:
        out += std::to_string(c.size);
        break;
      case status_item::deleted:
        out += std::to_string(values.deleted);
        break;
      case status_item::deleted_storage:
        // In the STORAGE resource's unit, 1024 octets (RFC 9208 §4.4), rounded up.
        out += std::to_string((values.deleted_octets + 1023) / 1024);
        break;
      case status_item::append_limit:
        out += std::to_string(s.cfg.imap.max_append_size);
        break;
    }
  }
  out += ')';
  return out;
}

awaitable<void> cmd_status(session& s, const imap::command& c) {
  if (c.args.size() != 2) {
    s.bad(c, "STATUS takes a mailbox name and a list of items");
    co_return;
  }
  auto items = parse_status_items(c.args[1]);
  if (!items) {
    s.bad(c, "Invalid STATUS items");
    co_return;
  }
  auto canonical = s.existing_mailbox_argument(c, c.args[0]);
  if (!canonical) co_return;
  store::mail_store* st = &s.ctx.store;
  const std::string account = s.user();
  const std::string mailbox = *canonical;
  const std::vector<status_item> wanted = *items;
  auto read = [st, account, mailbox, wanted] { return read_status(*st, account, mailbox, wanted); };
  auto values = co_await s.blocking(std::move(read));
  if (!values) {
    if (values.err().code == errc::not_found) {
      s.no_such_mailbox(c);
    } else {
      s.no_for(c, values.err(), "Cannot read mailbox status");
    }
    co_return;
  }
  if (enables_condstore(wanted)) s.enabled.condstore = true;
  s.untagged(status_text(s, mailbox, wanted, *values));
  s.ok(c, "STATUS completed");
}

}  // namespace hamail::backend::imap_session_detail

// APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502), APPENDUID (RFC
// 4315), literal8 (RFC 3516) and APPENDLIMIT (RFC 7889). The message goes
// through the store's durable path, as a delivery does.

#include "hamail/protocol/imap/arguments.hpp"
#include "imap/flags_text.hpp"
#include "imap/search.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

struct append_item {
  store::message_flags flags;
  std::optional<store::internal_date> date;
  const std::string* body = nullptr;
};

/// Everything an APPEND commits, done on the blocking pool.
struct append_job {
  store::mail_store* st;
  std::string account;
  std::string mailbox;
  std::vector<append_item> items;
  std::optional<store::quota_limits> quota;

  result<std::vector<store::delivered>> operator()() const {
    auto box = st->open_mailbox(account, mailbox);
    if (!box) return std::move(box).err();
    std::vector<store::delivered> done;
    for (const auto& it : items) {
      auto r = append_one(**box, it);
      if (!r) {
        // MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): take back what went in.
        std::vector<store::imap_uid> undo;
        for (const auto& d : done) undo.push_back(d.uid);
        if (!undo.empty()) (void)(*box)->expunge(undo);
        return std::move(r).err();
      }
      done.push_back(*r);
    }
    return done;
  }

  result<store::delivered> append_one(store::mailbox& box, const append_item& it) const {
    auto in = st->begin_delivery();
    if (!in) return std::move(in).err();
    if (auto w = in->write(*it.body); !w) return std::move(w).err();
    auto sealed = in->finish(it.date);
    if (!sealed) return std::move(sealed).err();
    return box.append(*sealed, it.flags, it.date, quota);
  }
};

}  // namespace

awaitable<void> cmd_append(session& s, const imap::command& c) {
  if (c.args.size() < 2) {
    s.bad(c, "APPEND needs a mailbox and a message");
    co_return;
  }
  auto name = s.mailbox_argument(c, c.args[0]);
  if (!name) co_return;
  append_job job{&s.ctx.store, s.user(), *name, {}, s.quota_option()};
  for (std::size_t i = 1; i < c.args.size();) {
    append_item item;
    if (c.args[i].kind == imap::value_kind::list) {
      auto names = imap::parse_flag_list(c.args[i]);
      auto flags = names ? to_message_flags(*names) : std::nullopt;
      if (!flags) {
        s.bad(c, "Invalid flag list");
        co_return;
      }
      item.flags = std::move(*flags);
      ++i;
    }
    if (i < c.args.size() && c.args[i].kind == imap::value_kind::quoted) {
      auto dt = imap::parse_date_time(c.args[i].text);
      if (!dt) {
        s.bad(c, "Invalid date-time");
        co_return;
      }
      item.date = store::internal_date(std::chrono::seconds(dt->unix_seconds()));
      ++i;
    }
    // RFC 6855 §4 (UTF8=ACCEPT): "UTF8 (literal8)" carries a message with UTF-8 headers.
    const imap::value* body = nullptr;
    if (i + 1 < c.args.size() && c.args[i].is_atom("UTF8") &&
        c.args[i + 1].kind == imap::value_kind::list && c.args[i + 1].items.size() == 1 &&
        c.args[i + 1].items[0].kind == imap::value_kind::literal) {
      body = &c.args[i + 1].items[0];
      ++i;
    } else if (i < c.args.size() && c.args[i].kind == imap::value_kind::literal) {
      body = &c.args[i];
    }
    if (!body) {
      s.bad(c, "Expected a message literal");
      co_return;
    }
    if (body->text.size() > s.cfg.imap.max_append_size) {
      s.no(c, "Message too large", "TOOBIG");
      co_return;
    }
    item.body = &body->text;
    job.items.push_back(std::move(item));
    ++i;
  }
  auto r = co_await s.blocking(std::move(job));
  if (!r) {
    switch (r.err().code) {
      case errc::not_found:
        s.no(c, "Mailbox does not exist", "TRYCREATE");
        break;
      case errc::quota_exceeded:
        s.no(c, "Quota exceeded", "OVERQUOTA");
        break;
      default:
        s.no_for(c, r.err(), "APPEND failed");
        break;
    }
    co_return;
  }
  std::vector<std::uint32_t> uids;
  for (const auto& d : *r) uids.push_back(d.uid);
  s.ok(c, "APPEND completed",
       "APPENDUID " + std::to_string(r->front().uid_validity) + " " +
           imap_search::sequence_set_string(uids));
}

}  // namespace hamail::backend::imap_session_detail

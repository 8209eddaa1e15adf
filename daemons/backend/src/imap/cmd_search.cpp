// SEARCH, SORT and THREAD with their UID forms (RFC 3501 §6.4.4, RFC 4731
// ESEARCH, RFC 5182 SEARCHRES, RFC 5256 SORT/THREAD, RFC 7162 MODSEQ). The
// keys are parsed and evaluated by search.hpp and sort_thread.hpp; the whole
// evaluation runs on the blocking pool, so a search over a huge mailbox never
// holds up other sessions on the event loop.

#include <algorithm>
#include <chrono>
#include <variant>

#include "hamail/mime/search_text.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/message_access.hpp"
#include "imap/search.hpp"
#include "imap/session.hpp"
#include "imap/sort_thread.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

enum class verb { search, sort, thread };

/// The messages of the view in sequence order, with their current flags
/// (a message expunged by another session and not reported yet keeps its
/// place with no flags and matches no content key).
std::vector<store::message_info> messages_in_view(const mailbox_view& v,
                                                  const store::mailbox_snapshot& snap) {
  std::vector<store::message_info> out;
  out.reserve(v.uids().size());
  std::size_t i = 0;
  for (auto uid : v.uids()) {
    while (i < snap.messages.size() && snap.messages[i].uid < uid) ++i;
    if (i < snap.messages.size() && snap.messages[i].uid == uid) {
      out.push_back(snap.messages[i]);
    } else {
      store::message_info gone;
      gone.uid = uid;
      out.push_back(std::move(gone));
    }
    out.back().recent = v.is_recent(uid);
  }
  return out;
}

/// The outcome of one SEARCH/SORT/THREAD on the pool.
struct search_outcome {
  std::string response;  ///< untagged response line(s), CRLF included
  std::vector<store::imap_uid> saved;
  bool save = false;
};

}  // namespace

awaitable<void> cmd_search(session& s, const imap::command& c) {
  const verb kind = c.name == "SORT"     ? verb::sort
                    : c.name == "THREAD" ? verb::thread
                                         : verb::search;
  imap_search::parse_options po;
  po.allow_return = kind == verb::search;
  po.utf8_accept = s.enabled.utf8_accept;
  po.max_ranges = s.cfg.imap.max_sequence_ranges;
  std::optional<imap_search::search_query> query;
  std::optional<imap_search::sort_query> sort;
  std::optional<imap_search::thread_query> thread;
  const imap_search::search_error* err = nullptr;
  std::variant<imap_search::search_query, imap_search::search_error> ps;
  std::variant<imap_search::sort_query, imap_search::search_error> pso;
  std::variant<imap_search::thread_query, imap_search::search_error> pth;
  switch (kind) {
    case verb::search:
      ps = imap_search::parse_search(c.args, po);
      if (auto* q = std::get_if<imap_search::search_query>(&ps)) query = std::move(*q);
      err = std::get_if<imap_search::search_error>(&ps);
      break;
    case verb::sort:
      pso = imap_search::parse_sort(c.args, po);
      if (auto* q = std::get_if<imap_search::sort_query>(&pso)) sort = std::move(*q);
      err = std::get_if<imap_search::search_error>(&pso);
      break;
    case verb::thread:
      pth = imap_search::parse_thread(c.args, po);
      if (auto* q = std::get_if<imap_search::thread_query>(&pth)) thread = std::move(*q);
      err = std::get_if<imap_search::search_error>(&pth);
      break;
  }
  if (err) {
    if (err->bad) {
      s.bad(c, err->text, err->code);
    } else {
      s.no(c, err->text, err->code);
    }
    co_return;
  }
  const imap_search::search_query& q = kind == verb::search ? *query
                                       : kind == verb::sort ? sort->search
                                                            : thread->search;
  if (q.uses_modseq) s.enabled.condstore = true;

  mailbox_view& view = *s.selected;
  auto loader = std::make_shared<message_loader>(view.box(), s.ctx.structures, s.user(),
                                                 view.box().name(), view.uid_validity());
  const bool uid = c.uid;
  const bool condstore = s.enabled.condstore;
  const std::string tag = c.tag;
  auto run = [&view, loader, &q, &sort, &thread, kind, uid, condstore, tag,
              saved = s.saved_search]() -> result<search_outcome> {
    auto snap = view.box().snapshot();
    if (!snap) return std::move(snap).err();
    const auto messages = messages_in_view(view, *snap);
    // Content for SEARCH keys: bytes, structure and decoded text, one message at a time.
    loaded_message current;
    mime::search_text text;
    imap_search::message_content content;
    imap_search::search_context ctx;
    ctx.messages = messages;
    ctx.saved = saved;
    ctx.now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    ctx.load = [&](std::size_t i) -> const imap_search::message_content* {
      // Header keys alone read the header text kept with the cached structure:
      // no message file is opened unless the structure is not cached yet.
      auto l = loader->load(messages[i].uid, q.needs_body, true);
      if (!l) return nullptr;
      current = std::move(*l);
      content.raw = current.bytes.view();
      content.structure = current.structure.get();
      content.text = nullptr;
      if (q.needs_body) {
        text = mime::extract_search_text(content.raw, *content.structure);
        content.text = &text;
      } else if (q.needs_header && content.structure != nullptr) {
        text.headers = content.structure->header_text;
        text.body.clear();
        content.text = &text;
      }
      return &content;
    };
    const auto indices = imap_search::evaluate(q, ctx);
    search_outcome out;
    const store::mod_seq modseq =
        (q.uses_modseq && condstore) ? imap_search::highest_modseq(indices, messages) : 0;
    if (kind == verb::search) {
      const auto numbers = imap_search::to_numbers(indices, messages, uid);
      const bool save_only = q.ret.save && !q.ret.min && !q.ret.max && !q.ret.all && !q.ret.count;
      if (save_only) {
        // RFC 5182 §2.4: SAVE alone gives no ESEARCH response.
      } else if (q.ret.extended) {
        out.response = imap_search::esearch_response(tag, uid, q.ret, numbers, modseq) + "\r\n";
      } else {
        out.response = imap_search::search_response(numbers, modseq) + "\r\n";
      }
      if (q.ret.save) {
        out.save = true;
        out.saved = imap_search::saved_uids(q.ret, indices, messages);
      }
      return out;
    }
    if (kind == verb::sort) {
      // Envelopes from the cached structures; each asked for at most once.
      std::vector<std::shared_ptr<const mime::message_structure>> held;
      imap_search::envelope_fn env = [&](std::size_t i) -> const mime::envelope* {
        auto l = loader->load(messages[i].uid, false, true);
        if (!l || !l->structure) return nullptr;
        held.push_back(l->structure);
        return &held.back()->env;
      };
      const auto order = imap_search::sort_messages(indices, sort->criteria, messages, env);
      const auto numbers = imap_search::to_numbers(order, messages, uid);
      out.response = imap_search::search_response(numbers, modseq, "SORT") + "\r\n";
      return out;
    }
    imap_search::thread_fields_fn fields = [&](std::size_t i) -> imap_search::thread_fields {
      auto l = loader->load(messages[i].uid, q.needs_body, true);
      if (!l || !l->structure) return {};
      return imap_search::thread_fields_of(l->bytes.view(), *l->structure);
    };
    out.response = "* THREAD " +
                   imap_search::thread_messages(thread->algorithm, indices, messages, fields, uid) +
                   "\r\n";
    return out;
  };
  auto r = co_await s.blocking(std::move(run));
  if (!r) {
    s.no_for(c, r.err(), c.name + " failed");
    co_return;
  }
  s.raw(r->response);
  if (r->save) s.saved_search = std::move(r->saved);
  s.ok(c, c.name + " completed");
}

}  // namespace hamail::backend::imap_session_detail

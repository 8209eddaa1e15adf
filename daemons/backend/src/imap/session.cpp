#include "imap/session.hpp"

#include <algorithm>

#include "hamail/protocol/imap/arguments.hpp"
#include "hamail/store/mailbox_name.hpp"
#include "imap/fetch.hpp"
#include "imap/flags_text.hpp"
#include "imap/mailbox_view.hpp"
#include "imap/search.hpp"
#include "imap/special_use.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

constexpr std::size_t read_chunk = 16 * 1024;

}  // namespace

session::session(imap_context& c, net::connection& cn)
    : ctx(c), cfg(c.config), conn(cn), parser_(imap::command_limits::before_login()) {
  client_address = conn.remote_address();
  trusted_proxy = std::find(cfg.imap.trusted_proxies.begin(), cfg.imap.trusted_proxies.end(),
                            client_address) != cfg.imap.trusted_proxies.end();
  conn.set_idle_timeout(cfg.imap.idle_timeout_before_login);
}

session::~session() = default;

void session::untagged(std::string_view text) {
  out_ += "* ";
  out_ += text;
  out_ += "\r\n";
}

namespace {

void append_tagged(std::string& out, const imap::command& c, std::string_view status,
                   std::string_view code, std::string_view text) {
  out += c.tag.empty() ? std::string_view("*") : std::string_view(c.tag);
  out += ' ';
  out += status;
  out += ' ';
  if (!code.empty()) {
    out += '[';
    out += code;
    out += "] ";
  }
  out += text;
  out += "\r\n";
}

}  // namespace

void session::ok(const imap::command& c, std::string_view text, std::string_view code) {
  tagged_pos_ = out_.size();
  append_tagged(out_, c, "OK", code, text);
}

void session::no(const imap::command& c, std::string_view text, std::string_view code) {
  tagged_pos_ = out_.size();
  append_tagged(out_, c, "NO", code, text);
}

void session::bad(const imap::command& c, std::string_view text, std::string_view code) {
  tagged_pos_ = out_.size();
  append_tagged(out_, c, "BAD", code, text);
  count_error();
}

void session::no_for(const imap::command& c, const error& e, std::string_view what) {
  std::string code;
  switch (e.code) {
    case errc::not_found:
      code = "NONEXISTENT";
      break;
    case errc::already_exists:
      code = "ALREADYEXISTS";
      break;
    case errc::quota_exceeded:
      code = "OVERQUOTA";
      break;
    case errc::permission_denied:
      code = "CANNOT";
      break;
    case errc::invalid_input:
      code = "CANNOT";
      break;
    default:
      code = e.is_temporary() ? "UNAVAILABLE" : "SERVERBUG";
      break;
  }
  if (code == "UNAVAILABLE" || code == "SERVERBUG") {
    conn.log().error("{}: {}", what, e.describe());
  }
  std::string text(what);
  if (!e.user_text.empty()) {
    text += ": ";
    text += e.user_text;
  }
  no(c, text, code);
}

void session::bye(std::string_view text) {
  untagged(std::string("BYE ") + std::string(text));
  end = ending::logout;
}

awaitable<bool> session::flush() {
  if (out_.empty()) co_return true;
  std::string data;
  data.swap(out_);
  tagged_pos_ = std::string::npos;
  auto r = co_await conn.write(data);
  // Keep the larger buffer for the next response, up to a bound: an idle
  // session should not hold a big FETCH's buffer.
  if (data.capacity() <= 16 * 1024 && out_.empty()) {
    data.clear();
    out_.swap(data);
  }
  if (!r) {
    conn.log().debug("write failed: {}", r.err().describe());
    end = ending::closed;
    co_return false;
  }
  co_return true;
}

void session::count_error() {
  const auto limit = st == state::not_authenticated
                         ? std::min(cfg.imap.max_errors_before_login, cfg.imap.max_errors)
                         : cfg.imap.max_errors;
  if (++errors >= limit) {
    conn.log().notice("too many errors ({}), closing", errors);
    bye("Too many invalid commands");
  }
}

awaitable<bool> session::fill(net::read_mode mode) {
  if (!co_await flush()) co_return false;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
    if (in_.capacity() > 4 * read_chunk) in_.shrink_to_fit();
  } else if (in_pos_ > 0) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  const std::size_t old = in_.size();
  in_.resize(old + read_chunk);
  auto r = co_await conn.read_some(boost::asio::buffer(in_.data() + old, read_chunk), mode);
  if (!r) {
    in_.resize(old);
    switch (r.err().code) {
      case errc::timed_out:
        conn.log().info("timeout: {}", r.err().detail);
        bye("Autologout; idle for too long");
        break;
      case errc::shutting_down:
        // A move's fence ends the account's sessions the way a drain does (ADR 0005).
        bye(fence_token.ended_by_fence() ? "[UNAVAILABLE] Account is being moved, try again later"
                                         : "Server shutting down, reconnect later");
        break;
      default:
        conn.log().debug("read ended: {}", r.err().describe());
        end = ending::closed;
        break;
    }
    co_return false;
  }
  in_.resize(old + *r);
  co_return true;
}

void session::discard_input() {
  in_.clear();
  in_pos_ = 0;
  parser_.reset();
}

awaitable<std::optional<std::string>> session::read_line(const imap::command& c) {
  parser_.expect_line();
  for (;;) {
    auto step = parser_.feed(std::string_view(in_).substr(in_pos_));
    in_pos_ += step.consumed;
    if (step.status == imap::parse_status::complete && step.line) co_return std::move(*step.line);
    if (step.status == imap::parse_status::error) {
      if (step.error && step.error->action == imap::error_action::close) {
        bye("Line too long");
      } else {
        bad(c, "Line too long");
      }
      co_return std::nullopt;
    }
    if (!co_await fill(net::read_mode::idle)) co_return std::nullopt;
  }
}

imap::write_options session::write_options() const {
  imap::write_options o;
  o.utf8 = enabled.utf8_accept;
  return o;
}

bool session::password_login_allowed() const { return conn.is_tls() || cfg.imap.login_without_tls; }

imap::command_limits session::limits_for_state() const {
  if (st == state::not_authenticated) return imap::command_limits::before_login();
  imap::command_limits l;
  l.max_line = cfg.imap.max_line;
  l.max_literal = static_cast<std::size_t>(cfg.imap.max_append_size);
  l.max_command = l.max_literal + l.max_line;
  l.non_sync = imap::literal_mode::literal_plus;
  return l;
}

awaitable<void> session::logged_in(directory::account a) {
  account = std::move(a);
  st = state::authenticated;
  errors = 0;
  quota.bytes = account.quota_bytes != 0 ? account.quota_bytes : cfg.quota.default_bytes;
  quota.messages =
      account.quota_messages != 0 ? account.quota_messages : cfg.quota.default_messages;
  parser_.set_limits(limits_for_state());
  conn.set_idle_timeout(cfg.imap.idle_timeout);
  if (cfg.imap.create_special_use) {
    auto create = [this] {
      return create_special_use_mailboxes(ctx.store, account.id, cfg.store.fsync);
    };
    auto r = co_await blocking(std::move(create));
    if (!r) conn.log().warning("special-use mailboxes of {}: {}", account.id, r.err().describe());
  }
}

void session::deselect() {
  selected.reset();
  saved_search.clear();
  if (st == state::selected) st = state::authenticated;
}

awaitable<std::string> session::change_report(bool allow_expunge) {
  std::string text;
  if (!selected || !selected->has_changes()) co_return text;
  mailbox_view* v = selected.get();
  auto apply = [v, allow_expunge] { return v->apply(allow_expunge); };
  auto u = co_await blocking(std::move(apply));
  if (!u) {
    conn.log().warning("mailbox changes: {}", u.err().describe());
    co_return text;
  }
  if (!u->expunged.empty()) {
    if (enabled.qresync) {
      text += "* VANISHED " + imap_search::sequence_set_string(u->expunged) + "\r\n";
    } else {
      for (auto n : u->expunged_seq) text += "* " + std::to_string(n) + " EXPUNGE\r\n";
    }
  }
  if (u->exists_changed) {
    text += "* " + std::to_string(v->exists()) + " EXISTS\r\n";
    if (!enabled.imap4rev2) text += "* " + std::to_string(v->recent_count()) + " RECENT\r\n";
  }
  for (const auto& f : u->flags) {
    const auto seq = v->seq_of(f.uid);
    if (!seq) continue;
    text += "* " + std::to_string(*seq) + " FETCH (FLAGS " +
            imap_fetch::flag_list(f.flags, v->is_recent(f.uid) && !enabled.imap4rev2);
    // RFC 7162 §3.2.4 wants UID with unsolicited FETCH under QRESYNC; it helps any client.
    text += " UID " + std::to_string(f.uid);
    if (enabled.condstore) text += " MODSEQ (" + std::to_string(f.modseq) + ")";
    text += ")\r\n";
  }
  co_return text;
}

awaitable<void> session::report_changes(bool allow_expunge) {
  out_ += co_await change_report(allow_expunge);
}

std::optional<std::vector<store::imap_uid>> session::resolve_set(const imap::command& c,
                                                                 const imap::value& v, bool uid) {
  if (v.kind != imap::value_kind::atom && v.kind != imap::value_kind::number) {
    bad(c, "Invalid sequence set");
    return std::nullopt;
  }
  imap::sequence_error err{};
  auto set = imap::sequence_set::parse(v.text, cfg.imap.max_sequence_ranges, &err);
  if (!set) {
    bad(c, err == imap::sequence_error::too_many_ranges ? "Sequence set has too many parts"
                                                        : "Invalid sequence set");
    return std::nullopt;
  }
  const auto& uids = selected->uids();
  std::vector<store::imap_uid> out;
  if (set->is_saved_result()) {
    for (auto u : saved_search) {
      if (selected->seq_of(u)) out.push_back(u);
    }
    return out;
  }
  if (uid) {
    if (uids.empty()) return out;
    for (const auto& r : set->resolve(uids.back())) {
      auto it = std::lower_bound(uids.begin(), uids.end(), r.first);
      for (; it != uids.end() && *it <= r.last; ++it) out.push_back(*it);
    }
    return out;
  }
  // Sequence numbers past the end are an error (RFC 9051 §6.4.5: BAD).
  if (set->highest_explicit() > uids.size()) {
    bad(c, "Invalid message sequence number");
    return std::nullopt;
  }
  if (uids.empty()) {
    // "*" in an empty mailbox names nothing that exists.
    bad(c, "No messages");
    return std::nullopt;
  }
  for (const auto& r : set->resolve(static_cast<std::uint32_t>(uids.size()))) {
    for (std::uint64_t n = r.first; n <= r.last; ++n) out.push_back(uids[n - 1]);
  }
  return out;
}

std::optional<std::string> session::existing_mailbox_argument(const imap::command& c,
                                                              const imap::value& v) {
  auto name = mailbox_argument(c, v);
  if (!name) return std::nullopt;
  auto canonical = store::validate_mailbox_name(*name);
  if (!canonical) {
    no_such_mailbox(c);
    return std::nullopt;
  }
  return std::move(*canonical);
}

void session::no_such_mailbox(const imap::command& c) {
  no(c, "Mailbox does not exist", "NONEXISTENT");
}

std::optional<std::string> session::mailbox_argument(const imap::command& c, const imap::value& v) {
  auto name = imap::mailbox_name(v);
  if (!name) {
    bad(c, "Invalid mailbox name");
    return std::nullopt;
  }
  if (*name == "INBOX") return name;
  // Under UTF8=ACCEPT names arrive as UTF-8; modified UTF-7 is still decoded
  // when the name is pure ASCII and decodes (RFC 6855 §3 lets servers accept both).
  const bool ascii = std::all_of(name->begin(), name->end(),
                                 [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (!ascii) {
    if (!enabled.utf8_accept) {
      no(c, "Mailbox names are modified UTF-7 unless UTF8=ACCEPT is enabled", "CANNOT");
      return std::nullopt;
    }
  } else if (name->find('&') != std::string::npos) {
    auto decoded = store::mutf7_decode(*name);
    if (!decoded) {
      if (!enabled.utf8_accept) {
        no(c, "Invalid modified UTF-7 in mailbox name", "CANNOT");
        return std::nullopt;
      }
    } else {
      *name = std::move(*decoded);
    }
  }
  // "inbox/sub" names the child of INBOX.
  if (name->size() > 6 && name->compare(0, 6, "INBOX/") != 0) {
    std::string head = name->substr(0, 6);
    for (auto& ch : head) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (head == "INBOX/") name->replace(0, 6, "INBOX/");
  }
  return name;
}

std::string session::mailbox_text(std::string_view utf8_name) const {
  std::string out;
  if (enabled.utf8_accept) {
    imap::append_string(out, utf8_name, write_options());
    return out;
  }
  auto encoded = store::mutf7_encode(utf8_name);
  imap::append_string(out, encoded ? std::string_view(*encoded) : utf8_name, write_options());
  return out;
}

void session::handle_parse_error(const imap::command_error& e) {
  const std::string detail(e.detail.empty() ? "Invalid command" : e.detail);
  if (e.action == imap::error_action::close) {
    conn.log().notice("protocol error, closing: {}", imap::to_string(e.code));
    bye(detail);
    return;
  }
  imap::command c;
  c.tag = e.tag;
  switch (e.code) {
    case imap::parse_error::literal_too_large:
    case imap::parse_error::command_too_large:
      // RFC 9051 §7.1 TOOBIG; RFC 7889 APPENDLIMIT.
      no(c, detail, "TOOBIG");
      count_error();
      break;
    case imap::parse_error::non_sync_too_large:
      bad(c, detail, "TOOBIG");
      break;
    default:
      bad(c, detail);
      break;
  }
}

awaitable<void> session::run() {
  conn.log().info("connect from [{}]:{} to {} ({})", conn.remote_address(), conn.remote_port(),
                  conn.info().listener, conn.info().protocol);
  untagged("OK [CAPABILITY " + capabilities(*this) + "] " + cfg.store.hostname +
           " hamail IMAP ready");
  while (end == ending::none) {
    auto step = parser_.feed(std::string_view(in_).substr(in_pos_));
    in_pos_ += step.consumed;
    switch (step.status) {
      case imap::parse_status::need_more:
        if (!co_await fill(net::read_mode::idle)) break;
        continue;
      case imap::parse_status::need_continuation:
        out_ += "+ Ready for literal data\r\n";
        if (!co_await fill(net::read_mode::in_command)) break;
        continue;
      case imap::parse_status::error:
        handle_parse_error(*step.error);
        continue;
      case imap::parse_status::complete:
        break;
    }
    if (end != ending::none) break;
    if (!step.cmd) continue;
    co_await dispatch(*step.cmd);
    if (parser_before_login_ && st != state::not_authenticated) parser_before_login_ = false;
  }
  if (end != ending::closed) co_await flush();
  selected.reset();
  conn.log().info("disconnect{}{}: {} error(s)", account.id.empty() ? "" : " ", account.id, errors);
}

}  // namespace hamail::backend::imap_session_detail

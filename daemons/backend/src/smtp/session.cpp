#include "smtp/session.hpp"

#include <algorithm>
#include <ctime>
#include <map>

#include "hamail/net/run_blocking.hpp"
#include "hamail/protocol/smtp/line_reader.hpp"

namespace hamail::backend::smtp_session_detail {

namespace {

constexpr std::size_t read_chunk = 64 * 1024;

smtp::command_limits command_limits_for(const backend_config& cfg, bool before_auth) {
  smtp::command_limits l;
  // RFC 5321's 512 octets grow with every parameter extension (SIZE, DSN's
  // ORCPT/NOTIFY/ENVID, AUTH=); 2048 is Postfix's line_length_limit. Before
  // AUTH on submission only EHLO, STARTTLS and AUTH make sense, and AUTH lines
  // have their own limit.
  l.max_line = before_auth ? cfg.smtp.max_line_before_auth : 2048;
  l.bare_lf = smtp::bare_lf_policy::reject;
  return l;
}

/// Printable ASCII only: HELO arguments and addresses end up in header fields.
std::string header_safe(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) out += (c >= 0x21 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace

session::session(smtp_context& c, flavour f, net::connection& cn)
    : ctx(c),
      cfg(c.config),
      conn(cn),
      kind(f),
      parser_(command_limits_for(c.config, f == flavour::submission)),
      parser_before_auth_(f == flavour::submission) {}

void session::reply(const smtp::reply& r) { r.append_wire(out_); }

awaitable<bool> session::flush() {
  if (out_.empty()) co_return true;
  std::string data;
  data.swap(out_);
  auto r = co_await conn.write(data);
  if (!r) {
    conn.log().debug("write failed: {}", r.err().describe());
    end = ending::closed;
    co_return false;
  }
  last_reply_ = std::chrono::steady_clock::now();
  co_return true;
}

void session::count_error() {
  const auto limit = before_auth() ? std::min(cfg.smtp.max_errors_before_auth, cfg.smtp.max_errors)
                                   : cfg.smtp.max_errors;
  if (++errors >= limit) {
    reply(smtp::status::too_many_errors);
    conn.log().notice("too many errors ({}), closing", errors);
    end = ending::quit;
  }
}

awaitable<bool> session::fill(net::read_mode mode) {
  // Never wait for input with replies unsent (RFC 2920 §3): a client may wait
  // for them, e.g. between pipelined RCPTs and a BDAT chunk.
  if (!co_await flush()) co_return false;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > read_chunk) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  std::chrono::steady_clock::time_point deadline;
  if (mode == net::read_mode::in_command) {
    deadline = std::chrono::steady_clock::now() + cfg.smtp.data_timeout;
  } else {
    // The whole command within the timeout: a client trickling a byte at a
    // time does not extend it.
    deadline = last_reply_ + (before_auth() ? std::min(cfg.smtp.command_timeout_before_auth,
                                                       cfg.smtp.command_timeout)
                                            : cfg.smtp.command_timeout);
    // Between the chunks of a BDAT transfer the session is still inside the
    // message: a drain lets it finish, as it lets DATA finish (docs/adr/0003),
    // and the body's rate meter keeps running. Otherwise no body is in progress.
    if (tx && tx->body) {
      mode = net::read_mode::in_command;
    } else {
      conn.end_transfer();
    }
  }
  const std::size_t old = in_.size();
  in_.resize(old + read_chunk);
  auto r =
      co_await conn.read_some(boost::asio::buffer(in_.data() + old, read_chunk), mode, deadline);
  if (!r) {
    in_.resize(old);
    switch (r.err().code) {
      case errc::timed_out:
        reply(smtp::reply(smtp::status::timeout));
        conn.log().info("timeout: {}", r.err().detail);
        end = ending::quit;
        break;
      case errc::shutting_down:
        reply(smtp::reply(smtp::status::shutting_down));
        end = ending::quit;
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

void session::consume(std::size_t n) { in_pos_ += n; }

void session::discard_input() {
  in_.clear();
  in_pos_ = 0;
}

awaitable<std::optional<std::string>> session::read_line() {
  smtp::line_limits limits;
  limits.max_line = smtp::command_limits{}.max_auth_line;
  limits.bare_lf = smtp::bare_lf_policy::reject;
  smtp::line_reader lines(limits);
  for (;;) {
    auto step = lines.feed(pending());
    consume(step.consumed);
    if (step.status == smtp::parse_status::complete) co_return std::string(step.line);
    if (step.status == smtp::parse_status::error) {
      reply(smtp::status::syntax);
      co_return std::nullopt;
    }
    if (!co_await flush()) co_return std::nullopt;
    if (!co_await fill(net::read_mode::idle)) co_return std::nullopt;
  }
}

void session::begin_body() {
  net::transfer_rate rate;
  rate.min_bytes_per_second = cfg.smtp.min_data_rate;
  rate.window = cfg.smtp.min_data_rate_window;
  rate.grace = cfg.smtp.min_data_rate_grace;
  conn.begin_transfer(rate);
}

void session::reset_transaction() {
  conn.end_transfer();
  tx.reset();
  parser_.set_utf8_transaction(false);
}

smtp::data_limits session::body_limits() const {
  smtp::data_limits l;
  l.max_message_size = cfg.smtp.max_message_size;
  l.max_line_length = cfg.smtp.max_line_length;
  l.bare_newlines = cfg.smtp.bare_newlines_normalize ? smtp::bare_newline_policy::normalize
                                                     : smtp::bare_newline_policy::reject;
  return l;
}

std::string session::next_message_id() {
  return conn.session_id() + "." + std::to_string(++messages);
}

std::string session::trace_headers(std::string_view message_id) const {
  std::string h;
  h += "Return-Path: <";
  if (tx && tx->mail.sender.kind != smtp::path_kind::null)
    h += header_safe(tx->mail.sender.box.address());
  h += ">\r\n";
  // RFC 3848 / RFC 6531 "with" keywords.
  std::string with;
  const bool utf8 = tx && tx->mail.params.smtputf8;
  if (kind == flavour::lmtp) {
    with = utf8 ? "UTF8LMTP" : "LMTP";
  } else {
    with = utf8 ? "UTF8SMTP" : (esmtp ? "ESMTP" : "SMTP");
  }
  if (conn.is_tls()) with += "S";
  if (!authenticated.empty()) with += "A";
  h += "Received: from " + header_safe(helo.empty() ? "unknown" : helo) + " ([" +
       conn.remote_address() + "])\r\n\tby " + header_safe(cfg.store.hostname) + " (hamail store " +
       cfg.store.name + ") with " + with + " id " + std::string(message_id);
  if (conn.is_tls())
    h += "\r\n\t(using " + conn.tls_protocol() + " with cipher " + conn.tls_cipher() + ")";
  if (tx && tx->recipients.size() == 1)
    h += "\r\n\tfor <" + header_safe(tx->recipients.front().address) + ">";
  h += "; " + rfc5322_date(std::time(nullptr)) + "\r\n";
  return h;
}

std::string session::dsn_summary(std::size_t i) const {
  std::string out;
  const auto add = [&out](std::string_view k, std::string_view v) {
    out += out.empty() ? "" : " ";
    out += k;
    out += '=';
    out += header_safe(v);
  };
  if (tx->mail.params.envid) add("envid", *tx->mail.params.envid);
  if (tx->mail.params.ret)
    add("ret", *tx->mail.params.ret == smtp::dsn_return::full ? "full" : "hdrs");
  const auto& r = tx->recipients[i].dsn;
  if (r.notify) {
    std::string n;
    if (r.notify->never) n = "never";
    if (r.notify->success) n += "success,";
    if (r.notify->failure) n += "failure,";
    if (r.notify->delay) n += "delay,";
    if (!n.empty() && n.back() == ',') n.pop_back();
    add("notify", n);
  }
  if (r.orcpt) add("orcpt", r.orcpt->address_type + ";" + r.orcpt->address);
  return out;
}

namespace {

/// The reply for one failed target.
smtp::reply failure_reply(const session& s, const error& e) {
  if (e.code == errc::quota_exceeded) {
    if (e.is_permanent() || s.cfg.quota.permanent)
      return smtp::reply(smtp::status::over_quota_perm);
    return smtp::reply(smtp::status::over_quota_temp);
  }
  if (e.code == errc::limit_exceeded && e.is_permanent()) return smtp::reply(smtp::status::too_big);
  if (e.is_permanent()) return smtp::reply(smtp::status::transaction_failed);
  return smtp::reply(smtp::status::local_error);
}

}  // namespace

void session::refuse_message(const smtp::reply& r) {
  const std::size_t n =
      kind == flavour::lmtp && tx ? std::max<std::size_t>(1, tx->recipients.size()) : 1;
  for (std::size_t i = 0; i < n; ++i) reply(r);
}

awaitable<void> session::deliver(body_spool& body, const smtp::data_result& verdict, bool binary) {
  const std::string id = next_message_id();
  const auto refuse = [this](const smtp::reply& r) { refuse_message(r); };
  if (verdict.status != smtp::data_status::ok) {
    conn.log().notice("message refused: {} ({} octets)", smtp::to_string(verdict.status),
                      verdict.octets);
    refuse(smtp::reply(smtp::status_for(verdict.status)));
    co_return;
  }
  if (body.saw_nul() && !binary) {
    // RFC 5322 §2.3 and RFC 6152 allow no NUL in message text; only BINARYMIME
    // content (RFC 3030) may carry them.
    conn.log().notice("message refused: NUL octets without BODY=BINARYMIME ({} octets)",
                      verdict.octets);
    refuse(smtp::reply(554, "5.6.0").add_line("Message contains NUL octets"));
    co_return;
  }
  auto sealed = co_await body.finish();
  if (!sealed) {
    conn.log().error("message {} not stored: {}", id, sealed.err().describe());
    refuse(smtp::reply(smtp::status::local_error));
    co_return;
  }
  // One target per account: an account named by two addresses gets one copy.
  std::vector<store::delivery_target> targets;
  std::vector<std::size_t> target_of(tx->recipients.size());
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < tx->recipients.size(); ++i) {
    const auto& r = tx->recipients[i];
    auto [it, fresh] = index.emplace(r.account, targets.size());
    if (fresh) {
      store::delivery_target t;
      t.account = r.account;
      t.quota = r.quota;
      targets.push_back(std::move(t));
    }
    target_of[i] = it->second;
  }
  auto commit = [this, &sealed, &targets] { return ctx.store.deliver(*sealed, targets); };
  auto results = co_await net::run_blocking(ctx.blocking, std::move(commit));

  if (kind == flavour::lmtp) {
    for (std::size_t i = 0; i < tx->recipients.size(); ++i) {
      const auto& res = results[target_of[i]];
      if (res) {
        reply(smtp::reply(smtp::status::message_accepted,
                          "<" + tx->recipients[i].address + "> delivered as " + id));
      } else {
        conn.log().warning("{}: <{}> not delivered: {}", id, tx->recipients[i].address,
                           res.err().describe());
        reply(failure_reply(*this, res.err()));
      }
    }
    for (std::size_t t = 0; t < targets.size(); ++t) {
      if (results[t])
        conn.log().info("{}: delivered to {} uid {}", id, targets[t].account, results[t]->uid);
    }
    co_return;
  }

  // SMTP has one reply for the whole message (RFC 5321 §4.2.5 and §6.1):
  //  - every target committed: 250;
  //  - some target failed temporarily: the copies already committed are
  //    withdrawn and the reply is that 4xx, so the client's retry neither loses
  //    nor duplicates anyone;
  //  - the only failures are permanent and nothing was committed: that 5xx (the
  //    client bounces, correctly, for every recipient);
  //  - the only failures are permanent and some targets got the message: 250,
  //    because a 5xx would bounce the recipients who did get it. The failed ones
  //    are logged; the store sends no DSN (it has no outbound queue).
  const error* temporary = nullptr;
  const error* permanent = nullptr;
  std::size_t committed = 0;
  for (const auto& r : results) {
    if (r) {
      ++committed;
    } else if (failure_reply(*this, r.err()).code() >= 500) {
      if (permanent == nullptr) permanent = &r.err();
    } else if (temporary == nullptr) {
      temporary = &r.err();
    }
  }
  if (temporary == nullptr && committed > 0) {
    for (std::size_t i = 0; i < tx->recipients.size(); ++i) {
      const auto& res = results[target_of[i]];
      if (res) {
        conn.log().info("{}: <{}> delivered to {} uid {} ({} octets) {}", id,
                        tx->recipients[i].address, tx->recipients[i].account, res->uid,
                        sealed->size(), dsn_summary(i));
      } else {
        conn.log().warning(
            "{}: <{}> accepted but not delivered, no DSN sent (the store generates none): {} {}",
            id, tx->recipients[i].address, res.err().describe(), dsn_summary(i));
      }
    }
    reply(smtp::reply(smtp::status::message_accepted, "Ok: queued as " + id));
    co_return;
  }
  const error* failure = temporary != nullptr ? temporary : permanent;
  for (std::size_t t = 0; t < targets.size(); ++t) {
    if (!results[t]) continue;
    const auto uid = results[t]->uid;
    const auto account = targets[t].account;
    auto withdraw = [this, account, uid]() -> result<void> {
      auto mbox = ctx.store.open_mailbox(account, "INBOX");
      if (!mbox) return std::move(mbox).err();
      const store::imap_uid uids[] = {uid};
      auto r = (*mbox)->expunge(uids);
      if (!r) return std::move(r).err();
      return ok();
    };
    auto undone = co_await net::run_blocking(ctx.blocking, std::move(withdraw));
    if (!undone) {
      conn.log().error("{}: could not withdraw uid {} of {}: {}", id, uid, account,
                       undone.err().describe());
    }
  }
  conn.log().warning("{}: not delivered: {}", id, failure->describe());
  reply(failure_reply(*this, *failure));
}

awaitable<void> session::run() {
  conn.log().info("connect from [{}]:{} to {} ({})", conn.remote_address(), conn.remote_port(),
                  conn.info().listener, conn.info().protocol);
  reply(smtp::reply(220).add_line(cfg.store.hostname +
                                  (kind == flavour::lmtp ? " LMTP" : " ESMTP") + " hamail ready"));
  while (end == ending::none) {
    auto step = parser_.feed(pending());
    consume(step.consumed);
    if (step.status == smtp::parse_status::need_more) {
      if (!co_await flush()) break;
      if (!co_await fill(net::read_mode::idle)) break;
      continue;
    }
    if (step.status == smtp::parse_status::error) {
      reply(smtp::reply_for(*step.error));
      count_error();
      continue;
    }
    co_await dispatch(*step.cmd);
    if (parser_before_auth_ && !before_auth() && parser_.buffered() == 0) {
      // AUTH succeeded; each feed stops at the end of a line, so the parser
      // holds nothing and the full limits take over from the next command.
      parser_ = smtp::command_parser(command_limits_for(cfg, false));
      parser_before_auth_ = false;
    }
  }
  if (end != ending::closed) co_await flush();
  conn.log().info("disconnect: {} message(s), {} error(s)", messages, errors);
}

}  // namespace hamail::backend::smtp_session_detail

#include "hamail/smtpd/session.hpp"

#include <algorithm>
#include <ctime>

#include "hamail/protocol/smtp/line_reader.hpp"

namespace hamail::smtpd {

namespace {

constexpr std::size_t read_chunk = 64 * 1024;

smtp::command_limits command_limits_for(const smtp_settings& cfg, bool before_auth) {
  smtp::command_limits l;
  // RFC 5321's 512 octets grow with every parameter extension (SIZE, DSN's
  // ORCPT/NOTIFY/ENVID, AUTH=); 2048 is Postfix's line_length_limit. Before
  // AUTH on submission only EHLO, STARTTLS and AUTH make sense, and AUTH lines
  // have their own limit.
  l.max_line = before_auth ? cfg.max_line_before_auth : 2048;
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

session::session(const services& sv, mail_handler& h, flavour f, net::connection& cn)
    : svc(sv),
      cfg(sv.config),
      handler(h),
      conn(cn),
      kind(f),
      trusted_proxy(std::find(sv.trusted_proxies.begin(), sv.trusted_proxies.end(),
                              cn.remote_address()) != sv.trusted_proxies.end()),
      client{.address = cn.remote_address(), .port = cn.remote_port()},
      parser_(command_limits_for(sv.config, f == flavour::submission)),
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
  const auto limit =
      before_auth() ? std::min(cfg.max_errors_before_auth, cfg.max_errors) : cfg.max_errors;
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
    deadline = std::chrono::steady_clock::now() + cfg.data_timeout;
  } else {
    // The whole command within the timeout: a client trickling a byte at a
    // time does not extend it.
    deadline = last_reply_ + (before_auth()
                                  ? std::min(cfg.command_timeout_before_auth, cfg.command_timeout)
                                  : cfg.command_timeout);
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
  rate.min_bytes_per_second = cfg.min_data_rate;
  rate.window = cfg.min_data_rate_window;
  rate.grace = cfg.min_data_rate_grace;
  conn.begin_transfer(rate);
}

void session::reset_transaction() {
  conn.end_transfer();
  if (tx) handler.reset();
  tx.reset();
  parser_.set_utf8_transaction(false);
}

smtp::data_limits session::body_limits() const {
  smtp::data_limits l;
  l.max_message_size = cfg.max_message_size;
  l.max_line_length = cfg.max_line_length;
  l.bare_newlines = cfg.bare_newlines_normalize ? smtp::bare_newline_policy::normalize
                                                : smtp::bare_newline_policy::reject;
  return l;
}

std::string session::next_message_id() {
  return conn.session_id() + "." + std::to_string(++messages);
}

std::string session::trace_headers(std::string_view message_id) const {
  std::string h;
  if (svc.final_delivery) {
    h += "Return-Path: <";
    if (tx && tx->mail.sender.kind != smtp::path_kind::null)
      h += header_safe(tx->mail.sender.box.address());
    h += ">\r\n";
  }
  // RFC 3848 / RFC 6531 "with" keywords; behind a trusted proxy, the
  // protocol its client spoke (our own TLS is then only the proxy's).
  std::string with;
  const bool utf8 = tx && tx->mail.params.smtputf8;
  if (!client.proto.empty()) {
    with = utf8 ? "UTF8SMTP" : client.proto;
  } else if (kind == flavour::lmtp) {
    with = utf8 ? "UTF8LMTP" : "LMTP";
  } else {
    with = utf8 ? "UTF8SMTP" : (esmtp ? "ESMTP" : "SMTP");
  }
  if (conn.is_tls() && client.proto.empty()) with += "S";
  if (!authenticated.empty()) with += "A";
  const std::string& from = client.helo.empty() ? helo : client.helo;
  h += "Received: from " + header_safe(from.empty() ? "unknown" : from) + " (" +
       (client.name.empty() ? "" : header_safe(client.name) + " ") + "[" + client.address +
       "])\r\n\tby " + header_safe(svc.hostname) + " (" + svc.received_as + ") with " + with +
       " id " + std::string(message_id);
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

void session::refuse_message(const smtp::reply& r) {
  const std::size_t n =
      kind == flavour::lmtp && tx ? std::max<std::size_t>(1, tx->recipients.size()) : 1;
  for (std::size_t i = 0; i < n; ++i) reply(r);
}

awaitable<std::unique_ptr<message_body>> session::open_body() {
  auto opened = co_await handler.open_body(*this);
  if (!opened) {
    conn.log().error("cannot receive a message: {}", opened.err().describe());
    reply(smtp::status::insufficient_storage);
    co_return nullptr;
  }
  (*opened)->write(trace_headers(conn.session_id()));
  co_return std::move(*opened);
}

awaitable<void> session::deliver(message_body& body, const smtp::data_result& verdict,
                                 bool binary) {
  const std::string id = next_message_id();
  if (verdict.status != smtp::data_status::ok) {
    conn.log().notice("message refused: {} ({} octets)", smtp::to_string(verdict.status),
                      verdict.octets);
    refuse_message(smtp::reply(smtp::status_for(verdict.status)));
    co_return;
  }
  if (body.saw_nul() && !binary) {
    // RFC 5322 §2.3 and RFC 6152 allow no NUL in message text; only BINARYMIME
    // content (RFC 3030) may carry them.
    conn.log().notice("message refused: NUL octets without BODY=BINARYMIME ({} octets)",
                      verdict.octets);
    refuse_message(smtp::reply(554, "5.6.0").add_line("Message contains NUL octets"));
    co_return;
  }
  co_await handler.deliver(*this, body, id);
}

awaitable<void> session::run() {
  conn.log().info("connect from [{}]:{} to {} ({})", conn.remote_address(), conn.remote_port(),
                  conn.info().listener, conn.info().protocol);
  reply(smtp::reply(220).add_line(svc.hostname + (kind == flavour::lmtp ? " LMTP" : " ESMTP") +
                                  " hamail ready"));
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

}  // namespace hamail::smtpd

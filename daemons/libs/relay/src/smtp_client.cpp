#include "hamail/relay/smtp_client.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <exception>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "body_encoder.hpp"
#include "hamail/protocol/smtp/xtext.hpp"
#include "hamail/tls/context.hpp"

namespace hamail::relay {

namespace asio = boost::asio;
using asio::awaitable;
using asio::experimental::awaitable_operators::operator||;
using clock = std::chrono::steady_clock;
using smtp::server_reply;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t min_chunk_size = 512;

error timed_out(std::string_view what, std::chrono::milliseconds limit) {
  return error::temporary(
      errc::timed_out, "timed out",
      std::string(what) + ": no answer within " + std::to_string(limit.count()) + " ms");
}

error closed_error() {
  return error::temporary(errc::connection_closed, "connection closed",
                          "the connection to the server is closed");
}

/// The error for a reply that refuses a step: 5xx permanent, anything else temporary.
error refused(std::string_view what, const server_reply& r) {
  const std::string text = std::string(what) + " refused: " + r.describe();
  return r.permanent() ? error::permanent(errc::unavailable, r.describe(), text)
                       : error::temporary(errc::unavailable, r.describe(), text);
}

server_reply make_reply(int code, std::string enhanced, std::string text) {
  server_reply r;
  r.code = code;
  r.enhanced = std::move(enhanced);
  r.lines.push_back(std::move(text));
  return r;
}

/// True when `s` holds CR, LF or NUL (which would end or corrupt a command line).
bool has_line_break(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool valid_path(std::string_view mailbox) {
  return !has_line_break(mailbox) && mailbox.find_first_of("<>") == std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

/// True when the parameter string already has `keyword=` (case-insensitive).
bool has_param(std::string_view params, std::string_view keyword) {
  while (!params.empty()) {
    const auto end = params.find(' ');
    auto word = params.substr(0, end);
    word = word.substr(0, word.find('='));
    if (iequals(word, keyword)) return true;
    if (end == std::string_view::npos) break;
    params.remove_prefix(end + 1);
  }
  return false;
}

}  // namespace

smtp::server_reply local_failure_reply(const hamail::error& e) {
  const bool lost = e.code == errc::timed_out || e.code == errc::connection_closed;
  return make_reply(
      451, lost ? "4.4.2" : "4.3.0",
      "Delivery not confirmed (" + std::string(to_string(e.code)) + "), try again later");
}

// ---------------------------------------------------------------- capabilities

bool capabilities::has(std::string_view keyword) const {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return iequals(std::string_view(l).substr(0, l.find(' ')), keyword);
  });
}

capabilities capabilities::parse(const server_reply& reply) {
  capabilities c;
  if (!reply.lines.empty()) c.greeting = reply.lines.front();
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    std::string line = reply.lines[i];
    const auto space = line.find(' ');
    const auto kw_end = space == std::string::npos ? line.size() : space;
    for (std::size_t k = 0; k < kw_end; ++k)
      line[k] = static_cast<char>(std::toupper(static_cast<unsigned char>(line[k])));
    const std::string_view kw(line.data(), kw_end);
    if (kw == "PIPELINING") c.pipelining = true;
    if (kw == "CHUNKING") c.chunking = true;
    if (kw == "8BITMIME") c.eightbitmime = true;
    if (kw == "ENHANCEDSTATUSCODES") c.enhanced_status_codes = true;
    if (kw == "STARTTLS") c.starttls = true;
    if (kw == "SMTPUTF8") c.smtputf8 = true;
    if (kw == "SIZE") {
      std::uint64_t v = 0;
      if (space != std::string::npos) {
        const auto arg = std::string_view(line).substr(space + 1);
        const auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), v);
        if (ec != std::errc() || p != arg.data() + arg.size()) v = 0;
      }
      c.size = v;
    }
    c.lines.push_back(std::move(line));
  }
  return c;
}

// ---------------------------------------------------------------- transaction

// One transaction's recipients and body: send() fills it from its envelope,
// finish() with the recipients add_recipient() saw accepted.
struct smtp_client::transaction {
  transaction(std::size_t rcpts, const body_source& b, const client_options& o, bool pipe,
              bool chunk)
      : body(b),
        results(rcpts),
        accepted(rcpts, false),
        done(rcpts, false),
        pipelining(pipe),
        chunking(chunk),
        chunk_size(std::max(o.chunk_size, min_chunk_size)),
        encoder(!chunk) {}

  const body_source& body;
  std::vector<recipient_result> results;
  std::vector<bool> accepted;  // 2xx to RCPT
  std::vector<bool> done;      // the result is final
  std::size_t accepted_count = 0;
  bool pipelining;
  bool chunking;
  std::size_t chunk_size;
  detail::body_encoder encoder;
  std::uint64_t offset = 0;       // of the raw body read so far
  std::string raw;                // read buffer
  bool first_chunk_last = false;  // the pipelined first chunk was the last

  void finish(std::size_t i, const server_reply& r) {
    results[i].reply = r;
    results[i].local_error.reset();
    done[i] = true;
  }
  void finish_pending(const server_reply& r) {
    for (std::size_t i = 0; i < done.size(); ++i)
      if (!done[i]) finish(i, r);
  }
  /// Every recipient without a final result gets the local failure.
  void lose(const error& e) {
    for (std::size_t i = 0; i < done.size(); ++i) {
      if (done[i]) continue;
      results[i].reply = local_failure_reply(e);
      results[i].local_error = e;
      done[i] = true;
    }
  }

  /// Appends the wire form of the next piece of body to `out`; true when it was the last.
  result<bool> next_chunk(std::string& out) {
    raw.resize(chunk_size);
    const std::uint64_t size = body.size();
    if (offset < size) {
      auto n = body.read_at(offset, std::span<char>(raw.data(), raw.size()));
      if (!n) return std::move(n).err();
      if (*n == 0)
        return error::temporary(errc::io_error, "cannot read the message",
                                "body source ended before its size");
      offset += *n;
      encoder.encode(std::string_view(raw.data(), *n), out);
    }
    if (offset < size) return false;
    encoder.finish(out);
    return true;
  }
};

// ---------------------------------------------------------------- life cycle

smtp_client::smtp_client(std::unique_ptr<net::byte_stream> stream, client_options options)
    : stream_(std::move(stream)), options_(std::move(options)), parser_(options_.reply_limits) {}

smtp_client::~smtp_client() { close(); }

void smtp_client::close() {
  if (stream_) {
    stream_->close();
    stream_.reset();
  }
  in_.clear();
  parser_.reset();
  transaction_open_ = false;
  // step_open_ and step_accepted_ survive: finish() still owes the accepted
  // recipients their (temporary) results.
}

error smtp_client::fail(error e) {
  close();
  return e;
}

awaitable<result<std::unique_ptr<smtp_client>>> smtp_client::connect(
    asio::any_io_executor executor, asio::ip::tcp::endpoint endpoint, client_options options) {
  asio::ip::tcp::socket socket(executor);
  asio::steady_timer timer(executor, options.connect_timeout);
  auto outcome =
      co_await (socket.async_connect(endpoint, use_tuple) || timer.async_wait(use_tuple));
  const std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  if (outcome.index() == 1) co_return timed_out("connect to " + where, options.connect_timeout);
  if (auto [ec] = std::get<0>(outcome); ec) {
    co_return error::temporary(errc::unavailable, "cannot reach the server",
                               "connect to " + where + ": " + ec.message());
  }
  boost::system::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);  // pipelined batches go out at once
  co_return co_await start(std::make_unique<net::tcp_stream>(std::move(socket)),
                           std::move(options));
}

awaitable<result<std::unique_ptr<smtp_client>>> smtp_client::start(
    std::unique_ptr<net::byte_stream> stream, client_options options) {
  std::unique_ptr<smtp_client> client(new smtp_client(std::move(stream), std::move(options)));
  if (auto g = co_await client->read_greeting(); !g) co_return std::move(g).err();
  co_return std::move(client);
}

awaitable<result<void>> smtp_client::read_greeting() {
  auto r = co_await read_reply(options_.greeting_timeout);
  if (!r) co_return std::move(r).err();
  if (r->code != 220) co_return fail(refused("greeting", *r));
  co_return ok();
}

// ---------------------------------------------------------------- I/O

awaitable<result<void>> smtp_client::write(std::string_view data, std::chrono::milliseconds limit) {
  if (!stream_) co_return closed_error();
  asio::steady_timer timer(stream_->get_executor(), limit);
  auto outcome = co_await (stream_->async_write(asio::buffer(data)) || timer.async_wait(use_tuple));
  if (outcome.index() == 1) co_return fail(timed_out("write", limit));
  auto r = std::get<0>(std::move(outcome));
  if (!r) co_return fail(std::move(r).err());
  co_return ok();
}

awaitable<result<server_reply>> smtp_client::read_reply(std::chrono::milliseconds limit) {
  const auto deadline = clock::now() + limit;
  char chunk[4096];
  for (;;) {
    std::string_view view = in_;
    while (!view.empty()) {
      auto step = parser_.feed(view);
      view.remove_prefix(step.consumed);
      if (step.status == smtp::parse_status::complete) {
        in_.erase(0, in_.size() - view.size());
        server_reply reply = std::move(*step.reply);
        // 421: the server is closing the connection; nothing more will come.
        if (reply.code == 421) close();
        co_return reply;
      }
      if (step.status == smtp::parse_status::error) {
        co_return fail(
            error::temporary(errc::invalid_input, "bad reply from the server",
                             "unreadable reply: " + std::string(smtp::to_string(step.error))));
      }
    }
    in_.clear();
    if (!stream_) co_return closed_error();
    const auto now = clock::now();
    if (now >= deadline) co_return fail(timed_out("reply", limit));
    asio::steady_timer timer(stream_->get_executor(), deadline - now);
    auto outcome =
        co_await (stream_->async_read_some(asio::buffer(chunk)) || timer.async_wait(use_tuple));
    if (outcome.index() == 1) co_return fail(timed_out("reply", limit));
    auto n = std::get<0>(std::move(outcome));
    if (!n) co_return fail(std::move(n).err());
    in_.append(chunk, *n);
  }
}

awaitable<result<server_reply>> smtp_client::command(std::string_view line,
                                                     std::chrono::milliseconds limit) {
  if (auto w = co_await write(line, limit); !w) co_return std::move(w).err();
  co_return co_await read_reply(limit);
}

// ---------------------------------------------------------------- hello, TLS

awaitable<result<capabilities>> smtp_client::say_hello(std::string_view name) {
  const std::string line = std::string(options_.mode == protocol_mode::lmtp ? "LHLO " : "EHLO ") +
                           std::string(name) + "\r\n";
  auto r = co_await command(line, options_.command_timeout);
  if (!r) co_return std::move(r).err();
  if (r->code != 250)
    co_return fail(refused(options_.mode == protocol_mode::lmtp ? "LHLO" : "EHLO", *r));
  co_return capabilities::parse(*r);
}

awaitable<result<capabilities>> smtp_client::hello(std::string_view name) {
  auto caps = co_await hello_and_tls(name);
  if (!caps || options_.xclient.empty()) co_return caps;
  // The attribute names the server takes: its XCLIENT keyword's parameters.
  std::vector<std::string> offered;
  for (const auto& l : caps_.lines) {
    if (l.rfind("XCLIENT", 0) != 0 || (l.size() > 7 && l[7] != ' ')) continue;
    std::string_view rest = std::string_view(l).substr(std::min<std::size_t>(l.size(), 8));
    while (!rest.empty()) {
      const auto sp = rest.find(' ');
      if (sp != 0) offered.emplace_back(rest.substr(0, sp));
      if (sp == std::string_view::npos) break;
      rest.remove_prefix(sp + 1);
    }
  }
  std::string line = "XCLIENT";
  for (const auto& a : options_.xclient) {
    const std::string& attr = a.first;
    const bool listed = std::any_of(offered.begin(), offered.end(),
                                    [&](const std::string& o) { return iequals(o, attr); });
    if (!listed || attr.empty() || has_line_break(attr) ||
        attr.find_first_of(" =") != std::string::npos)
      continue;
    std::string encoded = smtp::encode_xtext(a.second);
    if (encoded.size() > 255) encoded = "[UNAVAILABLE]";
    line += " " + attr + "=" + encoded;
  }
  if (line.size() == 7) co_return caps;  // no XCLIENT offered, or none of our attributes
  line += "\r\n";
  auto r = co_await command(line, options_.command_timeout);
  if (!r) co_return std::move(r).err();
  if (r->code != 220) {
    // Temporary even for a 5xx: the configuration of trust is wrong, not the mail.
    co_return fail(
        error::temporary(errc::unavailable, r->describe(), "XCLIENT refused: " + r->describe()));
  }
  client_named_ = true;
  // Postfix semantics: a new session greeting; hello again.
  caps_ = {};
  caps = co_await say_hello(name);
  if (caps) caps_ = *caps;
  co_return caps;
}

awaitable<result<capabilities>> smtp_client::hello_and_tls(std::string_view name) {
  if (!stream_) co_return closed_error();
  if (name.empty() || has_line_break(name) || name.find(' ') != std::string_view::npos)
    co_return fail(error::permanent(errc::config_error, "bad hello name",
                                    "the LHLO/EHLO name must be one word"));
  auto caps = co_await say_hello(name);
  if (!caps) co_return caps;
  caps_ = *caps;
  if (options_.starttls == starttls_policy::never || stream_->is_tls()) co_return caps;

  const bool required = options_.starttls == starttls_policy::required;
  if (!caps_.starttls || !options_.tls_context) {
    if (!required) co_return caps;
    co_return fail(error::temporary(
        errc::tls_error, "TLS not available",
        caps_.starttls ? "no client TLS context configured" : "server does not offer STARTTLS"));
  }
  auto upgraded = co_await start_tls();
  if (!upgraded) co_return std::move(upgraded).err();
  if (!*upgraded) co_return caps;  // refused, opportunistic: stay in plaintext
  // RFC 3207 §4.2: forget what was learnt before TLS and ask again.
  caps_ = {};
  caps = co_await say_hello(name);
  if (caps) caps_ = *caps;
  co_return caps;
}

awaitable<result<bool>> smtp_client::start_tls() {
  const bool required = options_.starttls == starttls_policy::required;
  auto r = co_await command("STARTTLS\r\n", options_.command_timeout);
  if (!r) co_return std::move(r).err();
  if (r->code != 220) {
    if (!required && stream_) co_return false;
    co_return fail(refused("STARTTLS", *r));
  }
  // Octets after the 220 were sent in plaintext before TLS: a man in the
  // middle injecting replies (the client side of CVE-2011-0411).
  if (!in_.empty() || parser_.in_reply())
    co_return fail(error::temporary(errc::tls_error, "TLS failed",
                                    "server sent data after the STARTTLS reply"));
  auto* tcp = dynamic_cast<net::tcp_stream*>(stream_.get());
  if (tcp == nullptr)
    co_return fail(
        error::temporary(errc::tls_error, "TLS failed", "this stream cannot be upgraded to TLS"));
  auto socket = tcp->release();
  stream_.reset();
  std::unique_ptr<net::tls_stream> tls;
  try {
    tls = std::make_unique<net::tls_stream>(std::move(socket), options_.tls_context,
                                            net::tls_stream::role::client);
  } catch (const std::exception& e) {
    co_return fail(error::temporary(errc::tls_error, "TLS failed", e.what()));
  }
  if (!options_.tls_host.empty()) {
    if (auto p = tls::prepare_client(tls->native_handle(), options_.tls_host); !p)
      co_return fail(std::move(p).err());
  }
  asio::steady_timer timer(tls->get_executor(), options_.greeting_timeout);
  auto outcome = co_await (tls->async_handshake() || timer.async_wait(use_tuple));
  if (outcome.index() == 1) {
    tls->close();
    co_return fail(timed_out("TLS handshake", options_.greeting_timeout));
  }
  if (auto h = std::get<0>(std::move(outcome)); !h) {
    tls->close();
    co_return fail(std::move(h).err());
  }
  stream_ = std::move(tls);
  parser_.reset();
  co_return true;
}

// ---------------------------------------------------------------- simple commands

awaitable<result<void>> smtp_client::reset() {
  if (!stream_) co_return closed_error();
  auto r = co_await command("RSET\r\n", options_.command_timeout);
  if (!r) co_return std::move(r).err();
  if (!r->positive()) co_return fail(refused("RSET", *r));
  transaction_open_ = false;
  end_steps();
  co_return ok();
}

awaitable<result<void>> smtp_client::noop() {
  if (!stream_) co_return closed_error();
  auto r = co_await command("NOOP\r\n", options_.command_timeout);
  if (!r) co_return std::move(r).err();
  if (!r->positive()) co_return fail(refused("NOOP", *r));
  co_return ok();
}

awaitable<result<void>> smtp_client::quit() {
  if (!stream_) co_return ok();
  auto r = co_await command("QUIT\r\n", options_.command_timeout);
  close();
  if (!r) co_return std::move(r).err();
  co_return ok();
}

// ---------------------------------------------------------------- transactions

awaitable<std::vector<recipient_result>> smtp_client::send(const envelope& env,
                                                           const body_source& body) {
  transaction tx(env.rcpts.size(), body, options_, options_.use_pipelining && caps_.pipelining,
                 options_.use_chunking && caps_.chunking);
  end_steps();  // a stepwise transaction left open is abandoned (RSET below)
  if (env.rcpts.empty()) co_return std::move(tx.results);
  if (!stream_) {
    tx.lose(closed_error());
    co_return std::move(tx.results);
  }
  bool valid = valid_path(env.from) && !has_line_break(env.mail_params);
  for (const auto& r : env.rcpts)
    valid = valid && !r.address.empty() && valid_path(r.address) && !has_line_break(r.params);
  if (!valid) {
    tx.finish_pending(make_reply(501, "5.5.4", "Invalid envelope (not sent)"));
    co_return std::move(tx.results);
  }
  if (caps_.size && *caps_.size > 0 && body.size() > *caps_.size) {
    tx.finish_pending(make_reply(552, "5.3.4", "Message size exceeds the server's limit"));
    co_return std::move(tx.results);
  }
  if (transaction_open_) {
    if (auto r = co_await reset(); !r) {
      tx.lose(r.err());
      co_return std::move(tx.results);
    }
  }
  co_await run_transaction(env, tx);
  co_return std::move(tx.results);
}

awaitable<void> smtp_client::run_transaction(const envelope& env, transaction& tx) {
  std::string mail = "MAIL FROM:<" + env.from + ">";
  if (caps_.size && !has_param(env.mail_params, "SIZE"))
    mail += " SIZE=" + std::to_string(tx.body.size());
  if (!env.mail_params.empty()) mail += " " + env.mail_params;
  mail += "\r\n";
  std::vector<std::string> rcpts;
  for (const auto& r : env.rcpts)
    rcpts.push_back("RCPT TO:<" + r.address + ">" + (r.params.empty() ? "" : " " + r.params) +
                    "\r\n");
  const auto cmd_timeout = options_.command_timeout;

  if (tx.pipelining) {
    // RFC 2920: the whole envelope and the data command in one write; with
    // CHUNKING the first chunk too, so a small message takes one round trip.
    std::string batch = mail;
    for (const auto& r : rcpts) batch += r;
    if (tx.chunking) {
      std::string data;
      auto last = tx.next_chunk(data);
      if (!last) {
        tx.lose(last.err());
        co_return;
      }
      batch += "BDAT " + std::to_string(data.size()) + (*last ? " LAST" : "") + "\r\n";
      batch += data;
      tx.first_chunk_last = *last;
    } else {
      batch += "DATA\r\n";
    }
    if (auto w = co_await write(batch, tx.chunking ? options_.data_timeout : cmd_timeout); !w) {
      tx.lose(w.err());
      co_return;
    }
    auto m = co_await read_reply(cmd_timeout);
    if (!m) {
      tx.lose(m.err());
      co_return;
    }
    const bool mail_ok = m->positive();
    if (mail_ok) {
      transaction_open_ = true;
    } else {
      tx.finish_pending(*m);
    }
    for (std::size_t i = 0; i < rcpts.size(); ++i) {
      auto r = co_await read_reply(cmd_timeout);
      if (!r) {
        tx.lose(r.err());
        co_return;
      }
      if (!mail_ok) continue;  // 503s to RCPT after a refused MAIL
      if (r->positive()) {
        tx.accepted[i] = true;
        ++tx.accepted_count;
      } else {
        tx.finish(i, *r);
      }
    }
  } else {
    auto m = co_await command(mail, cmd_timeout);
    if (!m) {
      tx.lose(m.err());
      co_return;
    }
    if (!m->positive()) {
      tx.finish_pending(*m);
      co_return;
    }
    transaction_open_ = true;
    for (std::size_t i = 0; i < rcpts.size(); ++i) {
      auto r = co_await command(rcpts[i], cmd_timeout);
      if (!r) {
        tx.lose(r.err());
        co_return;
      }
      if (r->positive()) {
        tx.accepted[i] = true;
        ++tx.accepted_count;
      } else {
        tx.finish(i, *r);
      }
    }
    if (tx.accepted_count == 0) co_return;  // nothing to send; RSET before the next one
  }
  co_await send_body(tx);
}

awaitable<void> smtp_client::send_body(transaction& tx) {
  if (tx.chunking) {
    co_await send_with_bdat(tx);
  } else {
    co_await send_with_data(tx);
  }
}

awaitable<void> smtp_client::send_with_data(transaction& tx) {
  // (Not a conditional expression: GCC 12 miscompiles co_await inside ?:.)
  result<server_reply> d = closed_error();
  if (tx.pipelining) {
    d = co_await read_reply(options_.command_timeout);
  } else {
    d = co_await command("DATA\r\n", options_.command_timeout);
  }
  if (!d) {
    tx.lose(d.err());
    co_return;
  }
  if (d->code != 354) {
    tx.finish_pending(*d);
    co_return;
  }
  if (tx.accepted_count == 0) {
    // A server that takes DATA without a recipient (RFC 2920 says it must
    // not): end the empty message at once; its refusal changes nothing.
    if (co_await write(".\r\n", options_.command_timeout))
      (void)co_await read_reply(options_.command_timeout);
    co_return;
  }
  // The body, a piece at a time; a failure before the final "." leaves the
  // message unfinished, so the server cannot deliver a truncated one.
  for (;;) {
    std::string wire;
    auto last = tx.next_chunk(wire);
    if (!last) {
      close();
      tx.lose(last.err());
      co_return;
    }
    if (auto w = co_await write(wire, options_.data_timeout); !w) {
      tx.lose(w.err());
      co_return;
    }
    if (*last) break;
  }
  co_await read_final_replies(tx);
}

awaitable<void> smtp_client::send_with_bdat(transaction& tx) {
  bool last = tx.first_chunk_last;
  if (!tx.pipelining) {
    std::string data;
    auto l = tx.next_chunk(data);
    if (!l) {
      tx.lose(l.err());
      co_return;
    }
    last = *l;
    const std::string head = "BDAT " + std::to_string(data.size()) + (last ? " LAST" : "") + "\r\n";
    if (auto w = co_await write(head + data, options_.data_timeout); !w) {
      tx.lose(w.err());
      co_return;
    }
  }
  for (;;) {
    if (last && tx.accepted_count > 0) {
      co_await read_final_replies(tx);
      co_return;
    }
    auto r = co_await read_reply(options_.data_timeout);
    if (!r) {
      tx.lose(r.err());
      co_return;
    }
    if (tx.accepted_count == 0) co_return;  // the refusal of a chunk with no recipient
    if (!r->positive()) {
      tx.finish_pending(*r);
      co_return;
    }
    std::string data;
    auto l = tx.next_chunk(data);
    if (!l) {
      // The server holds part of the message; closing abandons it.
      close();
      tx.lose(l.err());
      co_return;
    }
    last = *l;
    const std::string head = "BDAT " + std::to_string(data.size()) + (last ? " LAST" : "") + "\r\n";
    if (auto w = co_await write(head + data, options_.data_timeout); !w) {
      tx.lose(w.err());
      co_return;
    }
  }
}

awaitable<void> smtp_client::read_final_replies(transaction& tx) {
  if (options_.mode == protocol_mode::lmtp) {
    // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
    for (std::size_t i = 0; i < tx.accepted.size(); ++i) {
      if (!tx.accepted[i] || tx.done[i]) continue;
      auto r = co_await read_reply(options_.data_timeout);
      if (!r) {
        tx.lose(r.err());
        co_return;
      }
      tx.finish(i, *r);
    }
  } else {
    auto r = co_await read_reply(options_.data_timeout);
    if (!r) {
      tx.lose(r.err());
      co_return;
    }
    tx.finish_pending(*r);
  }
  transaction_open_ = false;
}

// ---------------------------------------------------------------- stepwise transactions

void smtp_client::end_steps() noexcept {
  step_open_ = false;
  step_accepted_ = 0;
}

awaitable<result<server_reply>> smtp_client::begin(std::string_view from,
                                                   std::string_view mail_params,
                                                   std::optional<std::uint64_t> size) {
  end_steps();
  if (!stream_) co_return closed_error();
  if (!valid_path(from) || has_line_break(mail_params))
    co_return make_reply(501, "5.5.4", "Invalid sender or parameters (not sent)");
  if (size && caps_.size && *caps_.size > 0 && *size > *caps_.size)
    co_return make_reply(552, "5.3.4", "Message size exceeds the server's limit");
  if (transaction_open_) {
    if (auto r = co_await reset(); !r) co_return std::move(r).err();
  }
  std::string mail = "MAIL FROM:<" + std::string(from) + ">";
  if (size && caps_.size && !has_param(mail_params, "SIZE"))
    mail += " SIZE=" + std::to_string(*size);
  if (!mail_params.empty()) mail += " " + std::string(mail_params);
  mail += "\r\n";
  auto m = co_await command(mail, options_.command_timeout);
  if (!m) co_return std::move(m).err();
  if (m->positive()) {
    transaction_open_ = true;
    step_open_ = true;
  }
  co_return m;
}

awaitable<result<server_reply>> smtp_client::add_recipient(const recipient& r) {
  if (!stream_) co_return closed_error();
  if (!step_open_) co_return make_reply(503, "5.5.1", "No transaction open (not sent)");
  if (r.address.empty() || !valid_path(r.address) || has_line_break(r.params))
    co_return make_reply(501, "5.5.4", "Invalid recipient (not sent)");
  const std::string line =
      "RCPT TO:<" + r.address + ">" + (r.params.empty() ? "" : " " + r.params) + "\r\n";
  auto reply = co_await command(line, options_.command_timeout);
  if (!reply) co_return std::move(reply).err();
  if (reply->positive()) ++step_accepted_;
  co_return reply;
}

awaitable<std::vector<recipient_result>> smtp_client::finish(const body_source& body) {
  const std::size_t accepted = step_open_ ? step_accepted_ : 0;
  end_steps();
  // No pipelining: the envelope is already answered, the data command goes alone.
  transaction tx(accepted, body, options_, false, options_.use_chunking && caps_.chunking);
  if (accepted == 0) co_return std::move(tx.results);  // nothing sent; RSET before the next one
  std::fill(tx.accepted.begin(), tx.accepted.end(), true);
  tx.accepted_count = accepted;
  if (!stream_) {
    tx.lose(closed_error());
    co_return std::move(tx.results);
  }
  if (caps_.size && *caps_.size > 0 && body.size() > *caps_.size) {
    // Larger than begin() declared; the open transaction is RSET before the next one.
    tx.finish_pending(make_reply(552, "5.3.4", "Message size exceeds the server's limit"));
    co_return std::move(tx.results);
  }
  co_await send_body(tx);
  co_return std::move(tx.results);
}

}  // namespace hamail::relay

// BDAT (RFC 3030 CHUNKING): exactly the announced octets follow the command
// line, whatever state the transaction is in; they are always read, so a
// refused chunk never desynchronises the session.

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

/// Reads `size` octets, handing each piece to `take` and, when `body` says so,
/// letting it write what it holds before reading on. False when the session ended.
template <class F>
awaitable<bool> read_chunk(session& s, std::uint64_t size, F take, message_body* body = nullptr) {
  while (size > 0) {
    if (s.pending().empty()) {
      if (!co_await s.fill(net::read_mode::in_command)) co_return false;
    }
    const auto piece = s.pending().substr(
        0, static_cast<std::size_t>(std::min<std::uint64_t>(size, s.pending().size())));
    take(piece);
    s.consume(piece.size());
    size -= piece.size();
    if (body != nullptr && body->needs_flush()) co_await body->flush();
  }
  co_return true;
}

}  // namespace

awaitable<void> cmd_bdat(session& s, const smtp::bdat_command& c) {
  // Every chunk's octets are metered, refused ones too; a transfer in progress keeps its meter.
  if (!s.tx || !s.tx->body) s.begin_body();
  const char* refusal = nullptr;
  if (!s.tx) {
    refusal = "Need MAIL before BDAT";
  } else if (s.tx->recipients.empty()) {
    refusal = "";
  } else if (s.tx->bdat_failed) {
    refusal = "Earlier BDAT failed; send RSET";
  }
  if (refusal != nullptr) {
    if (!co_await read_chunk(s, c.size, [](std::string_view) {})) co_return;
    if (*refusal == '\0') {
      s.reply(smtp::status::no_valid_recipients);
    } else if (c.last) {
      // The end of the message: LMTP owes each accepted recipient its reply.
      s.refuse_message(smtp::reply(smtp::status::bad_sequence, refusal));
    } else {
      s.reply(smtp::reply(smtp::status::bad_sequence, refusal));
    }
    if (s.tx) s.tx->bdat_failed = true;
    co_return;
  }

  auto& tx = *s.tx;
  if (!tx.body) {
    auto opened = co_await s.handler.open_body(s);
    if (!opened) {
      s.conn.log().error("cannot receive a message: {}", opened.err().describe());
      if (!co_await read_chunk(s, c.size, [](std::string_view) {})) co_return;
      if (c.last) {
        s.refuse_message(smtp::reply(smtp::status::insufficient_storage));
      } else {
        s.reply(smtp::status::insufficient_storage);
      }
      tx.bdat_failed = true;
      co_return;
    }
    tx.body = std::move(*opened);
    tx.bdat.emplace(s.body_limits(), tx.mail.params.body == smtp::body_type::binary_mime);
    tx.body->write(s.trace_headers(s.conn.session_id()));
  }

  message_body& sink = *tx.body;
  if (!co_await read_chunk(
          s, c.size, [&](std::string_view piece) { tx.bdat->feed(piece, sink); }, tx.body.get()))
    co_return;

  if (!c.last) {
    const auto so_far = tx.bdat->result();
    if (so_far.over_size) {
      // Refuse as soon as the limit is crossed; the rest of the message is refused too.
      s.reply(smtp::status::too_big);
      tx.body.reset();
      tx.bdat_failed = true;
      co_return;
    }
    s.reply(smtp::reply(smtp::status::chunk_accepted, std::to_string(c.size) + " octets received"));
    co_return;
  }
  const auto verdict = tx.bdat->finish(sink);
  auto body = std::move(tx.body);
  co_await s.deliver(*body, verdict, tx.mail.params.body == smtp::body_type::binary_mime);
  s.reset_transaction();
}

}  // namespace hamail::smtpd

// DATA (RFC 5321 §4.1.1.4): the body streams from the socket through the
// dot-unstuffing, smuggling-safe reader straight into the store's temporary
// file through the I/O pool (body_spool); nothing is buffered whole.

#include "smtp/session.hpp"

namespace hamail::backend::smtp_session_detail {

awaitable<void> cmd_data(session& s, const smtp::data_command&) {
  if (!s.tx) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "Need MAIL before DATA"));
    co_return;
  }
  if (s.tx->body || s.tx->bdat_failed) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "DATA after BDAT"));
    co_return;
  }
  if (s.tx->recipients.empty()) {
    s.reply(smtp::status::no_valid_recipients);
    co_return;
  }
  if (s.tx->mail.params.body == smtp::body_type::binary_mime) {
    // RFC 3030 §3: BINARYMIME content is sent with BDAT only.
    s.reply(smtp::reply(smtp::status::bad_sequence, "BODY=BINARYMIME requires BDAT"));
    co_return;
  }
  auto body = std::make_unique<body_spool>(s.ctx.blocking);
  if (auto opened = co_await body->open(s.ctx.store); !opened) {
    s.conn.log().error("cannot receive a message: {}", opened.err().describe());
    s.reply(smtp::status::insufficient_storage);
    co_return;
  }
  body->write(s.trace_headers(s.conn.session_id()));

  s.reply(smtp::status::start_data);
  if (!co_await s.flush()) co_return;
  s.begin_body();

  smtp::data_reader reader(s.body_limits());
  for (;;) {
    auto step = reader.feed(s.pending(), *body);
    s.consume(step.consumed);
    if (step.complete) break;
    // File writes go to the I/O pool; no more is read until they are done.
    if (body->needs_flush()) co_await body->flush();
    // Inside the body a drain does not interrupt; the data timeout and the
    // minimum rate do.
    if (!co_await s.fill(net::read_mode::in_command)) co_return;  // the unfinished file is removed
  }
  co_await s.deliver(*body, reader.result());
  s.reset_transaction();
}

}  // namespace hamail::backend::smtp_session_detail

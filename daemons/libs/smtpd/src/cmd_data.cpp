// DATA (RFC 5321 §4.1.1.4): the body streams from the socket through the
// dot-unstuffing, smuggling-safe reader straight into the handler's sink (the
// store's temporary file, the proxy's spool); nothing is buffered whole.

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

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
  auto body = co_await s.open_body();
  if (!body) co_return;

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

}  // namespace hamail::smtpd

// DATA (RFC 5321 §4.1.1.4): the body streams from the socket through the
// dot-unstuffing, smuggling-safe reader straight into the store's temporary
// file; nothing is buffered whole.

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
  auto incoming = s.ctx.store.begin_delivery();
  if (!incoming) {
    s.conn.log().error("cannot receive a message: {}", incoming.err().describe());
    s.reply(smtp::status::insufficient_storage);
    co_return;
  }
  const std::string headers = s.trace_headers(s.conn.session_id());
  std::optional<error> write_error;
  if (auto r = incoming->write(std::string_view(headers)); !r) write_error = std::move(r).err();

  s.reply(smtp::status::start_data);
  if (!co_await s.flush()) co_return;
  s.begin_body();

  smtp::data_reader reader(s.body_limits());
  store_sink sink(*incoming, write_error);
  for (;;) {
    auto step = reader.feed(s.pending(), sink);
    s.consume(step.consumed);
    if (step.complete) break;
    // Inside the body a drain does not interrupt; the data timeout and the
    // minimum rate do.
    if (!co_await s.fill(net::read_mode::in_command)) co_return;  // the unfinished file is removed
  }
  s.tx->body_error = std::move(write_error);
  co_await s.deliver(std::move(*incoming), reader.result());
  s.reset_transaction();
}

}  // namespace hamail::backend::smtp_session_detail

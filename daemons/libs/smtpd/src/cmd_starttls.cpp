// STARTTLS (RFC 3207).

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

awaitable<void> cmd_starttls(session& s, const smtp::starttls_command&) {
  if (s.conn.is_tls()) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "TLS already active"));
    co_return;
  }
  auto ctx = s.conn.tls_context();
  if (!ctx) {
    s.reply(smtp::status::tls_not_available);
    co_return;
  }
  s.reply(smtp::status::ready_for_tls);
  if (!co_await s.flush()) co_return;
  // Whatever the client pipelined after STARTTLS arrived in plain text and must
  // never be taken as sent under TLS (CVE-2011-0411).
  if (!s.pending().empty()) {
    s.conn.log().notice("discarding {} octets pipelined after STARTTLS", s.pending().size());
  }
  s.discard_input();
  s.parser().reset();
  auto r = co_await s.conn.start_tls(std::move(ctx));
  if (!r) {
    s.conn.log().info("TLS handshake failed: {}", r.err().describe());
    s.end = ending::closed;
    co_return;
  }
  s.conn.log().info("TLS established: {} {}", s.conn.tls_protocol(), s.conn.tls_cipher());
  // RFC 3207 §4.2: forget everything learnt from the client before TLS.
  s.reset_transaction();
  s.helo.clear();
  s.esmtp = false;
  s.authenticated.clear();
}

}  // namespace hamail::smtpd

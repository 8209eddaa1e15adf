#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_starttls(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, "STARTTLS takes no arguments");
    co_return;
  }
  if (s.conn.is_tls()) {
    s.bad(c, "TLS is already active");
    co_return;
  }
  auto tls = s.conn.tls_context();
  if (!tls) {
    s.no(c, "TLS is not available");
    co_return;
  }
  s.ok(c, "Begin TLS negotiation now");
  if (!co_await s.flush()) co_return;
  // Whatever the client pipelined after STARTTLS was sent in the clear and is
  // never taken as sent over TLS (CVE-2011-0411).
  s.discard_input();
  auto r = co_await s.conn.start_tls(tls);
  if (!r) {
    s.conn.log().notice("STARTTLS failed: {}", r.err().describe());
    s.end = ending::closed;
    co_return;
  }
  s.conn.log().info("STARTTLS: {} {}", s.conn.tls_protocol(), s.conn.tls_cipher());
}

}  // namespace hamail::backend::imap_session_detail

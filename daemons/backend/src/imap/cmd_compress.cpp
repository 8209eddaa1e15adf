// COMPRESS DEFLATE (RFC 4978): from the tagged OK on, both directions are raw
// deflate, over TLS when TLS is active.

#include "hamail/core/ascii.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

// Declared in session.hpp; defined here, its only user, beside the command.
std::string session::take_input() {
  std::string rest = in_.substr(in_pos_);
  in_.clear();
  in_pos_ = 0;
  return rest;
}

awaitable<void> cmd_compress(session& s, const imap::command& c) {
  if (c.args.size() != 1 || c.args[0].kind != imap::value_kind::atom) {
    s.bad(c, "COMPRESS takes one mechanism name");
    co_return;
  }
  if (ascii_upper_copy(c.args[0].text) != "DEFLATE") {
    s.bad(c, "Unknown compression mechanism");
    co_return;
  }
  if (s.conn.is_compressed()) {
    s.no(c, "DEFLATE is active already", "COMPRESSIONACTIVE");
    co_return;
  }
  s.ok(c, "DEFLATE active");
  if (!co_await s.flush()) co_return;
  // The parser stopped right after this command's line, so whatever follows
  // in the input buffer came from a client that did not wait for the OK: it
  // compressed it already, and it goes through the inflater first.
  auto r = s.conn.start_compress(s.take_input());
  if (!r) {
    s.conn.log().notice("COMPRESS failed: {}", r.err().describe());
    s.end = ending::closed;
    co_return;
  }
  if (s.conn.is_tls()) {
    s.conn.log().info("COMPRESS DEFLATE over {} {}", s.conn.tls_protocol(), s.conn.tls_cipher());
  } else {
    s.conn.log().info("COMPRESS DEFLATE");
  }
}

}  // namespace hamail::backend::imap_session_detail

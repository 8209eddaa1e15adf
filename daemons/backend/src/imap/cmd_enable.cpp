// ENABLE (RFC 5161) of CONDSTORE, QRESYNC (RFC 7162), IMAP4rev2 (RFC 9051)
// and UTF8=ACCEPT (RFC 6855). Unknown names are ignored, as RFC 5161 wants.

#include "hamail/core/ascii.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_enable(session& s, const imap::command& c) {
  if (c.args.empty()) {
    s.bad(c, "ENABLE needs at least one capability");
    co_return;
  }
  std::string enabled;
  for (const auto& a : c.args) {
    if (a.kind != imap::value_kind::atom) {
      s.bad(c, "ENABLE takes capability names");
      co_return;
    }
    const auto name = ascii_upper_copy(a.text);
    bool* flag = nullptr;
    if (name == "CONDSTORE") {
      flag = &s.enabled.condstore;
    } else if (name == "QRESYNC") {
      flag = &s.enabled.qresync;
    } else if (name == "IMAP4REV2") {
      flag = &s.enabled.imap4rev2;
    } else if (name == "UTF8=ACCEPT") {
      flag = &s.enabled.utf8_accept;
    }
    if (!flag || *flag) continue;
    *flag = true;
    if (name == "QRESYNC") s.enabled.condstore = true;  // RFC 7162 §3.2.3
    if (name == "UTF8=ACCEPT") s.parser().set_utf8_accept(true);
    enabled += " " + std::string(a.text);
  }
  s.untagged("ENABLED" + enabled);
  s.ok(c, "ENABLE completed");
}

}  // namespace hamail::backend::imap_session_detail

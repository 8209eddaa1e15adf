// NAMESPACE (RFC 2342, RFC 9051 §6.3.10): one personal namespace with the
// empty prefix and '/' as delimiter; no other users' or shared namespaces.

#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_namespace(session& s, const imap::command& c) {
  if (!c.args.empty()) {
    s.bad(c, "NAMESPACE takes no arguments");
    co_return;
  }
  s.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
  s.ok(c, "NAMESPACE completed");
  co_return;
}

}  // namespace hamail::backend::imap_session_detail

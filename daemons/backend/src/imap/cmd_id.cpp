// ID (RFC 2971). From a trusted proxy (hamail-proxy) the client's address and
// the proxy's session id are taken from x-originating-ip, x-originating-port
// and x-session-id.

#include <boost/asio/ip/address.hpp>

#include "hamail/core/ascii.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_id(session& s, const imap::command& c) {
  if (c.args.size() != 1) {
    s.bad(c, "ID takes one argument: a list or NIL");
    co_return;
  }
  const auto& a = c.args[0];
  if (a.kind == imap::value_kind::list) {
    // RFC 2971 §3.3: at most 30 pairs, field names up to 30 octets, values up to 1024.
    if (a.items.size() % 2 != 0 || a.items.size() > 60) {
      s.bad(c, "ID list must hold up to 30 field-value pairs");
      co_return;
    }
    std::string summary;
    for (std::size_t i = 0; i < a.items.size(); i += 2) {
      const auto& k = a.items[i];
      const auto& v = a.items[i + 1];
      if (k.kind != imap::value_kind::quoted && k.kind != imap::value_kind::literal) {
        s.bad(c, "ID field names are strings");
        co_return;
      }
      if (k.text.size() > 30 ||
          (v.kind != imap::value_kind::nil && v.kind != imap::value_kind::quoted &&
           v.kind != imap::value_kind::literal) ||
          v.text.size() > 1024) {
        s.bad(c, "Invalid ID field");
        co_return;
      }
      if (v.kind == imap::value_kind::nil) continue;
      if (s.trusted_proxy && s.st == state::not_authenticated) {
        if (ascii_iequals(k.text, "x-originating-ip")) {
          boost::system::error_code ec;
          auto addr = boost::asio::ip::make_address(v.text, ec);
          if (!ec) {
            s.client_address = net::address_text(addr);
            s.conn.log().info("client address [{}] (from proxy)", s.client_address);
          }
        } else if (ascii_iequals(k.text, "x-originating-port")) {
          s.conn.log().info("client port {} (from proxy)", v.text.substr(0, 8));
        } else if (ascii_iequals(k.text, "x-session-id")) {
          s.conn.log().info("proxy session {}", v.text);
        }
      }
      if (summary.size() < 200) {
        summary += summary.empty() ? "" : " ";
        summary += k.text + "=" + v.text.substr(0, 64);
      }
    }
    if (!summary.empty()) s.conn.log().info("client ID: {}", summary);
  } else if (a.kind != imap::value_kind::nil) {
    s.bad(c, "ID takes a list or NIL");
    co_return;
  }
  s.untagged("ID (\"name\" \"hamail\" \"vendor\" \"hamail\")");
  s.ok(c, "ID completed");
}

}  // namespace hamail::backend::imap_session_detail

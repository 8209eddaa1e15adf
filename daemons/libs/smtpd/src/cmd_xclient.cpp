// XCLIENT (Postfix XCLIENT_README): a trusted proxy (hamail-proxy passing a
// client's mail to the store over LMTP) names the client it speaks for, so
// logs and Received show the client instead of the proxy. As in Postfix the
// server then greets anew (220) and the proxy must say EHLO/LHLO again.

#include <charconv>

#include <boost/asio/ip/address.hpp>

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

/// Postfix's values for "the proxy does not know".
bool unavailable(std::string_view v) { return v == "[UNAVAILABLE]" || v == "[TEMPUNAVAIL]"; }

bool has_control(std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto up = [](char c) { return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c; };
    if (up(a[i]) != up(b[i])) return false;
  }
  return true;
}

bool parse_port(std::string_view v, std::uint16_t& out) {
  unsigned n = 0;
  if (v.empty() || v.size() > 5) return false;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n > 65535) return false;
  out = static_cast<std::uint16_t>(n);
  return true;
}

/// Postfix writes IPv6 addresses as "IPV6:2001:db8::1"; plain forms are taken too.
bool parse_address(std::string_view v, std::string& out) {
  if (v.size() > 5 && iequals(v.substr(0, 5), "IPV6:")) v.remove_prefix(5);
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(v), ec);
  if (ec) return false;
  out = net::address_text(addr);
  return true;
}

}  // namespace

awaitable<void> cmd_xclient(session& s, const smtp::xclient_command& c) {
  if (!s.trusted_proxy) {
    s.conn.log().warning("XCLIENT refused: [{}] is not a trusted proxy", s.conn.remote_address());
    s.reply(smtp::reply(550, "5.7.0").add_line("Insufficient authorization"));
    s.count_error();
    co_return;
  }
  if (s.tx) {
    s.reply(smtp::reply(smtp::status::bad_sequence, "Mail transaction in progress"));
    co_return;
  }
  // Everything is checked before anything changes: a refused XCLIENT leaves
  // the session as it was.
  client_identity next = s.client;
  std::optional<std::string> login;
  std::string proxy_session = "-";
  auto bad = [&s](std::string_view name) {
    s.reply(smtp::reply(501, "5.5.4").add_line("Bad XCLIENT attribute " + std::string(name)));
    s.count_error();
  };
  for (const auto& [name, value] : c.attributes) {
    if (has_control(value)) co_return bad(name);
    const bool none = unavailable(value);
    if (name == "ADDR") {
      if (none) {
        next.address = "unknown";
      } else if (!parse_address(value, next.address)) {
        co_return bad(name);
      }
    } else if (name == "PORT") {
      if (none) {
        next.port = 0;
      } else if (!parse_port(value, next.port)) {
        co_return bad(name);
      }
    } else if (name == "HELO") {
      next.helo = none ? std::string() : value;
    } else if (name == "NAME") {
      next.name = none ? std::string() : value;
    } else if (name == "PROTO") {
      if (none) {
        next.proto.clear();
      } else if (iequals(value, "SMTP") || iequals(value, "ESMTP")) {
        next.proto = iequals(value, "SMTP") ? "SMTP" : "ESMTP";
      } else {
        co_return bad(name);
      }
    } else if (name == "LOGIN") {
      login = none ? std::string() : value;
    } else if (name == "SESSION") {
      if (!value.empty() && !none) proxy_session = value;
    } else if (name == "TTL") {
      std::uint16_t ttl = 0;  // hamail's proxies' hop count: checked, otherwise unused
      if (!none && !parse_port(value, ttl)) co_return bad(name);
    } else {
      co_return bad(name);
    }
  }
  next.proxied = true;
  s.client = std::move(next);
  if (login) s.authenticated = *login;
  s.conn.log().info("xclient: client [{}]:{} via proxy [{}] session {}", s.client.address,
                    s.client.port, s.conn.remote_address(), proxy_session);
  // As after a fresh connection: the proxy greets again and starts over.
  s.reset_transaction();
  s.helo.clear();
  s.esmtp = false;
  s.reply(smtp::reply(220).add_line(
      s.svc.hostname + (s.kind == flavour::lmtp ? " LMTP" : " ESMTP") + " hamail ready"));
}

}  // namespace hamail::smtpd

// HELO, EHLO (RFC 5321 §4.1.1.1) and LHLO (RFC 2033 §4.1).

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

awaitable<void> greet(session& s, const std::string& domain, bool extended) {
  if (domain.empty()) {
    s.reply(smtp::reply(smtp::status::syntax, "A domain name is required"));
    s.count_error();
    co_return;
  }
  // A new greeting resets the transaction (RFC 5321 §4.1.4).
  s.reset_transaction();
  s.helo = domain;
  s.esmtp = extended;
  const std::string greeting = s.svc.hostname + " Hello " + domain + " [" + s.client.address + "]";
  if (!extended) {
    s.reply(smtp::reply(250).add_line(greeting));
    co_return;
  }
  const auto ext = extensions(s);
  std::vector<std::string_view> views(ext.begin(), ext.end());
  s.reply(smtp::ehlo_reply(greeting, views));
  co_return;
}

}  // namespace

awaitable<void> cmd_helo(session& s, const smtp::helo_command& c) {
  return greet(s, c.domain, false);
}
awaitable<void> cmd_ehlo(session& s, const smtp::ehlo_command& c) {
  return greet(s, c.domain, true);
}
awaitable<void> cmd_lhlo(session& s, const smtp::lhlo_command& c) {
  return greet(s, c.domain, true);
}

}  // namespace hamail::smtpd

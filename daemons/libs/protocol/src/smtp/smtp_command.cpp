#include <string>

#include "char_class.hpp"
#include "hamail/protocol/smtp/command.hpp"
#include "hamail/protocol/smtp/xtext.hpp"

namespace hamail::smtp {
namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

void append_unknown(std::string& out, const std::vector<esmtp_parameter>& unknown) {
  for (const auto& p : unknown) {
    out += ' ';
    out += p.keyword;
    if (p.value) {
      out += '=';
      out += *p.value;
    }
  }
}

void append_mail_parameters(std::string& out, const mail_parameters& p) {
  if (p.size) out += " SIZE=" + std::to_string(*p.size);
  if (p.body) {
    switch (*p.body) {
      case body_type::seven_bit:
        out += " BODY=7BIT";
        break;
      case body_type::eight_bit_mime:
        out += " BODY=8BITMIME";
        break;
      case body_type::binary_mime:
        out += " BODY=BINARYMIME";
        break;
    }
  }
  if (p.smtputf8) out += " SMTPUTF8";
  if (p.ret) out += *p.ret == dsn_return::full ? " RET=FULL" : " RET=HDRS";
  if (p.envid) out += " ENVID=" + encode_xtext(*p.envid);
  if (p.auth) out += " AUTH=" + encode_xtext(*p.auth);  // "<>" encodes as itself
  append_unknown(out, p.unknown);
}

void append_rcpt_parameters(std::string& out, const rcpt_parameters& p) {
  if (p.notify) {
    const auto& n = *p.notify;
    std::string list;
    auto add = [&list](bool on, const char* name) {
      if (!on) return;
      if (!list.empty()) list += ',';
      list += name;
    };
    add(n.never, "NEVER");
    add(n.success, "SUCCESS");
    add(n.failure, "FAILURE");
    add(n.delay, "DELAY");
    out += " NOTIFY=" + list;
  }
  if (p.orcpt) {
    out += " ORCPT=" + p.orcpt->address_type + ";";
    // A "utf-8" address is kept as sent by the parser, so it is sent back as is.
    const bool utf8_type = detail::iequals(p.orcpt->address_type, "utf-8");
    out += utf8_type ? p.orcpt->address : encode_xtext(p.orcpt->address);
  }
  append_unknown(out, p.unknown);
}

}  // namespace

std::string_view verb_name(const command& cmd) noexcept {
  static constexpr std::string_view names[] = {"HELO", "EHLO",     "LHLO", "MAIL",   "RCPT", "DATA",
                                               "BDAT", "RSET",     "NOOP", "QUIT",   "VRFY", "EXPN",
                                               "HELP", "STARTTLS", "AUTH", "XCLIENT"};
  static_assert(std::size(names) == std::variant_size_v<command>);
  return names[cmd.index()];
}

std::string to_wire(const command& cmd) {
  std::string out(verb_name(cmd));
  std::visit(overloaded{
                 [&](const helo_command& c) { out += ' ' + c.domain; },
                 [&](const ehlo_command& c) { out += ' ' + c.domain; },
                 [&](const lhlo_command& c) { out += ' ' + c.domain; },
                 [&](const mail_command& c) {
                   out += " FROM:" + c.sender.wire();
                   append_mail_parameters(out, c.params);
                 },
                 [&](const rcpt_command& c) {
                   out += " TO:" + c.recipient.wire();
                   append_rcpt_parameters(out, c.params);
                 },
                 [&](const bdat_command& c) {
                   out += ' ' + std::to_string(c.size);
                   if (c.last) out += " LAST";
                 },
                 [&](const noop_command& c) {
                   if (!c.argument.empty()) out += ' ' + c.argument;
                 },
                 [&](const vrfy_command& c) { out += ' ' + c.argument; },
                 [&](const expn_command& c) { out += ' ' + c.argument; },
                 [&](const help_command& c) {
                   if (!c.topic.empty()) out += ' ' + c.topic;
                 },
                 [&](const auth_command& c) {
                   out += ' ' + c.mechanism;
                   if (c.initial_response) out += ' ' + *c.initial_response;
                 },
                 [&](const xclient_command& c) {
                   for (const auto& a : c.attributes)
                     out += ' ' + a.name + '=' + encode_xtext(a.value);
                 },
                 [](const auto&) {},
             },
             cmd);
  out += "\r\n";
  return out;
}

}  // namespace hamail::smtp

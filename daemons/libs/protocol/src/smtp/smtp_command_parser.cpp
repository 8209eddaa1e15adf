#include <array>
#include <utility>

#include "char_class.hpp"
#include "hamail/protocol/smtp/command_parser.hpp"
#include "hamail/protocol/smtp/xtext.hpp"

namespace hamail::smtp {
namespace {

using detail::iequals;
using detail::istarts_with;

enum class verb {
  helo,
  ehlo,
  lhlo,
  mail,
  rcpt,
  data,
  bdat,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  starttls,
  auth,
  xclient,
  unknown
};

constexpr std::array<std::pair<std::string_view, verb>, 16> verbs{{
    {"HELO", verb::helo},
    {"EHLO", verb::ehlo},
    {"LHLO", verb::lhlo},
    {"MAIL", verb::mail},
    {"RCPT", verb::rcpt},
    {"DATA", verb::data},
    {"BDAT", verb::bdat},
    {"RSET", verb::rset},
    {"NOOP", verb::noop},
    {"QUIT", verb::quit},
    {"VRFY", verb::vrfy},
    {"EXPN", verb::expn},
    {"HELP", verb::help},
    {"STARTTLS", verb::starttls},
    {"AUTH", verb::auth},
    {"XCLIENT", verb::xclient},
}};

verb find_verb(std::string_view word) noexcept {
  for (const auto& [name, v] : verbs) {
    if (iequals(word, name)) return v;
  }
  return verb::unknown;
}

parse_step fail(parse_error code, std::string_view detail) {
  parse_step step;
  step.status = parse_status::error;
  step.error = command_error{code, detail};
  return step;
}

parse_step done(command cmd) {
  parse_step step;
  step.status = parse_status::complete;
  step.cmd = std::move(cmd);
  return step;
}

bool has_control(std::string_view s) noexcept {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Splits on runs of SP; RFC 5321 wants one, but extra spaces are harmless.
template <class F>
void for_each_word(std::string_view s, F&& f) {
  while (!s.empty()) {
    const auto sp = s.find(' ');
    const auto word = s.substr(0, sp);
    if (!word.empty()) f(word);
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
}

// Returns the index of the '>' closing the path that starts at s[0] == '<',
// honouring quoted local parts; npos when there is none.
std::size_t path_end(std::string_view s) noexcept {
  bool quoted = false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

struct raw_parameter {
  std::string_view keyword;
  std::optional<std::string_view> value;
};

// esmtp-param = esmtp-keyword ["=" esmtp-value]
// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
// esmtp-value = 1*(%d33-60 / %d62-126), plus UTF8-non-ascii under SMTPUTF8
bool split_parameter(std::string_view word, bool utf8, raw_parameter& out) noexcept {
  const auto eq = word.find('=');
  const auto keyword = word.substr(0, eq);
  if (keyword.empty() || !detail::is_let_dig(static_cast<unsigned char>(keyword.front())))
    return false;
  for (char ch : keyword) {
    const auto c = static_cast<unsigned char>(ch);
    if (!detail::is_let_dig(c) && c != '-') return false;
  }
  out.keyword = keyword;
  out.value.reset();
  if (eq == std::string_view::npos) return true;
  const auto value = word.substr(eq + 1);
  if (value.empty()) return false;
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 33 && c <= 126 && c != '=') || (utf8 && c >= 0x80);
    if (!ok) return false;
  }
  if (!utf8 && !detail::is_ascii(value)) return false;
  if (utf8 && !detail::is_valid_utf8(value)) return false;
  out.value = value;
  return true;
}

bool add_unknown(std::vector<esmtp_parameter>& unknown, const raw_parameter& p) {
  for (const auto& u : unknown) {
    if (iequals(u.keyword, p.keyword)) return false;
  }
  esmtp_parameter e;
  e.keyword.assign(p.keyword);
  if (p.value) e.value.emplace(*p.value);
  unknown.push_back(std::move(e));
  return true;
}

std::optional<command_error> parse_mail_parameters(std::string_view text, bool utf8,
                                                   mail_parameters& out) {
  std::optional<command_error> err;
  auto bad = [&err](parse_error code, std::string_view detail) {
    if (!err) err = command_error{code, detail};
  };
  for_each_word(text, [&](std::string_view word) {
    if (err) return;
    raw_parameter p;
    if (!split_parameter(word, utf8, p))
      return bad(parse_error::bad_parameter_syntax, "Bad parameter syntax");
    const auto& k = p.keyword;
    if (iequals(k, "SIZE")) {
      std::uint64_t n = 0;
      if (out.size) return bad(parse_error::bad_parameter_syntax, "Duplicate SIZE parameter");
      if (!p.value || !detail::parse_u64(*p.value, n)) {
        return bad(parse_error::bad_parameter_syntax, "Bad SIZE parameter");
      }
      out.size = n;
    } else if (iequals(k, "BODY")) {
      if (out.body) return bad(parse_error::bad_parameter_syntax, "Duplicate BODY parameter");
      if (!p.value) return bad(parse_error::bad_parameter_syntax, "BODY needs a value");
      if (iequals(*p.value, "7BIT")) {
        out.body = body_type::seven_bit;
      } else if (iequals(*p.value, "8BITMIME")) {
        out.body = body_type::eight_bit_mime;
      } else if (iequals(*p.value, "BINARYMIME")) {
        out.body = body_type::binary_mime;
      } else {
        return bad(parse_error::unsupported_parameter, "Unsupported BODY type");
      }
    } else if (iequals(k, "SMTPUTF8")) {
      if (out.smtputf8)
        return bad(parse_error::bad_parameter_syntax, "Duplicate SMTPUTF8 parameter");
      if (p.value) return bad(parse_error::bad_parameter_syntax, "SMTPUTF8 takes no value");
      out.smtputf8 = true;
    } else if (iequals(k, "RET")) {
      if (out.ret) return bad(parse_error::bad_parameter_syntax, "Duplicate RET parameter");
      if (p.value && iequals(*p.value, "FULL")) {
        out.ret = dsn_return::full;
      } else if (p.value && iequals(*p.value, "HDRS")) {
        out.ret = dsn_return::headers;
      } else {
        return bad(parse_error::bad_parameter_syntax, "Bad RET parameter");
      }
    } else if (iequals(k, "ENVID")) {
      if (out.envid) return bad(parse_error::bad_parameter_syntax, "Duplicate ENVID parameter");
      // RFC 3461 §4.4: at most 100 characters.
      auto decoded = p.value && p.value->size() <= 100 ? decode_xtext(*p.value) : std::nullopt;
      if (!decoded) return bad(parse_error::bad_parameter_syntax, "Bad ENVID parameter");
      out.envid = std::move(*decoded);
    } else if (iequals(k, "AUTH")) {
      if (out.auth) return bad(parse_error::bad_parameter_syntax, "Duplicate AUTH parameter");
      auto decoded = p.value ? decode_xtext(*p.value) : std::nullopt;
      if (!decoded) return bad(parse_error::bad_parameter_syntax, "Bad AUTH parameter");
      out.auth = std::move(*decoded);
    } else if (!add_unknown(out.unknown, p)) {
      return bad(parse_error::bad_parameter_syntax, "Duplicate parameter");
    }
  });
  return err;
}

bool parse_notify(std::string_view value, dsn_notify& out) noexcept {
  bool any = false;
  while (true) {
    const auto comma = value.find(',');
    const auto item = value.substr(0, comma);
    bool* flag = nullptr;
    if (iequals(item, "NEVER")) {
      flag = &out.never;
    } else if (iequals(item, "SUCCESS")) {
      flag = &out.success;
    } else if (iequals(item, "FAILURE")) {
      flag = &out.failure;
    } else if (iequals(item, "DELAY")) {
      flag = &out.delay;
    } else {
      return false;
    }
    if (*flag) return false;
    *flag = true;
    any = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  // NEVER cannot be combined with the others (RFC 3461 §4.1).
  return any && !(out.never && (out.success || out.failure || out.delay));
}

bool parse_orcpt(std::string_view value, original_recipient& out) {
  // RFC 3461 §4.2: at most 500 characters.
  if (value.size() > 500) return false;
  const auto semi = value.find(';');
  if (semi == std::string_view::npos || semi == 0) return false;
  const auto type = value.substr(0, semi);
  for (char ch : type) {
    if (!detail::is_atext(static_cast<unsigned char>(ch))) return false;
  }
  const auto addr = value.substr(semi + 1);
  if (addr.empty()) return false;
  out.address_type.assign(type);
  out.raw.assign(value);
  if (iequals(type, "utf-8")) {
    // RFC 6533 utf-8-addr-xtext/unitext has its own escapes; kept as sent.
    out.address.assign(addr);
    return true;
  }
  auto decoded = decode_xtext(addr);
  if (!decoded) return false;
  out.address = std::move(*decoded);
  return true;
}

std::optional<command_error> parse_rcpt_parameters(std::string_view text, bool utf8,
                                                   rcpt_parameters& out) {
  std::optional<command_error> err;
  auto bad = [&err](parse_error code, std::string_view detail) {
    if (!err) err = command_error{code, detail};
  };
  for_each_word(text, [&](std::string_view word) {
    if (err) return;
    raw_parameter p;
    if (!split_parameter(word, utf8, p))
      return bad(parse_error::bad_parameter_syntax, "Bad parameter syntax");
    if (iequals(p.keyword, "NOTIFY")) {
      if (out.notify) return bad(parse_error::bad_parameter_syntax, "Duplicate NOTIFY parameter");
      dsn_notify n;
      if (!p.value || !parse_notify(*p.value, n))
        return bad(parse_error::bad_parameter_syntax, "Bad NOTIFY parameter");
      out.notify = n;
    } else if (iequals(p.keyword, "ORCPT")) {
      if (out.orcpt) return bad(parse_error::bad_parameter_syntax, "Duplicate ORCPT parameter");
      original_recipient o;
      if (!p.value || !parse_orcpt(*p.value, o))
        return bad(parse_error::bad_parameter_syntax, "Bad ORCPT parameter");
      out.orcpt = std::move(o);
    } else if (!add_unknown(out.unknown, p)) {
      return bad(parse_error::bad_parameter_syntax, "Duplicate parameter");
    }
  });
  return err;
}

bool has_smtputf8_word(std::string_view text) noexcept {
  bool found = false;
  for_each_word(text, [&found](std::string_view word) {
    if (iequals(word, "SMTPUTF8")) found = true;
  });
  return found;
}

// Splits "<path> params" after "FROM:" / "TO:"; false when the shape is wrong.
bool split_path(std::string_view rest, std::string_view& path_text,
                std::string_view& params) noexcept {
  // RFC 5321 has no space after the colon, but widespread clients send one.
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty() || rest.front() != '<') return false;
  const auto end = path_end(rest);
  if (end == std::string_view::npos) return false;
  path_text = rest.substr(0, end + 1);
  params = rest.substr(end + 1);
  return params.empty() || params.front() == ' ';
}

parse_step parse_mail(std::string_view rest) {
  if (!istarts_with(rest, "FROM:")) return fail(parse_error::syntax, "Syntax: MAIL FROM:<address>");
  std::string_view path_text, params_text;
  if (!split_path(rest.substr(5), path_text, params_text)) {
    return fail(parse_error::syntax, "Syntax: MAIL FROM:<address>");
  }
  mail_command mail;
  const bool utf8 = has_smtputf8_word(params_text);
  auto p = parse_path(path_text,
                      path_options{.allow_null = true, .allow_postmaster = false, .utf8 = utf8});
  if (!p.value) {
    return fail(p.error == address_error::utf8_not_permitted ? parse_error::utf8_not_permitted
                                                             : parse_error::bad_sender_address,
                p.detail);
  }
  mail.sender = std::move(*p.value);
  if (auto err = parse_mail_parameters(params_text, utf8, mail.params))
    return fail(err->code, err->detail);
  return done(std::move(mail));
}

parse_step parse_rcpt(std::string_view rest, bool utf8) {
  if (!istarts_with(rest, "TO:")) return fail(parse_error::syntax, "Syntax: RCPT TO:<address>");
  std::string_view path_text, params_text;
  if (!split_path(rest.substr(3), path_text, params_text)) {
    return fail(parse_error::syntax, "Syntax: RCPT TO:<address>");
  }
  rcpt_command rcpt;
  auto p = parse_path(path_text,
                      path_options{.allow_null = false, .allow_postmaster = true, .utf8 = utf8});
  if (!p.value) {
    return fail(p.error == address_error::utf8_not_permitted ? parse_error::utf8_not_permitted
                                                             : parse_error::bad_recipient_address,
                p.detail);
  }
  rcpt.recipient = std::move(*p.value);
  if (auto err = parse_rcpt_parameters(params_text, utf8, rcpt.params))
    return fail(err->code, err->detail);
  return done(std::move(rcpt));
}

parse_step parse_bdat(std::string_view rest) {
  bdat_command bdat;
  int words = 0;
  bool ok = true;
  for_each_word(rest, [&](std::string_view word) {
    ++words;
    if (words == 1) {
      ok = ok && detail::parse_u64(word, bdat.size);
    } else if (words == 2) {
      ok = ok && iequals(word, "LAST");
      bdat.last = true;
    } else {
      ok = false;
    }
  });
  if (!ok || words == 0) return fail(parse_error::syntax, "Syntax: BDAT size [LAST]");
  return done(bdat);
}

bool is_base64(std::string_view s) noexcept {
  if (s.empty() || s.size() % 4 != 0) return false;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad != 0) return false;  // data after padding
    if (!(detail::is_let_dig(c) || c == '+' || c == '/')) return false;
  }
  return pad <= 2;
}

parse_step parse_auth(std::string_view rest) {
  const auto sp = rest.find(' ');
  const auto mech = rest.substr(0, sp);
  // sasl-mech = 1*20(UPPER-ALPHA / DIGIT / "-" / "_"); case folded here.
  if (mech.empty() || mech.size() > 20)
    return fail(parse_error::syntax, "Syntax: AUTH mechanism [initial-response]");
  auth_command auth;
  for (char ch : mech) {
    const auto c = static_cast<unsigned char>(ch);
    if (!detail::is_let_dig(c) && c != '-' && c != '_') {
      return fail(parse_error::syntax, "Syntax: AUTH mechanism [initial-response]");
    }
    auth.mechanism.push_back(detail::to_upper(ch));
  }
  if (sp != std::string_view::npos) {
    const auto response = rest.substr(sp + 1);
    if (response.find(' ') != std::string_view::npos || response.empty()) {
      return fail(parse_error::syntax, "Syntax: AUTH mechanism [initial-response]");
    }
    if (response != "=" && !is_base64(response))
      return fail(parse_error::bad_base64, "Cannot decode initial response");
    auth.initial_response.emplace(response);
  }
  return done(std::move(auth));
}

// XCLIENT attribute=value ...: names are atoms, upper-cased; values are xtext
// (possibly empty), decoded. Any defect refuses the whole command.
parse_step parse_xclient(std::string_view rest) {
  constexpr std::string_view usage = "Syntax: XCLIENT attribute=value ...";
  xclient_command x;
  bool ok = true;
  for_each_word(rest, [&](std::string_view word) {
    if (!ok) return;
    const auto eq = word.find('=');
    const auto name = word.substr(0, eq);
    if (eq == std::string_view::npos || name.empty() || name.size() > max_xclient_name ||
        x.attributes.size() >= max_xclient_attributes) {
      ok = false;
      return;
    }
    xclient_attribute a;
    for (char ch : name) {
      const auto c = static_cast<unsigned char>(ch);
      if (!detail::is_let_dig(c) && c != '-' && c != '_') {
        ok = false;
        return;
      }
      a.name.push_back(detail::to_upper(ch));
    }
    for (const auto& seen : x.attributes) {
      if (seen.name == a.name) {
        ok = false;
        return;
      }
    }
    auto value = decode_xtext(word.substr(eq + 1));
    if (!value || value->size() > max_xclient_value) {
      ok = false;
      return;
    }
    a.value = std::move(*value);
    x.attributes.push_back(std::move(a));
  });
  if (!ok || x.attributes.empty()) return fail(parse_error::syntax, usage);
  return done(std::move(x));
}

bool well_formed_hello(std::string_view domain) noexcept {
  return is_valid_domain(domain, true) || is_valid_address_literal(domain);
}

}  // namespace

std::string_view to_string(parse_error code) noexcept {
  switch (code) {
    case parse_error::line_too_long:
      return "line_too_long";
    case parse_error::bare_lf:
      return "bare_lf";
    case parse_error::bare_cr:
      return "bare_cr";
    case parse_error::unknown_command:
      return "unknown_command";
    case parse_error::syntax:
      return "syntax";
    case parse_error::bad_sender_address:
      return "bad_sender_address";
    case parse_error::bad_recipient_address:
      return "bad_recipient_address";
    case parse_error::utf8_not_permitted:
      return "utf8_not_permitted";
    case parse_error::bad_parameter_syntax:
      return "bad_parameter_syntax";
    case parse_error::unsupported_parameter:
      return "unsupported_parameter";
    case parse_error::bad_base64:
      return "bad_base64";
  }
  return "unknown";
}

command_parser::command_parser(command_limits limits)
    : lines_(line_limits{.max_line = limits.max_line,
                         .max_extended_line = limits.max_auth_line,
                         .extended_prefix = "AUTH ",
                         .bare_lf = limits.bare_lf}) {}

void command_parser::reset() noexcept {
  lines_.reset();
  utf8_transaction_ = false;
}

parse_step command_parser::feed(std::string_view input) {
  const auto line = lines_.feed(input);
  parse_step step;
  switch (line.status) {
    case parse_status::need_more:
      break;
    case parse_status::error:
      switch (line.error) {
        case line_error::line_too_long:
          step = fail(parse_error::line_too_long, "Line too long");
          break;
        case line_error::bare_lf:
          step = fail(parse_error::bare_lf, "Bare <LF> received; lines must end with <CR><LF>");
          break;
        case line_error::bare_cr:
        case line_error::none:
          step = fail(parse_error::bare_cr, "Bare <CR> received");
          break;
      }
      break;
    case parse_status::complete:
      step = parse_line(line.line);
      break;
  }
  step.consumed = line.consumed;
  return step;
}

parse_step command_parser::parse_line(std::string_view line) const {
  line = detail::trim_right(line);
  const auto sp = line.find(' ');
  const auto word = line.substr(0, sp);
  const auto rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
  const verb v = find_verb(word);
  if (v == verb::unknown) return fail(parse_error::unknown_command, "Command unrecognized");
  if (has_control(rest)) return fail(parse_error::syntax, "Control character in command");

  auto no_argument = [&](command cmd, std::string_view usage) {
    return rest.empty() ? done(std::move(cmd)) : fail(parse_error::syntax, usage);
  };
  switch (v) {
    case verb::helo:
      if (rest.empty()) return fail(parse_error::syntax, "Syntax: HELO hostname");
      return done(helo_command{std::string(rest), well_formed_hello(rest)});
    case verb::ehlo:
      if (rest.empty()) return fail(parse_error::syntax, "Syntax: EHLO hostname");
      return done(ehlo_command{std::string(rest), well_formed_hello(rest)});
    case verb::lhlo:
      if (rest.empty()) return fail(parse_error::syntax, "Syntax: LHLO hostname");
      return done(lhlo_command{std::string(rest), well_formed_hello(rest)});
    case verb::mail:
      return parse_mail(rest);
    case verb::rcpt:
      return parse_rcpt(rest, utf8_transaction_);
    case verb::data:
      return no_argument(data_command{}, "Syntax: DATA");
    case verb::bdat:
      return parse_bdat(rest);
    case verb::rset:
      return no_argument(rset_command{}, "Syntax: RSET");
    case verb::noop:
      return done(noop_command{std::string(rest)});
    case verb::quit:
      return no_argument(quit_command{}, "Syntax: QUIT");
    case verb::vrfy:
      if (rest.empty()) return fail(parse_error::syntax, "Syntax: VRFY address");
      return done(vrfy_command{std::string(rest)});
    case verb::expn:
      if (rest.empty()) return fail(parse_error::syntax, "Syntax: EXPN list");
      return done(expn_command{std::string(rest)});
    case verb::help:
      return done(help_command{std::string(rest)});
    case verb::starttls:
      return no_argument(starttls_command{}, "Syntax: STARTTLS (no parameters allowed)");
    case verb::auth:
      return parse_auth(rest);
    case verb::xclient:
      return parse_xclient(rest);
    case verb::unknown:
      break;
  }
  return fail(parse_error::unknown_command, "Command unrecognized");
}

}  // namespace hamail::smtp

#include <array>
#include <cstdint>
#include <string>

#include "hamail/protocol/pop3/command.hpp"

namespace hamail::pop3 {

namespace {

// Where a command is valid.
enum class where : std::uint8_t { authorization, transaction, both };

// One row of the command table. Argument shapes are checked per verb in validate.
struct command_spec {
  std::string_view keyword;
  verb what;
  where state;
  std::uint8_t min_args;
  std::uint8_t max_args;
};

constexpr std::array<command_spec, 16> table{{
    {"USER", verb::user, where::authorization, 1, 1},
    {"PASS", verb::pass, where::authorization, 1, 1},
    {"APOP", verb::apop, where::authorization, 2, 2},
    {"AUTH", verb::auth, where::authorization, 0, 2},
    {"STLS", verb::stls, where::authorization, 0, 0},
    {"CAPA", verb::capa, where::both, 0, 0},
    {"QUIT", verb::quit, where::both, 0, 0},
    {"STAT", verb::stat, where::transaction, 0, 0},
    {"LIST", verb::list, where::transaction, 0, 1},
    {"RETR", verb::retr, where::transaction, 1, 1},
    {"DELE", verb::dele, where::transaction, 1, 1},
    {"NOOP", verb::noop, where::transaction, 0, 0},
    {"RSET", verb::rset, where::transaction, 0, 0},
    {"TOP", verb::top, where::transaction, 2, 2},
    {"UIDL", verb::uidl, where::transaction, 0, 1},
    {"XCLIENT", verb::xclient, where::authorization, 1, 8},
}};

constexpr std::uint32_t max_number = 0x7fffffffu;  // 2^31-1
constexpr std::size_t max_mechanism = 20;          // RFC 4422 §3.1

checked_command refuse(parse_error code, std::string_view detail) {
  return checked_command{std::nullopt, command_error{code, detail}};
}

std::optional<std::uint32_t> parse_count(std::string_view text) noexcept {
  if (text.empty() || text.size() > 40) return std::nullopt;  // RFC 1939: arguments <= 40 chars
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
    if (value > max_number) return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

bool is_mechanism(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_mechanism) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool is_b64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

std::string_view to_string(parse_error code) noexcept {
  switch (code) {
    case parse_error::line_too_long:
      return "line_too_long";
    case parse_error::bare_cr:
      return "bare_cr";
    case parse_error::bare_lf:
      return "bare_lf";
    case parse_error::control_character:
      return "control_character";
    case parse_error::empty_line:
      return "empty_line";
    case parse_error::unknown_command:
      return "unknown_command";
    case parse_error::syntax:
      return "syntax";
    case parse_error::bad_message_number:
      return "bad_message_number";
    case parse_error::bad_line_count:
      return "bad_line_count";
    case parse_error::wrong_state:
      return "wrong_state";
    case parse_error::unsupported:
      return "unsupported";
    case parse_error::bad_mechanism:
      return "bad_mechanism";
    case parse_error::bad_base64:
      return "bad_base64";
  }
  return "unknown";
}

std::string_view to_string(verb v) noexcept {
  for (const auto& spec : table)
    if (spec.what == v) return spec.keyword;
  return "";
}

std::optional<std::uint32_t> parse_message_number(std::string_view text) noexcept {
  const auto n = parse_count(text);
  if (!n || *n == 0) return std::nullopt;
  return n;
}

bool is_base64(std::string_view text) noexcept {
  if (text.size() % 4 != 0) return false;
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  for (std::size_t i = 0; i + pad < text.size(); ++i)
    if (!is_b64_char(text[i])) return false;
  return true;
}

checked_command validate(const command& cmd, session_state state) {
  const command_spec* spec = nullptr;
  for (const auto& s : table)
    if (s.keyword == cmd.keyword) spec = &s;
  if (spec == nullptr) return refuse(parse_error::unknown_command, "Unknown command");
  if (spec->what == verb::apop) return refuse(parse_error::unsupported, "APOP not supported");
  const bool here = spec->state == where::both || (spec->state == where::authorization) ==
                                                      (state == session_state::authorization);
  if (!here)
    return refuse(parse_error::wrong_state, state == session_state::authorization
                                                ? "Command not valid before login"
                                                : "Command not valid after login");
  const auto n = cmd.args.size();
  if (n < spec->min_args) return refuse(parse_error::syntax, "Missing argument");
  if (n > spec->max_args) return refuse(parse_error::syntax, "Too many arguments");

  request req;
  req.what = spec->what;
  switch (spec->what) {
    case verb::user:
    case verb::pass:
      if (cmd.args[0].empty())
        return refuse(parse_error::syntax,
                      spec->what == verb::user ? "Missing user name" : "Missing password");
      req.text = cmd.args[0];
      break;
    case verb::list:
    case verb::retr:
    case verb::dele:
    case verb::uidl:
    case verb::top:
      if (n >= 1) {
        req.msg = parse_message_number(cmd.args[0]);
        if (!req.msg) return refuse(parse_error::bad_message_number, "Invalid message number");
      }
      if (spec->what == verb::top) {
        // A count past 2^31-1 asks for the whole body (clients send huge ones for that).
        const auto& l = cmd.args[1];
        const bool digits =
            !l.empty() && l.size() <= 40 && l.find_first_not_of("0123456789") == std::string::npos;
        req.lines = digits && !parse_count(l) ? std::optional(max_number) : parse_count(l);
        if (!req.lines) return refuse(parse_error::bad_line_count, "Invalid line count");
      }
      break;
    case verb::auth:
      if (n >= 1) {
        if (!is_mechanism(cmd.args[0]))
          return refuse(parse_error::bad_mechanism, "Invalid SASL mechanism name");
        req.text = cmd.args[0];
        for (auto& c : req.text)
          if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      }
      if (n == 2) {
        // RFC 5034 §4: "=" is an empty initial response.
        if (cmd.args[1] != "=" && (cmd.args[1].empty() || !is_base64(cmd.args[1])))
          return refuse(parse_error::bad_base64, "Invalid base64 in initial response");
        req.initial_response = cmd.args[1];
      }
      break;
    case verb::xclient:
      // NAME=VALUE pairs (Postfix XCLIENT, as Dovecot's POP3 proxy sends them).
      for (const auto& a : cmd.args) {
        const auto eq = a.find('=');
        if (eq == 0 || eq == std::string::npos)
          return refuse(parse_error::syntax, "XCLIENT takes NAME=VALUE attributes");
        std::string name = a.substr(0, eq);
        for (auto& c : name)
          if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        req.attributes.emplace_back(std::move(name), a.substr(eq + 1));
      }
      break;
    default:
      break;
  }
  return checked_command{std::move(req), std::nullopt};
}

}  // namespace hamail::pop3

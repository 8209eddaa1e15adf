#include <algorithm>

#include "hamail/protocol/pop3/command_parser.hpp"

namespace hamail::pop3 {

namespace {

parse_step refuse(parse_error code, std::string_view detail) {
  parse_step step;
  step.status = parse_status::error;
  step.error = command_error{code, detail};
  return step;
}

// Control octets other than the line end: refused anywhere in a line. Octets
// above 0x7f pass (UTF-8 user names and passwords).
bool has_control(std::string_view line) noexcept {
  return std::any_of(line.begin(), line.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

command_parser::command_parser(command_limits limits)
    : commands_(smtp::line_limits{.max_line = limits.max_line,
                                  .max_extended_line = limits.max_auth_line,
                                  .extended_prefix = "AUTH ",
                                  .bare_lf = limits.bare_lf}),
      responses_(smtp::line_limits{.max_line = std::max(limits.max_auth_line, limits.max_line),
                                   .max_extended_line = 0,
                                   .extended_prefix = {},
                                   .bare_lf = limits.bare_lf}) {}

void command_parser::reset() noexcept {
  commands_.reset();
  responses_.reset();
  mode_ = input_mode::command;
}

parse_step command_parser::parse_line(std::string_view line) {
  if (line.empty()) return refuse(parse_error::empty_line, "Empty command line");
  if (has_control(line)) return refuse(parse_error::control_character, "Control character in line");
  const auto space = line.find(' ');
  const auto keyword = line.substr(0, space);
  // RFC 1939 keywords are 3 or 4 letters; XCLIENT (from trusted proxies) is 7.
  if (keyword.empty() || keyword.size() > 8)
    return refuse(parse_error::unknown_command, "Unknown command");
  command cmd;
  cmd.keyword.reserve(keyword.size());
  for (char c : keyword) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c < 'A' || c > 'Z') return refuse(parse_error::unknown_command, "Unknown command");
    cmd.keyword.push_back(c);
  }
  if (space != std::string_view::npos) {
    auto rest = line.substr(space + 1);
    if (cmd.keyword == "PASS") {
      // The password is everything after the first space, spaces included.
      cmd.args.emplace_back(rest);
    } else {
      // Trailing spaces are tolerated (some clients send "STAT "); an empty
      // argument between two spaces is not.
      while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
      while (!rest.empty()) {
        const auto end = rest.find(' ');
        const auto arg = rest.substr(0, end);
        if (arg.empty()) return refuse(parse_error::syntax, "Empty argument");
        cmd.args.emplace_back(arg);
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
      }
    }
  }
  parse_step step;
  step.status = parse_status::complete;
  step.cmd = std::move(cmd);
  return step;
}

parse_step command_parser::parse_response(std::string_view line) {
  if (has_control(line)) return refuse(parse_error::control_character, "Control character in line");
  if (line != "*" && !is_base64(line))
    return refuse(parse_error::bad_base64, "Invalid base64 data in continued response");
  parse_step step;
  step.status = parse_status::complete;
  step.response = line;
  return step;
}

parse_step command_parser::feed(std::string_view input) {
  const bool auth = mode_ == input_mode::auth_continuation;
  const auto line = auth ? responses_.feed(input) : commands_.feed(input);
  parse_step step;
  if (line.status == parse_status::need_more) {
    step.consumed = line.consumed;
    return step;
  }
  if (line.status == parse_status::error) {
    step = line.error == smtp::line_error::line_too_long
               ? refuse(parse_error::line_too_long, "Line too long")
           : line.error == smtp::line_error::bare_lf
               ? refuse(parse_error::bare_lf, "Line not ended by CRLF")
               : refuse(parse_error::bare_cr, "CR inside line");
  } else {
    step = auth ? parse_response(line.line) : parse_line(line.line);
  }
  step.consumed = line.consumed;
  return step;
}

}  // namespace hamail::pop3

// Fuzz harness for the POP3 command parser and the command table. The input
// is a byte stream a client might send; it is parsed under several limits and
// policies, whole and in pseudo-random pieces, and these invariants are checked:
//   - consumed <= input; need_more consumes everything; complete and error
//     always make progress;
//   - the partial line held inside never exceeds the larger line limit;
//   - the same commands, continuation lines and errors come out however the
//     input is cut (the AUTH continuation mode is switched the same way);
//   - every -ERR text is one line of at most 512 octets;
//   - validation in both states gives exactly a request or an error, and a
//     valid request's numbers are in range and XCLIENT attributes are
//     NAME=VALUE pairs.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/pop3/command_parser.hpp"
#include "hamail/protocol/pop3/response.hpp"

namespace {

using namespace hamail::pop3;
using hamail::fuzz::require;

void check_reply(const std::string& line) {
  require(line.size() <= max_response_line, "reply within 512 octets");
  require(
      line.size() >= 6 && line.find('\n') == line.size() - 1 && line.find('\r') == line.size() - 2,
      "reply is one CRLF line");
}

std::string render(const parse_step& step) {
  if (step.status == parse_status::error) {
    require(step.error && !step.cmd && !step.response, "error step carries an error only");
    check_reply(err(*step.error));
    return "err:" + std::string(to_string(step.error->code));
  }
  if (step.response) {
    require(!step.cmd && !step.error, "response step carries a response only");
    require(*step.response == "*" || is_base64(*step.response), "response is base64 or *");
    return "rsp:" + std::string(*step.response);
  }
  require(step.cmd && !step.error, "complete step carries a command");
  const auto& cmd = *step.cmd;
  require(!cmd.keyword.empty() && cmd.keyword.size() <= 8, "keyword of 1..8 letters");
  std::string out = "cmd:" + cmd.keyword;
  for (const auto& a : cmd.args) out += "|" + a;
  for (auto state : {session_state::authorization, session_state::transaction}) {
    const auto c = validate(cmd, state);
    require(c.req.has_value() != c.error.has_value(), "validation gives request or error");
    if (c.error) {
      check_reply(err(*c.error));
      continue;
    }
    if (c.req->msg) require(*c.req->msg >= 1 && *c.req->msg <= 0x7fffffffu, "message number");
    if (c.req->lines) require(*c.req->lines <= 0x7fffffffu, "line count");
    require(c.req->attributes.empty() || c.req->what == verb::xclient,
            "attributes only on XCLIENT");
    for (const auto& [name, value] : c.req->attributes)
      require(!name.empty() && name.find('=') == std::string::npos, "attribute name is NAME");
    require(to_string(c.req->what) == cmd.keyword, "verb matches keyword");
  }
  return out;
}

std::vector<std::string> run(const std::vector<std::string_view>& pieces,
                             const command_limits& limits) {
  command_parser parser(limits);
  const std::size_t bound =
      limits.max_line > limits.max_auth_line ? limits.max_line : limits.max_auth_line;
  std::vector<std::string> out;
  std::string pending;
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto step = parser.feed(view);
      require(step.consumed <= view.size(), "consumed <= input");
      require(parser.buffered() < bound, "held partial line stays under the limit");
      if (step.status == parse_status::need_more) {
        require(step.consumed == view.size(), "need_more consumes all input");
        view = {};
        break;
      }
      require(step.consumed > 0, "a finished line consumed something");
      out.push_back(render(step));
      const bool challenge = step.cmd && step.cmd->keyword == "AUTH" && step.cmd->args.size() == 1;
      parser.set_mode(challenge ? input_mode::auth_continuation : input_mode::command);
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  const command_limits configs[] = {
      command_limits{},
      command_limits{.bare_lf = bare_lf_policy::reject},
      command_limits{.max_line = 24, .max_auth_line = 40, .bare_lf = bare_lf_policy::accept},
      command_limits{.max_line = 64, .max_auth_line = 64, .bare_lf = bare_lf_policy::reject},
  };
  for (const auto& limits : configs) {
    const auto whole = run({input}, limits);
    require(run(hamail::fuzz::pieces(input, seed, 7), limits) == whole,
            "same result when fed in small pieces");
    require(run(hamail::fuzz::pieces(input, seed >> 17, 300), limits) == whole,
            "same result when fed in large pieces");
  }
  return 0;
}

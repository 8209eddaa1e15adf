// Fuzz harness for the SMTP command parser. The input is a byte stream a
// client might send; it is parsed under several limits and policies, whole
// and in pseudo-random pieces, and these invariants are checked:
//   - consumed <= input; need_more consumes everything; complete and error
//     always make progress (no loop without progress);
//   - the partial line held inside never exceeds the line limit;
//   - the same commands and errors come out however the input is cut;
//   - a parsed command's canonical wire form parses back to the same form.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/smtp/address.hpp"
#include "hamail/protocol/smtp/command_parser.hpp"
#include "hamail/protocol/smtp/reply.hpp"

namespace {

using namespace hamail::smtp;
using hamail::fuzz::require;

std::string render(const command_parser& parser, const parse_step& step) {
  if (step.status == parse_status::error) {
    require(step.error.has_value() && !step.cmd, "error step carries an error only");
    const auto wire = reply_for(*step.error).wire();
    require(wire.size() >= 5 && wire.find('\n') == wire.size() - 1, "error reply is one line");
    return "err:" + std::string(to_string(step.error->code));
  }
  require(step.cmd.has_value() && !step.error, "complete step carries a command only");
  const std::string wire = to_wire(*step.cmd);
  require(wire.size() >= 6 && wire.compare(wire.size() - 2, 2, "\r\n") == 0,
          "wire form ends in CRLF");
  require(wire.find('\n') == wire.size() - 1 && wire.find('\r') == wire.size() - 2,
          "wire form is one line");
  const auto again = parser.parse_line(std::string_view(wire).substr(0, wire.size() - 2));
  require(again.status == parse_status::complete, "wire form parses again");
  require(to_wire(*again.cmd) == wire, "wire form is stable");
  return "cmd:" + wire;
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
      out.push_back(render(parser, step));
      if (step.cmd) {
        if (const auto* mail = std::get_if<mail_command>(&*step.cmd))
          parser.set_utf8_transaction(mail->params.smtputf8);
      }
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  return out;
}

void check_path(std::string_view text) {
  for (int mask = 0; mask < 8; ++mask) {
    const path_options options{.allow_null = (mask & 1) != 0,
                               .allow_postmaster = (mask & 2) != 0,
                               .utf8 = (mask & 4) != 0};
    const auto r = parse_path(text, options);
    if (!r.value) {
      require(!r.detail.empty(), "a refused path says why");
      continue;
    }
    require(text.size() <= max_path_length, "accepted path within 256 octets");
    const auto wire = r.value->wire();
    require(wire.size() <= text.size(), "canonical path is no longer than the original");
    const auto again = parse_path(wire, options);
    require(again.value && again.value->kind == r.value->kind &&
                again.value->box.local_part == r.value->box.local_part &&
                again.value->box.domain == r.value->box.domain &&
                again.value->box.address_literal == r.value->box.address_literal,
            "canonical path parses to the same mailbox");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  const command_limits configs[] = {
      command_limits{},
      command_limits{.bare_lf = bare_lf_policy::accept},
      command_limits{.max_line = 24, .max_auth_line = 40, .bare_lf = bare_lf_policy::reject},
      command_limits{.max_line = 64, .max_auth_line = 64, .bare_lf = bare_lf_policy::accept},
  };
  for (const auto& limits : configs) {
    const auto whole = run({input}, limits);
    require(run(hamail::fuzz::pieces(input, seed, 7), limits) == whole,
            "same result when fed in small pieces");
    require(run(hamail::fuzz::pieces(input, seed >> 17, 300), limits) == whole,
            "same result when fed in large pieces");
  }
  // The address grammar on its own, for inputs shaped like a path.
  const auto lt = input.find('<');
  if (lt != std::string_view::npos) {
    const auto gt = input.find('>', lt);
    if (gt != std::string_view::npos) check_path(input.substr(lt, gt - lt + 1));
  }
  return 0;
}

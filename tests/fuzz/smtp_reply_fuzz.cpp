// Fuzz harness for the SMTP/LMTP reply parser the relay client reads servers
// with. The input is what a server might send; it is parsed under several
// limits, whole and in pseudo-random pieces, and these invariants are checked:
//   - consumed <= input; need_more consumes everything; complete and error
//     always make progress;
//   - a reply has a code in 200..559 with a valid first two digits, 1..max_lines
//     lines, each no longer than max_line, none holding CR or LF; its enhanced
//     code, when present, is "c.x.y" with c the code's first digit;
//   - the same replies and errors come out however the input is cut.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/smtp/reply_parser.hpp"

namespace {

using namespace hamail::smtp;
using hamail::fuzz::require;

std::string render(const reply_step& step, const reply_limits& limits) {
  if (step.status == parse_status::error) {
    require(!step.reply && step.error != reply_error::none, "error step carries an error only");
    return "err:" + std::string(to_string(step.error));
  }
  require(step.reply && step.error == reply_error::none, "complete step carries a reply");
  const auto& r = *step.reply;
  require(r.code / 100 >= 2 && r.code / 100 <= 5 && (r.code / 10) % 10 <= 5, "code in range");
  require(!r.lines.empty() && r.lines.size() <= limits.max_lines, "1..max_lines lines");
  if (!r.enhanced.empty()) {
    require(r.enhanced.size() >= 5 && r.enhanced[0] == '0' + r.code / 100 && r.enhanced[1] == '.',
            "enhanced code class matches");
  }
  std::string out = std::to_string(r.code) + "|" + r.enhanced;
  for (const auto& l : r.lines) {
    // "ddd " before the text, at least LF after it; limits below 16 are raised to 16.
    require(l.size() + 5 <= (limits.max_line < 16 ? 16 : limits.max_line), "line within the limit");
    require(l.find('\n') == std::string::npos && l.find('\r') == std::string::npos,
            "no CR or LF inside a line");
    out += "|" + l;
  }
  return out;
}

std::vector<std::string> run(const std::vector<std::string_view>& pieces,
                             const reply_limits& limits) {
  reply_parser parser(limits);
  std::vector<std::string> out;
  std::string pending;
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto step = parser.feed(view);
      require(step.consumed <= view.size(), "consumed <= input");
      if (step.status == parse_status::need_more) {
        require(step.consumed == view.size(), "need_more consumes all input");
        view = {};
        break;
      }
      require(step.consumed > 0, "a finished reply or error consumed something");
      out.push_back(render(step, parser.limits()));
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  if (parser.in_reply()) out.emplace_back("partial");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  const reply_limits configs[] = {
      reply_limits{},
      reply_limits{.bare_lf = bare_lf_policy::reject},
      reply_limits{.max_line = 24, .max_lines = 3},
      reply_limits{.max_line = 64, .max_lines = 1, .bare_lf = bare_lf_policy::reject},
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

// Fuzz harness for the POP3 multi-line body encoder (dot_stuffer). The first
// input octet picks RETR or TOP n; the rest is a stored message. Checked:
//   - the streamed output equals a whole-message reference encoding, however
//     the message is cut into pieces;
//   - feed consumes everything until done, and nothing after;
//   - each feed writes at most 2 * input + 5 octets;
//   - the output is CRLF lines only at the line level: every LF is preceded
//     by CR, no line starts with a lone "." except the final ".\r\n".

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/pop3/dot_stuffer.hpp"

namespace {

using hamail::fuzz::require;
using hamail::pop3::dot_stuffer;

// The whole-message definition (same as the unit test's reference).
// `top`: TOP `lines` when true, RETR when false. (Not std::optional: GCC 12
// at -O2 warns maybe-uninitialized on it once everything is inlined.)
std::string reference(std::string_view msg, bool top, std::uint32_t lines) {
  std::string out;
  bool in_body = false;
  std::uint32_t body = 0;
  while (!msg.empty()) {
    const auto lf = msg.find('\n');
    auto line = msg.substr(0, lf);
    if (lf != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    msg.remove_prefix(lf == std::string_view::npos ? msg.size() : lf + 1);
    if (top && in_body && body >= lines) break;
    if (!line.empty() && line.front() == '.') out.push_back('.');
    out.append(line).append("\r\n");
    if (in_body)
      ++body;
    else if (line.empty())
      in_body = true;
  }
  return out + ".\r\n";
}

std::string stream(const std::vector<std::string_view>& pieces, bool top, std::uint32_t lines) {
  dot_stuffer enc = top ? dot_stuffer::top(lines) : dot_stuffer();
  std::string out;
  bool done = false;
  for (auto piece : pieces) {
    const auto before = out.size();
    const auto step = enc.feed(piece, out);
    require(step.consumed <= piece.size(), "consumed <= input");
    require(out.size() - before <= 2 * piece.size() + 5, "bounded output per feed");
    if (done) require(step.consumed == 0 && step.done, "nothing consumed after done");
    if (!step.done) require(step.consumed == piece.size(), "all consumed until done");
    done = step.done;
  }
  enc.finish(out);
  require(enc.done(), "done after finish");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool top = data[0] >= 128;
  const std::uint32_t lines = data[0] % 8;
  const std::string_view msg(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::uint64_t seed = hamail::fuzz::fnv1a(msg);
  const auto want = reference(msg, top, lines);
  require(stream({msg}, top, lines) == want, "whole feed matches the reference");
  require(stream(hamail::fuzz::pieces(msg, seed, 5), top, lines) == want,
          "small pieces match the reference");
  require(stream(hamail::fuzz::pieces(msg, seed >> 13, 200), top, lines) == want,
          "large pieces match the reference");
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == '\n') require(i > 0 && want[i - 1] == '\r', "LF only in CRLF");
  }
  return 0;
}

// Fuzz harness for the IMAP FETCH engine (daemons/backend/src/imap/fetch.cpp).
// The input up to its first NUL is what follows "a FETCH 1 " on a command
// line (literals included); the rest is a raw message. The line goes through the command parser,
// then parse_fetch under options drawn from the input's hash; a request that parses is rendered
// against the message. Invariants:
//   - parse_fetch never crashes; an accepted request is non-empty, sets_seen
//     implies needs_raw, VANISHED only with CHANGEDSINCE under UID+QRESYNC;
//   - rendering never fails except with UNKNOWN-CTE, and is deterministic;
//   - the response is one well-formed line: "* 3 FETCH (" ... ")\r\n", with
//     balanced parentheses outside strings, every {n}/~{n} literal followed
//     by exactly n octets, no NUL outside a ~{n} literal, no bare CR or LF;
//   - a request that needs no structure renders the same without one.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/mime/message.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "imap/fetch.hpp"

namespace {

using namespace hamail::backend::imap_fetch;
using hamail::fuzz::require;
namespace imap = hamail::imap;

// Walks a response from the opening parenthesis of the FETCH list to its end.
void check_wellformed(std::string_view out) {
  constexpr std::string_view head = "* 3 FETCH (";
  require(out.substr(0, head.size()) == head, "response starts with * 3 FETCH (");
  require(out.size() >= head.size() + 3 && out.substr(out.size() - 3) == ")\r\n",
          "response ends with )CRLF");
  std::size_t i = head.size() - 1;
  int depth = 0;
  const std::size_t end = out.size() - 2;  // the final CRLF
  while (i < end) {
    const char c = out[i];
    if (c == '(') {
      ++depth;
      ++i;
    } else if (c == ')') {
      --depth;
      require(depth >= 0, "parentheses balance");
      ++i;
      if (depth == 0) require(i == end, "nothing after the closing parenthesis");
    } else if (c == '"') {
      ++i;
      while (i < end && out[i] != '"') {
        require(out[i] != '\r' && out[i] != '\n' && out[i] != '\0', "no CR, LF or NUL quoted");
        if (out[i] == '\\') ++i;
        ++i;
      }
      require(i < end, "quoted string closed");
      ++i;
    } else if (c == '{' || (c == '~' && i + 1 < end && out[i + 1] == '{')) {
      const bool binary = c == '~';
      i += binary ? 2 : 1;
      std::size_t n = 0, digits = 0;
      while (i < end && out[i] >= '0' && out[i] <= '9') {
        n = n * 10 + static_cast<std::size_t>(out[i] - '0');
        ++i;
        ++digits;
        require(digits <= 12, "literal size is sane");
      }
      require(digits > 0 && out.substr(i, 3) == "}\r\n", "literal header");
      i += 3;
      require(i + n <= end, "literal inside the response");
      if (!binary)
        require(out.substr(i, n).find('\0') == std::string_view::npos, "NUL only in ~{n}");
      i += n;
    } else {
      require(c != '\r' && c != '\n' && c != '\0', "no CR, LF or NUL outside strings");
      ++i;
    }
  }
  require(depth == 0, "list closed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find('\0');
  const std::string_view items = input.substr(0, cut);
  const std::string_view raw =
      cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);
  const std::uint64_t h = hamail::fuzz::fnv1a(input);

  // The items through the real command parser, literals included.
  imap::command_parser parser;
  parser.set_utf8_accept((h & 64) != 0);
  std::string line = "a FETCH 1 ";
  line.append(items);
  line.append("\r\n");
  std::string_view rest = line;
  auto step = parser.feed(rest);
  while (step.status == imap::parse_status::need_continuation) {
    rest.remove_prefix(step.consumed);
    step = parser.feed(rest);
  }
  if (step.status != imap::parse_status::complete || !step.cmd || step.cmd->args.empty()) return 0;
  const std::vector<imap::value> args(step.cmd->args.begin() + 1, step.cmd->args.end());

  const parse_options po{.uid = (h & 1) != 0, .condstore = (h & 2) != 0, .qresync = (h & 4) != 0};
  auto parsed = parse_fetch(args, po);
  if (auto* e = std::get_if<fetch_error>(&parsed)) {
    require(!e->text.empty(), "errors say why");
    return 0;
  }
  const auto& request = std::get<fetch_request>(parsed);
  require(!request.items.empty(), "a request has items");
  require(!request.sets_seen || request.needs_raw, "setting \\Seen means reading the body");
  require(!request.vanished || (request.changedsince && po.uid && po.qresync),
          "VANISHED only with CHANGEDSINCE in UID FETCH under QRESYNC");
  require(!request.changedsince || request.wants_modseq, "CHANGEDSINCE wants MODSEQ");

  hamail::mime::parse_limits limits;
  limits.max_depth = 20;
  limits.max_parts = 200;
  const auto structure = hamail::mime::parse(raw, limits);
  hamail::store::message_info info;
  info.uid = 7;
  info.modseq = h >> 40;
  info.size = raw.size();
  info.recent = (h & 8) != 0;
  info.flags.set(hamail::store::system_flag::seen, (h & 16) != 0);
  const render_options ro{.add_uid = po.uid,
                          .add_modseq = (h & 32) != 0,
                          .add_flags_for_seen = request.sets_seen,
                          .utf8 = (h & 64) != 0,
                          .rev2 = (h & 128) != 0};
  const message_view view{.seq = 3, .info = info, .raw = raw, .structure = &structure};
  auto out = render_fetch(request, view, ro);
  if (!out) {
    require(out.err().is_permanent() && out.err().user_text == "UNKNOWN-CTE",
            "only an unknown encoding fails");
    return 0;
  }
  check_wellformed(*out);
  auto again = render_fetch(request, view, ro);
  require(again.has_value() && *again == *out, "rendering is deterministic");
  if (!request.needs_structure) {
    const message_view bare{.seq = 3, .info = info, .raw = raw};
    auto without = render_fetch(request, bare, ro);
    require(without.has_value() && *without == *out, "no structure needed, none used");
  }
  return 0;
}

// Fuzz harness for the MIME library. The input is a raw message. Invariants:
//   - parse never fails and every part's header and body ranges lie inside its
//     parent (children inside the parent's body), header.end == body.begin;
//   - parsing is deterministic: the same bytes give the same BODYSTRUCTURE;
//   - nesting stays within the depth limit;
//   - every section of every part resolves to bytes inside the message or to
//     produced bytes ending in the blank line; BINARY never reads outside;
//   - search text stays under its cap and is valid UTF-8.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/core/utf8.hpp"
#include "hamail/mime/imap_form.hpp"
#include "hamail/mime/message.hpp"
#include "hamail/mime/search_text.hpp"
#include "hamail/mime/section.hpp"

namespace {

using namespace hamail::mime;
using hamail::fuzz::require;

constexpr unsigned max_depth = 20;

void check_part(const part& p, byte_range parent, unsigned depth, std::size_t size) {
  require(depth <= max_depth, "depth within the limit");
  require(
      p.header.begin <= p.header.end && p.header.end == p.body.begin && p.body.begin <= p.body.end,
      "header then body");
  require(p.body.end <= size, "ranges inside the message");
  require(parent.begin <= p.header.begin && p.body.end <= parent.end, "part inside its parent");
  for (const auto& c : p.children) check_part(c, p.body, depth + 1, size);
}

void walk_sections(std::string_view raw, const message_structure& msg, const part& p,
                   std::vector<unsigned>& path, unsigned& budget) {
  if (budget == 0) return;
  --budget;
  static const char* const texts[] = {"",
                                      ".MIME",
                                      ".HEADER",
                                      ".TEXT",
                                      ".HEADER.FIELDS (Subject From)",
                                      ".HEADER.FIELDS.NOT (Content-Type)"};
  std::string prefix;
  for (std::size_t i = 0; i < path.size(); ++i) prefix += (i ? "." : "") + std::to_string(path[i]);
  for (const char* t : texts) {
    std::string spec = prefix + t;
    if (prefix.empty() && spec.size() > 0 && spec[0] == '.') spec.erase(0, 1);
    if (prefix.empty() && std::string_view(t) == ".MIME") continue;
    auto s = parse_section(spec);
    require(s.has_value(), "generated section specs parse");
    auto c = fetch_section(raw, msg, *s);
    if (!c) continue;
    if (c->produced_bytes) {
      require(c->produced.size() >= 2 && c->produced.substr(c->produced.size() - 2) == "\r\n",
              "produced header ends in the blank line");
    } else {
      require(c->slice.begin <= c->slice.end && c->slice.end <= raw.size(),
              "slice inside the message");
    }
  }
  auto b = fetch_binary(raw, msg, path);
  if (b) require(binary_size(raw, msg, path).has_value(), "BINARY.SIZE agrees with BINARY");
  // Number the children the way IMAP does: a message's body parts, or the part itself.
  const part* container = p.is_message() ? &p.children.front() : &p;
  if (container->is_multipart()) {
    for (unsigned i = 0; i < container->children.size(); ++i) {
      path.push_back(i + 1);
      walk_sections(raw, msg, container->children[i], path, budget);
      path.pop_back();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  parse_limits limits;
  limits.max_depth = max_depth;
  limits.max_parts = 500;
  const auto msg = parse(raw, limits);
  require(msg.size == raw.size(), "size recorded");
  check_part(msg.root, {0, raw.size()}, 0, raw.size());

  const std::string bs = body_structure_form(msg);
  require(!bs.empty() && bs.front() == '(' && bs.back() == ')', "BODYSTRUCTURE is a list");
  require(body_structure_form(parse(raw, limits)) == bs, "parsing is deterministic");
  const std::string body = body_structure_form(msg, false);
  require(body.size() <= bs.size(), "BODY is no longer than BODYSTRUCTURE");
  const std::string env = envelope_form(msg.env);
  require(env.front() == '(' && env.back() == ')', "ENVELOPE is a list");

  std::vector<unsigned> path;
  unsigned budget = 64;
  walk_sections(raw, msg, msg.root, path, budget);

  const std::size_t cap = 256;
  const auto text = extract_search_text(raw, msg, cap);
  require(text.headers.size() <= cap && text.body.size() <= cap, "search text within its cap");
  require(hamail::is_valid_utf8(text.headers) && hamail::is_valid_utf8(text.body),
          "search text is UTF-8");

  // The first line as a section spec: never crashes, whatever it says.
  const auto eol = raw.find('\n');
  if (auto s = parse_section(raw.substr(0, eol == std::string_view::npos ? raw.size() : eol))) {
    (void)fetch_section(raw, msg, *s);
  }
  return 0;
}

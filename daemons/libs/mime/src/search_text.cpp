#include "hamail/mime/search_text.hpp"

#include "gmime_support.hpp"
#include "hamail/mime/section.hpp"
#include "header_scan.hpp"

namespace hamail::mime {

namespace {

// Appends `s` to `out` without letting `out` pass `cap`, cutting before a UTF-8
// continuation byte; returns false when it had to cut.
bool append_capped(std::string& out, std::string_view s, std::size_t cap) {
  if (out.size() + s.size() <= cap) {
    out.append(s);
    return true;
  }
  std::size_t room = cap > out.size() ? cap - out.size() : 0;
  while (room > 0 && (static_cast<unsigned char>(s[room]) & 0xC0) == 0x80) --room;
  out.append(s.substr(0, room));
  return false;
}

std::string charset_of(const part& p) {
  for (const auto& prm : p.params) {
    if (detail::iequals(prm.name, "charset")) return prm.value;
  }
  return {};
}

void collect_body(std::string_view raw, const part& p, std::size_t cap, search_text& out) {
  if (out.truncated) return;
  if (p.is_multipart()) {
    for (const auto& c : p.children) collect_body(raw, c, cap, out);
    return;
  }
  if (p.is_message()) {
    collect_body(raw, p.children.front(), cap, out);
    return;
  }
  if (!p.is_text()) return;
  auto decoded = decode_transfer_encoding(raw.substr(p.body.begin, p.body.size()), p.encoding);
  // An unknown encoding is searched as it is rather than skipped.
  std::string bytes =
      decoded ? std::move(*decoded) : std::string(raw.substr(p.body.begin, p.body.size()));
  const std::string text = detail::to_utf8(bytes, charset_of(p));
  if (!out.body.empty() && !append_capped(out.body, "\n", cap)) out.truncated = true;
  if (!out.truncated && !append_capped(out.body, text, cap)) out.truncated = true;
}

}  // namespace

std::string decode_header_value(std::string_view raw_value) {
  return detail::decode_header_text(detail::unfold(raw_value));
}

search_text extract_search_text(std::string_view raw, const message_structure& msg,
                                std::size_t max_bytes, search_parts parts) {
  search_text out;
  if (raw.size() != msg.size) return out;
  std::vector<detail::raw_field> fields;
  detail::scan_header(raw, msg.root.header.begin, msg.root.header.end, fields);
  for (const auto& f : fields) {
    if (f.name.empty()) continue;
    // Field names are ASCII by RFC 5322, but mail in the wild has 8-bit bytes there.
    std::string line = detail::to_utf8(f.name, {});
    line += ": ";
    line += decode_header_value(f.raw);
    line += '\n';
    if (!append_capped(out.headers, line, max_bytes)) {
      out.truncated = true;
      break;
    }
  }
  // The body has its own cap: a huge header does not hide the body from SEARCH.
  if (parts == search_parts::headers) return out;
  const bool headers_truncated = out.truncated;
  out.truncated = false;
  collect_body(raw, msg.root, max_bytes, out);
  out.truncated = out.truncated || headers_truncated;
  return out;
}

}  // namespace hamail::mime

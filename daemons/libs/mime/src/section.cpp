#include "hamail/mime/section.hpp"

#include "gmime_support.hpp"
#include "header_scan.hpp"

namespace hamail::mime {

namespace {

using detail::iequals;

error bad_section(std::string detail) {
  return error::permanent(errc::invalid_input, "invalid section", std::move(detail));
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Where a part path leads: the part, and whether it is the body of a message
// reached without a part number (the top level).
const part* resolve(const message_structure& msg, const std::vector<unsigned>& path) {
  if (path.empty()) return &msg.root;
  const part* cur = &msg.root;
  bool at_message = true;  // cur is a message's top-level part
  for (unsigned n : path) {
    if (n == 0) return nullptr;
    if (!at_message && cur->is_message()) {
      cur = &cur->children.front();
      at_message = true;
    }
    if (cur->is_multipart()) {
      if (n > cur->children.size()) return nullptr;
      cur = &cur->children[n - 1];
    } else if (at_message && n == 1) {
      // RFC 3501: part 1 of a non-multipart message is its body.
    } else {
      return nullptr;
    }
    at_message = false;
  }
  return cur;
}

std::string filter_header(std::string_view raw, byte_range header,
                          const std::vector<std::string>& names, bool keep_matching) {
  std::vector<detail::raw_field> fields;
  detail::scan_header(raw, header.begin, header.end, fields);
  std::string out;
  for (const auto& f : fields) {
    if (f.name.empty()) continue;
    bool match = false;
    for (const auto& n : names) match = match || iequals(f.name, n);
    if (match != keep_matching) continue;
    out.append(raw.substr(f.lines.begin, f.lines.size()));
    // The last field of a header the message never ended still gets its line end.
    if (out.back() != '\n') out += "\r\n";
  }
  out += "\r\n";
  return out;
}

}  // namespace

result<section_spec> parse_section(std::string_view spec) {
  section_spec out;
  std::string_view s = spec;
  while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
    unsigned long n = 0;
    std::size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      n = n * 10 + static_cast<unsigned long>(s[i] - '0');
      if (n > 1000000) return bad_section("part number too large");
      ++i;
    }
    if (n == 0) return bad_section("part number 0");
    out.part.push_back(static_cast<unsigned>(n));
    s.remove_prefix(i);
    if (s.empty()) return out;
    if (s.front() != '.') return bad_section("expected '.' after a part number");
    s.remove_prefix(1);
    if (s.empty()) return bad_section("section ends with '.'");
  }
  if (s.empty()) return out;
  if (iequals(s, "HEADER")) {
    out.text = section_text::header;
  } else if (iequals(s, "TEXT")) {
    out.text = section_text::text;
  } else if (iequals(s, "MIME")) {
    if (out.part.empty()) return bad_section("MIME needs a part number");
    out.text = section_text::mime;
  } else if (starts_with_ci(s, "HEADER.FIELDS")) {
    s.remove_prefix(13);
    out.text = section_text::header_fields;
    if (starts_with_ci(s, ".NOT")) {
      s.remove_prefix(4);
      out.text = section_text::header_fields_not;
    }
    if (s.size() < 3 || s[0] != ' ' || s[1] != '(' || s.back() != ')') {
      return bad_section("HEADER.FIELDS needs a parenthesised list");
    }
    s = s.substr(2, s.size() - 3);
    std::string name;
    auto flush = [&] {
      if (!name.empty()) out.fields.push_back(name);
      name.clear();
    };
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (c == ' ') {
        flush();
      } else if (c == '"') {
        // a quoted astring
        ++i;
        while (i < s.size() && s[i] != '"') {
          if (s[i] == '\\' && i + 1 < s.size()) ++i;
          name.push_back(s[i++]);
        }
        if (i >= s.size()) return bad_section("unterminated quoted field name");
      } else if (static_cast<unsigned char>(c) <= ' ' || c == '(' || c == ')' || c == ':' ||
                 static_cast<unsigned char>(c) >= 0x7f) {
        return bad_section("bad character in a field name");
      } else {
        name.push_back(c);
      }
    }
    flush();
    if (out.fields.empty()) return bad_section("empty HEADER.FIELDS list");
  } else {
    return bad_section("unknown section text");
  }
  return out;
}

result<section_content> fetch_section(std::string_view raw, const message_structure& msg,
                                      const section_spec& spec) {
  if (raw.size() != msg.size)
    return error::internal_error("raw message does not match its structure");
  const part* p = resolve(msg, spec.part);
  if (p == nullptr) return error::permanent(errc::not_found, "no such message part");
  section_content c;
  // HEADER/TEXT/HEADER.FIELDS of a numbered part address the encapsulated message.
  const part* message_root =
      spec.part.empty() ? p : (p->is_message() ? &p->children.front() : nullptr);
  switch (spec.text) {
    case section_text::all:
      c.slice = spec.part.empty() ? byte_range{0, raw.size()} : p->body;
      break;
    case section_text::mime:
      c.slice = p->header;
      break;
    case section_text::header:
      if (message_root != nullptr) c.slice = message_root->header;
      break;
    case section_text::text:
      if (message_root != nullptr) c.slice = message_root->body;
      break;
    case section_text::header_fields:
    case section_text::header_fields_not:
      if (message_root != nullptr) {
        c.produced_bytes = true;
        c.produced = filter_header(raw, message_root->header, spec.fields,
                                   spec.text == section_text::header_fields);
      }
      break;
  }
  return c;
}

result<std::string> decode_transfer_encoding(std::string_view body, std::string_view encoding) {
  detail::ensure_gmime();
  if (encoding.empty() || iequals(encoding, "7bit") || iequals(encoding, "8bit") ||
      iequals(encoding, "binary")) {
    return std::string(body);
  }
  const std::string name(encoding);
  const GMimeContentEncoding enc = g_mime_content_encoding_from_string(name.c_str());
  if (enc != GMIME_CONTENT_ENCODING_BASE64 && enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
      enc != GMIME_CONTENT_ENCODING_UUENCODE) {
    return error::permanent(errc::invalid_input, "UNKNOWN-CTE",
                            "content transfer encoding " + name);
  }
  GMimeEncoding state;
  g_mime_encoding_init_decode(&state, enc);
  std::string out(g_mime_encoding_outlen(&state, body.size()) + 16, '\0');
  const std::size_t n = g_mime_encoding_flush(&state, body.data(), body.size(), out.data());
  out.resize(n);
  return out;
}

result<std::string> fetch_binary(std::string_view raw, const message_structure& msg,
                                 const std::vector<unsigned>& part_path) {
  if (raw.size() != msg.size)
    return error::internal_error("raw message does not match its structure");
  if (part_path.empty()) return std::string(raw);
  const part* p = resolve(msg, part_path);
  if (p == nullptr) return error::permanent(errc::not_found, "no such message part");
  const std::string_view body = raw.substr(p->body.begin, p->body.size());
  // Multiparts and messages may only carry identity encodings; their bodies go
  // out as they are.
  if (p->is_multipart() || p->is_message()) return std::string(body);
  return decode_transfer_encoding(body, p->encoding);
}

result<std::size_t> binary_size(std::string_view raw, const message_structure& msg,
                                const std::vector<unsigned>& part_path) {
  auto r = fetch_binary(raw, msg, part_path);
  if (!r) return std::move(r).err();
  return r->size();
}

}  // namespace hamail::mime

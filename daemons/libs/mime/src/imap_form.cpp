#include "hamail/mime/imap_form.hpp"

namespace hamail::mime {

namespace {

// hamail::protocol had no IMAP writer when this was written: a private minimal
// string form. Quoted when the value is 7-bit text without CR, LF, NUL; a
// literal otherwise (8-bit header text, RFC 3501 §4.3).
void append_string(std::string& out, std::string_view s) {
  bool quotable = s.size() < 1024;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0 || u == '\r' || u == '\n' || u >= 0x80) quotable = false;
  }
  if (quotable) {
    out.push_back('"');
    for (char c : s) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  } else {
    out += '{' + std::to_string(s.size()) + "}\r\n";
    out.append(s);
  }
}

void append_nstring(std::string& out, const std::optional<std::string>& s) {
  if (s) {
    append_string(out, *s);
  } else {
    out += "NIL";
  }
}

void append_params(std::string& out, const std::vector<param>& params) {
  if (params.empty()) {
    out += "NIL";
    return;
  }
  out.push_back('(');
  bool first = true;
  for (const auto& p : params) {
    if (!first) out.push_back(' ');
    first = false;
    append_string(out, p.name);
    out.push_back(' ');
    append_string(out, p.value);
  }
  out.push_back(')');
}

void append_addresses(std::string& out, const std::vector<address>& list) {
  if (list.empty()) {
    out += "NIL";
    return;
  }
  out.push_back('(');
  for (const auto& a : list) {
    out.push_back('(');
    append_nstring(out, a.name);
    out.push_back(' ');
    append_nstring(out, a.adl);
    out.push_back(' ');
    append_nstring(out, a.mailbox);
    out.push_back(' ');
    append_nstring(out, a.host);
    out.push_back(')');
  }
  out.push_back(')');
}

void append_envelope(std::string& out, const envelope& e) {
  out.push_back('(');
  append_nstring(out, e.date);
  out.push_back(' ');
  append_nstring(out, e.subject);
  for (const auto* list : {&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc}) {
    out.push_back(' ');
    append_addresses(out, *list);
  }
  out.push_back(' ');
  append_nstring(out, e.in_reply_to);
  out.push_back(' ');
  append_nstring(out, e.message_id);
  out.push_back(')');
}

// body-ext-1part / body-ext-mpart tail shared by both: dsp, lang, loc.
void append_disposition_language_location(std::string& out, const part& p) {
  out.push_back(' ');
  if (p.disposition) {
    out.push_back('(');
    append_string(out, *p.disposition);
    out.push_back(' ');
    append_params(out, p.disposition_params);
    out.push_back(')');
  } else {
    out += "NIL";
  }
  out.push_back(' ');
  if (p.language.empty()) {
    out += "NIL";
  } else if (p.language.size() == 1) {
    append_string(out, p.language.front());
  } else {
    out.push_back('(');
    for (std::size_t i = 0; i < p.language.size(); ++i) {
      if (i > 0) out.push_back(' ');
      append_string(out, p.language[i]);
    }
    out.push_back(')');
  }
  out.push_back(' ');
  append_nstring(out, p.location);
}

void append_part(std::string& out, const part& p, bool ext) {
  out.push_back('(');
  if (p.is_multipart()) {
    for (const auto& c : p.children) append_part(out, c, ext);
    out.push_back(' ');
    append_string(out, p.subtype);
    if (ext) {
      out.push_back(' ');
      append_params(out, p.params);
      append_disposition_language_location(out, p);
    }
    out.push_back(')');
    return;
  }
  append_string(out, p.type);
  out.push_back(' ');
  append_string(out, p.subtype);
  out.push_back(' ');
  append_params(out, p.params);
  out.push_back(' ');
  append_nstring(out, p.id);
  out.push_back(' ');
  append_nstring(out, p.description);
  out.push_back(' ');
  append_string(out, p.encoding);
  out += ' ' + std::to_string(p.body.size());
  if (p.is_message()) {
    out.push_back(' ');
    append_envelope(out, p.message_envelope ? *p.message_envelope : envelope{});
    out.push_back(' ');
    append_part(out, p.children.front(), ext);
    out += ' ' + std::to_string(p.lines);
  } else if (p.is_text()) {
    out += ' ' + std::to_string(p.lines);
  }
  if (ext) {
    out.push_back(' ');
    append_nstring(out, p.md5);
    append_disposition_language_location(out, p);
  }
  out.push_back(')');
}

}  // namespace

std::string envelope_form(const envelope& env) {
  std::string out;
  append_envelope(out, env);
  return out;
}

std::string body_structure_form(const message_structure& msg, bool extensible) {
  std::string out;
  append_part(out, msg.root, extensible);
  return out;
}

}  // namespace hamail::mime

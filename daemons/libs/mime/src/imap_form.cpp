#include "hamail/mime/imap_form.hpp"

#include "hamail/protocol/imap/writer.hpp"

namespace hamail::mime {

namespace {

// Every string goes through hamail::imap's writer: quoted when it can be, a literal
// otherwise (8-bit header text without UTF8=ACCEPT, CR/LF, long values).
struct writer {
  std::string& out;
  const imap::write_options& options;

  void string(std::string_view s) { imap::append_string(out, s, options); }
  void nstring(const std::optional<std::string>& s) {
    imap::append_nstring(out, s ? std::optional<std::string_view>(*s) : std::nullopt, options);
  }
};

void append_params(writer& w, const std::vector<param>& params) {
  auto& out = w.out;
  if (params.empty()) {
    out += "NIL";
    return;
  }
  out.push_back('(');
  bool first = true;
  for (const auto& p : params) {
    if (!first) out.push_back(' ');
    first = false;
    w.string(p.name);
    out.push_back(' ');
    w.string(p.value);
  }
  out.push_back(')');
}

void append_addresses(writer& w, const std::vector<address>& list) {
  auto& out = w.out;
  if (list.empty()) {
    out += "NIL";
    return;
  }
  out.push_back('(');
  for (const auto& a : list) {
    out.push_back('(');
    w.nstring(a.name);
    out.push_back(' ');
    w.nstring(a.adl);
    out.push_back(' ');
    w.nstring(a.mailbox);
    out.push_back(' ');
    w.nstring(a.host);
    out.push_back(')');
  }
  out.push_back(')');
}

void append_envelope(writer& w, const envelope& e) {
  auto& out = w.out;
  out.push_back('(');
  w.nstring(e.date);
  out.push_back(' ');
  w.nstring(e.subject);
  for (const auto* list : {&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc}) {
    out.push_back(' ');
    append_addresses(w, *list);
  }
  out.push_back(' ');
  w.nstring(e.in_reply_to);
  out.push_back(' ');
  w.nstring(e.message_id);
  out.push_back(')');
}

// body-ext-1part / body-ext-mpart tail shared by both: dsp, lang, loc.
void append_disposition_language_location(writer& w, const part& p) {
  auto& out = w.out;
  out.push_back(' ');
  if (p.disposition) {
    out.push_back('(');
    w.string(*p.disposition);
    out.push_back(' ');
    append_params(w, p.disposition_params);
    out.push_back(')');
  } else {
    out += "NIL";
  }
  out.push_back(' ');
  if (p.language.empty()) {
    out += "NIL";
  } else if (p.language.size() == 1) {
    w.string(p.language.front());
  } else {
    out.push_back('(');
    for (std::size_t i = 0; i < p.language.size(); ++i) {
      if (i > 0) out.push_back(' ');
      w.string(p.language[i]);
    }
    out.push_back(')');
  }
  out.push_back(' ');
  w.nstring(p.location);
}

void append_part(writer& w, const part& p, bool ext) {
  auto& out = w.out;
  out.push_back('(');
  if (p.is_multipart()) {
    for (const auto& c : p.children) append_part(w, c, ext);
    out.push_back(' ');
    w.string(p.subtype);
    if (ext) {
      out.push_back(' ');
      append_params(w, p.params);
      append_disposition_language_location(w, p);
    }
    out.push_back(')');
    return;
  }
  w.string(p.type);
  out.push_back(' ');
  w.string(p.subtype);
  out.push_back(' ');
  append_params(w, p.params);
  out.push_back(' ');
  w.nstring(p.id);
  out.push_back(' ');
  w.nstring(p.description);
  out.push_back(' ');
  w.string(p.encoding);
  out += ' ' + std::to_string(p.body.size());
  if (p.is_message()) {
    out.push_back(' ');
    append_envelope(w, p.message_envelope ? *p.message_envelope : envelope{});
    out.push_back(' ');
    append_part(w, p.children.front(), ext);
    out += ' ' + std::to_string(p.lines);
  } else if (p.is_text()) {
    out += ' ' + std::to_string(p.lines);
  }
  if (ext) {
    out.push_back(' ');
    w.nstring(p.md5);
    append_disposition_language_location(w, p);
  }
  out.push_back(')');
}

}  // namespace

std::string envelope_form(const envelope& env, const imap::write_options& options) {
  std::string out;
  writer w{out, options};
  append_envelope(w, env);
  return out;
}

std::string body_structure_form(const message_structure& msg, bool extensible,
                                const imap::write_options& options) {
  std::string out;
  writer w{out, options};
  append_part(w, msg.root, extensible);
  return out;
}

}  // namespace hamail::mime

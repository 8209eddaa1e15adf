#include "imap/fetch.hpp"

#include <chrono>
#include <cstdio>
#include <limits>
#include <utility>

#include "hamail/mime/imap_form.hpp"
#include "hamail/protocol/imap/writer.hpp"

namespace hamail::backend::imap_fetch {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

bool ends_with_ci(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

fetch_error bad(std::string text) { return fetch_error{std::move(text)}; }

// The section text of a value tree: [] gives the empty spec, [1.2.MIME] one
// atom (or a number for [1]), [HEADER.FIELDS (a b)] an atom then a list.
std::variant<mime::section_spec, fetch_error> read_section(const imap::value& v) {
  const auto& items = v.items;
  if (items.empty()) return mime::section_spec{};
  const auto& first = items.front();
  if (first.kind != imap::value_kind::atom && first.kind != imap::value_kind::number) {
    return bad("Invalid section");
  }
  if (items.size() == 1) {
    if (ends_with_ci(first.text, "HEADER.FIELDS") || ends_with_ci(first.text, "HEADER.FIELDS.NOT"))
      return bad("HEADER.FIELDS needs a list of field names");
    auto spec = mime::parse_section(first.text);
    if (!spec) return bad("Invalid section");
    return std::move(spec).value();
  }
  if (items.size() != 2 || first.kind != imap::value_kind::atom ||
      items[1].kind != imap::value_kind::list || items[1].has_section) {
    return bad("Invalid section");
  }
  // Only the part number and the keyword go through the text parser; the
  // field names are taken as the client sent them (quoted, literal or atom).
  auto spec = mime::parse_section(first.text + " (x)");
  if (!spec || (spec->text != mime::section_text::header_fields &&
                spec->text != mime::section_text::header_fields_not)) {
    return bad("Invalid section");
  }
  if (items[1].items.empty()) return bad("HEADER.FIELDS needs at least one field name");
  spec->fields.clear();
  for (const auto& name : items[1].items) {
    if (!name.is_astring() || name.kind == imap::value_kind::nil) {
      return bad("Invalid header field name");
    }
    spec->fields.push_back(name.text);
  }
  return std::move(spec).value();
}

void note_needs(fetch_request& r, const fetch_item& item) {
  switch (item.kind) {
    case item_kind::body:
    case item_kind::body_structure:
    case item_kind::envelope:
      r.needs_structure = true;
      break;
    case item_kind::rfc822:
      r.needs_raw = true;
      r.sets_seen = true;
      break;
    case item_kind::rfc822_header:
      r.needs_raw = r.needs_structure = true;
      break;
    case item_kind::rfc822_text:
      r.needs_raw = r.needs_structure = true;
      r.sets_seen = true;
      break;
    case item_kind::body_section:
      r.needs_raw = true;
      if (!item.section.part.empty() || item.section.text != mime::section_text::all)
        r.needs_structure = true;
      if (!item.peek) r.sets_seen = true;
      break;
    case item_kind::binary:
      r.needs_raw = true;
      if (!item.section.part.empty()) r.needs_structure = true;
      if (!item.peek) r.sets_seen = true;
      break;
    case item_kind::binary_size:
      // BINARY.SIZE[] is the stored size; a part's size needs it decoded.
      if (!item.section.part.empty()) r.needs_raw = r.needs_structure = true;
      break;
    case item_kind::modseq:
      r.wants_modseq = true;
      break;
    case item_kind::flags:
    case item_kind::internal_date:
    case item_kind::rfc822_size:
    case item_kind::uid:
      break;
  }
}

std::variant<fetch_item, fetch_error> read_item(const imap::value& v, const parse_options& o) {
  if (v.kind != imap::value_kind::atom) return bad("Invalid FETCH item");
  const std::string_view name = v.text;
  fetch_item item;
  if (v.has_section) {
    if (iequals(name, "BODY") || iequals(name, "BODY.PEEK")) {
      item.kind = item_kind::body_section;
      item.peek = name.size() > 4;
      auto s = read_section(v);
      if (auto* e = std::get_if<fetch_error>(&s)) return std::move(*e);
      item.section = std::move(std::get<mime::section_spec>(s));
    } else if (iequals(name, "BINARY") || iequals(name, "BINARY.PEEK") ||
               iequals(name, "BINARY.SIZE")) {
      item.kind = iequals(name, "BINARY.SIZE") ? item_kind::binary_size : item_kind::binary;
      item.peek = iequals(name, "BINARY.PEEK");
      // section-binary = "[" [section-part] "]": part numbers only.
      if (v.items.size() > 1) return bad("BINARY takes only a part number");
      if (v.items.size() == 1) {
        const auto& p = v.items.front();
        if (p.kind != imap::value_kind::atom && p.kind != imap::value_kind::number)
          return bad("BINARY takes only a part number");
        auto spec = mime::parse_section(p.text);
        if (!spec || spec->text != mime::section_text::all)
          return bad("BINARY takes only a part number");
        item.section = std::move(spec).value();
      }
      if (item.kind == item_kind::binary_size && v.partial)
        return bad("BINARY.SIZE takes no partial range");
    } else {
      return bad("Invalid FETCH item");
    }
    item.partial = v.partial;
    return item;
  }
  static constexpr std::pair<std::string_view, item_kind> simple[] = {
      {"BODY", item_kind::body},
      {"BODYSTRUCTURE", item_kind::body_structure},
      {"ENVELOPE", item_kind::envelope},
      {"FLAGS", item_kind::flags},
      {"INTERNALDATE", item_kind::internal_date},
      {"RFC822", item_kind::rfc822},
      {"RFC822.HEADER", item_kind::rfc822_header},
      {"RFC822.SIZE", item_kind::rfc822_size},
      {"RFC822.TEXT", item_kind::rfc822_text},
      {"UID", item_kind::uid},
      {"MODSEQ", item_kind::modseq},
  };
  for (const auto& [word, kind] : simple) {
    if (!iequals(name, word)) continue;
    if (kind == item_kind::modseq && !o.condstore) break;
    item.kind = kind;
    if (kind == item_kind::rfc822_header) {
      item.section.text = mime::section_text::header;
    } else if (kind == item_kind::rfc822_text) {
      item.section.text = mime::section_text::text;
    }
    return item;
  }
  return bad("Invalid FETCH item " + std::string(name.substr(0, 64)));
}

std::optional<fetch_error> read_modifiers(const imap::value& v, const parse_options& o,
                                          fetch_request& r) {
  if (v.kind != imap::value_kind::list || v.items.empty()) return bad("Invalid FETCH modifiers");
  const auto& m = v.items;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i].is_atom("CHANGEDSINCE")) {
      if (!o.condstore) return bad("CHANGEDSINCE is not supported");
      if (r.changedsince) return bad("CHANGEDSINCE given twice");
      // mod-sequence-value is a positive 63-bit number; 0 is taken as "all".
      if (i + 1 >= m.size() || m[i + 1].kind != imap::value_kind::number ||
          m[i + 1].number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return bad("CHANGEDSINCE needs a mod-sequence value");
      }
      r.changedsince = m[++i].number;
    } else if (m[i].is_atom("VANISHED")) {
      if (!o.qresync) return bad("VANISHED needs QRESYNC enabled");
      if (!o.uid) return bad("VANISHED is only valid in UID FETCH");
      if (r.vanished) return bad("VANISHED given twice");
      r.vanished = true;
    } else {
      return bad("Invalid FETCH modifier");
    }
  }
  if (r.vanished && !r.changedsince) return bad("VANISHED needs CHANGEDSINCE");
  if (r.changedsince) r.wants_modseq = true;
  return std::nullopt;
}

// ---- rendering ----

constexpr std::string_view month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void append_section_echo(std::string& out, const mime::section_spec& s,
                         const imap::write_options& wo) {
  for (std::size_t i = 0; i < s.part.size(); ++i) {
    if (i > 0) out += '.';
    out += std::to_string(s.part[i]);
  }
  std::string_view text;
  switch (s.text) {
    case mime::section_text::all:
      return;
    case mime::section_text::header:
      text = "HEADER";
      break;
    case mime::section_text::header_fields:
      text = "HEADER.FIELDS";
      break;
    case mime::section_text::header_fields_not:
      text = "HEADER.FIELDS.NOT";
      break;
    case mime::section_text::text:
      text = "TEXT";
      break;
    case mime::section_text::mime:
      text = "MIME";
      break;
  }
  if (!s.part.empty()) out += '.';
  out += text;
  if (s.text == mime::section_text::header_fields ||
      s.text == mime::section_text::header_fields_not) {
    out += " (";
    for (std::size_t i = 0; i < s.fields.size(); ++i) {
      if (i > 0) out += ' ';
      imap::append_astring(out, s.fields[i], wo);
    }
    out += ')';
  }
}

std::string_view apply_partial(std::string_view content,
                               const std::optional<imap::partial_range>& partial) {
  if (!partial) return content;
  if (partial->offset >= content.size()) return {};
  return content.substr(static_cast<std::size_t>(partial->offset),
                        static_cast<std::size_t>(std::min<std::uint64_t>(
                            partial->count, content.size() - partial->offset)));
}

// A literal for BODY data: a NUL may not appear in {n}, so it goes out as 0x80
// (what a client displays as a replacement), keeping every offset.
void append_body_literal(std::string& out, std::string_view content) {
  if (content.empty()) {
    out += "\"\"";
    return;
  }
  imap::append_literal_header(out, content.size());
  const std::size_t start = out.size();
  out.append(content);
  for (std::size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\0') out[i] = static_cast<char>(0x80);
  }
}

// The ENVELOPE and BODYSTRUCTURE forms write a header value holding a NUL as a
// {n} literal, where a NUL may not appear (and ~{n} is not allowed there). A
// quoted string never holds one, so every NUL in the form is inside a literal:
// 0x80 in its place keeps the literal's size right.
void append_form(std::string& out, const std::string& form) {
  const std::size_t start = out.size();
  out += form;
  if (form.find('\0') == std::string::npos) return;
  for (std::size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\0') out[i] = static_cast<char>(0x80);
  }
}

void append_binary_literal(std::string& out, std::string_view content) {
  if (content.empty()) {
    out += "\"\"";
    return;
  }
  imap::append_literal(out, content, content.find('\0') != std::string_view::npos);
}

error missing(std::string_view what) {
  return error::internal_error("FETCH rendered without the message's " + std::string(what));
}

}  // namespace

std::variant<fetch_request, fetch_error> parse_fetch(std::span<const imap::value> args,
                                                     const parse_options& options) {
  if (args.empty()) return bad("Missing FETCH items");
  if (args.size() > 2) return bad("Too many FETCH arguments");
  fetch_request r;
  const auto& first = args.front();
  auto add = [&](const imap::value& v) -> std::optional<fetch_error> {
    auto item = read_item(v, options);
    if (auto* e = std::get_if<fetch_error>(&item)) return std::move(*e);
    r.items.push_back(std::move(std::get<fetch_item>(item)));
    note_needs(r, r.items.back());
    return std::nullopt;
  };
  auto add_kinds = [&](std::initializer_list<item_kind> kinds) {
    for (auto k : kinds) {
      r.items.push_back(fetch_item{.kind = k});
      note_needs(r, r.items.back());
    }
  };
  if (first.kind == imap::value_kind::list) {
    if (first.items.empty()) return bad("Empty FETCH item list");
    for (const auto& v : first.items) {
      if (auto e = add(v)) return std::move(*e);
    }
  } else if (first.is_atom("ALL") && !first.has_section) {
    add_kinds(
        {item_kind::flags, item_kind::internal_date, item_kind::rfc822_size, item_kind::envelope});
  } else if (first.is_atom("FAST") && !first.has_section) {
    add_kinds({item_kind::flags, item_kind::internal_date, item_kind::rfc822_size});
  } else if (first.is_atom("FULL") && !first.has_section) {
    add_kinds({item_kind::flags, item_kind::internal_date, item_kind::rfc822_size,
               item_kind::envelope, item_kind::body});
  } else if (auto e = add(first)) {
    return std::move(*e);
  }
  if (args.size() == 2) {
    if (auto e = read_modifiers(args[1], options, r)) return std::move(*e);
  }
  return r;
}

bool selected_by(const fetch_request& request, const store::message_info& info) noexcept {
  return !request.changedsince || info.modseq > *request.changedsince;
}

std::string internal_date_text(store::internal_date date) {
  using namespace std::chrono;
  const auto day = floor<days>(date);
  const year_month_day ymd(day);
  const hh_mm_ss<seconds> t(date - day);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%02u-%s-%04d %02d:%02d:%02d +0000",
                static_cast<unsigned>(ymd.day()),
                month_names[static_cast<unsigned>(ymd.month()) - 1].data(),
                static_cast<int>(ymd.year()), static_cast<int>(t.hours().count()),
                static_cast<int>(t.minutes().count()), static_cast<int>(t.seconds().count()));
  return buf;
}

void append_flag_list(std::string& out, const store::message_flags& flags, bool recent) {
  using store::system_flag;
  static constexpr std::pair<system_flag, std::string_view> names[] = {
      {system_flag::answered, "\\Answered"}, {system_flag::flagged, "\\Flagged"},
      {system_flag::deleted, "\\Deleted"},   {system_flag::seen, "\\Seen"},
      {system_flag::draft, "\\Draft"},
  };
  out += '(';
  bool first = true;
  auto put = [&](std::string_view word) {
    if (!first) out += ' ';
    first = false;
    out += word;
  };
  for (const auto& [f, word] : names) {
    if (flags.has(f)) put(word);
  }
  if (recent) put("\\Recent");
  for (const auto& k : flags.keywords) put(k);
  out += ')';
}

std::string flag_list(const store::message_flags& flags, bool recent) {
  std::string out;
  append_flag_list(out, flags, recent);
  return out;
}

std::string flags_response(std::uint32_t seq, const store::message_flags& flags,
                           std::optional<store::imap_uid> uid, std::optional<store::mod_seq> modseq,
                           bool recent) {
  std::string out = "* " + std::to_string(seq) + " FETCH (FLAGS ";
  append_flag_list(out, flags, recent);
  if (uid) out += " UID " + std::to_string(*uid);
  if (modseq) out += " MODSEQ (" + std::to_string(*modseq) + ")";
  out += ")\r\n";
  return out;
}

result<std::string> render_fetch(const fetch_request& request, const message_view& m,
                                 const render_options& o) {
  const imap::write_options wo{.utf8 = o.utf8 || o.rev2};
  const auto& info = m.info;
  const mime::message_structure* s = m.structure;
  if (request.needs_structure && s == nullptr) return missing("structure");
  if (request.needs_raw && s != nullptr && m.raw.size() != s->size) return missing("bytes");

  bool has_uid = false, has_flags = false, has_modseq = false;
  for (const auto& item : request.items) {
    has_uid = has_uid || item.kind == item_kind::uid;
    has_flags = has_flags || item.kind == item_kind::flags;
    has_modseq = has_modseq || item.kind == item_kind::modseq;
  }

  std::string out = "* " + std::to_string(m.seq) + " FETCH (";
  bool first = true;
  auto next = [&]() -> std::string& {
    if (!first) out += ' ';
    first = false;
    return out;
  };
  auto put_flags = [&] {
    next() += "FLAGS ";
    append_flag_list(out, info.flags, info.recent && !o.rev2);
  };
  auto put_modseq = [&] { next() += "MODSEQ (" + std::to_string(info.modseq) + ")"; };

  if (o.add_uid && !has_uid) next() += "UID " + std::to_string(info.uid);
  for (const auto& item : request.items) {
    switch (item.kind) {
      case item_kind::body:
        next() += "BODY ";
        append_form(out, mime::body_structure_form(*s, false, wo));
        break;
      case item_kind::body_structure:
        next() += "BODYSTRUCTURE ";
        append_form(out, mime::body_structure_form(*s, true, wo));
        break;
      case item_kind::envelope:
        next() += "ENVELOPE ";
        append_form(out, mime::envelope_form(s->env, wo));
        break;
      case item_kind::flags:
        put_flags();
        break;
      case item_kind::internal_date:
        next() += "INTERNALDATE \"" + internal_date_text(info.date) + "\"";
        break;
      case item_kind::rfc822:
        next() += "RFC822 ";
        append_body_literal(out, m.raw);
        break;
      case item_kind::rfc822_size:
        next() += "RFC822.SIZE " + std::to_string(info.size);
        break;
      case item_kind::uid:
        next() += "UID " + std::to_string(info.uid);
        break;
      case item_kind::modseq:
        put_modseq();
        break;
      case item_kind::rfc822_header:
      case item_kind::rfc822_text:
      case item_kind::body_section: {
        std::optional<std::string_view> content;
        mime::section_content c;
        if (item.section.part.empty() && item.section.text == mime::section_text::all) {
          content = m.raw;
        } else {
          auto got = mime::fetch_section(m.raw, *s, item.section);
          if (got) {
            c = std::move(got).value();
            content = c.text(m.raw);
          } else if (got.err().code != errc::not_found) {
            return std::move(got).err();
          }
        }
        if (item.kind == item_kind::rfc822_header) {
          next() += "RFC822.HEADER ";
        } else if (item.kind == item_kind::rfc822_text) {
          next() += "RFC822.TEXT ";
        } else {
          next() += "BODY[";
          append_section_echo(out, item.section, wo);
          out += ']';
          if (item.partial) out += "<" + std::to_string(item.partial->offset) + ">";
          out += ' ';
        }
        if (content) {
          append_body_literal(out, apply_partial(*content, item.partial));
        } else {
          out += "NIL";
        }
        break;
      }
      case item_kind::binary:
      case item_kind::binary_size: {
        std::optional<std::string> decoded;
        if (item.section.part.empty()) {
          decoded.emplace();  // the whole message is never decoded: no copy needed
        } else {
          auto got = mime::fetch_binary(m.raw, *s, item.section.part);
          if (got) {
            decoded = std::move(got).value();
          } else if (got.err().code != errc::not_found) {
            return std::move(got).err();
          }
        }
        const std::string_view content = !decoded                    ? std::string_view()
                                         : item.section.part.empty() ? m.raw
                                                                     : *decoded;
        next() += item.kind == item_kind::binary ? "BINARY[" : "BINARY.SIZE[";
        append_section_echo(out, item.section, wo);
        out += "] ";
        if (item.kind == item_kind::binary_size) {
          out += std::to_string(item.section.part.empty() ? info.size : content.size());
        } else if (decoded) {
          append_binary_literal(out, apply_partial(content, item.partial));
        } else {
          out += "NIL";
        }
        break;
      }
    }
  }
  if (o.add_flags_for_seen && !has_flags) put_flags();
  if ((o.add_modseq || request.changedsince) && !has_modseq) put_modseq();
  out += ")\r\n";
  return out;
}

}  // namespace hamail::backend::imap_fetch

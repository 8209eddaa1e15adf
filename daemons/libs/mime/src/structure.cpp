#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gmime_support.hpp"
#include "hamail/mime/message.hpp"
#include "hamail/mime/search_text.hpp"
#include "header_scan.hpp"

namespace hamail::mime {

namespace detail {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto l = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (l(a[i]) != l(b[i])) return false;
  }
  return true;
}

namespace {

// End of the line starting at `pos` (the index of its LF, or `end`).
std::size_t line_end(std::string_view msg, std::size_t pos, std::size_t end) {
  const void* lf = std::memchr(msg.data() + pos, '\n', end - pos);
  return lf == nullptr ? end : static_cast<std::size_t>(static_cast<const char*>(lf) - msg.data());
}

bool is_blank_line(std::string_view msg, std::size_t pos, std::size_t lf) {
  return lf == pos || (lf == pos + 1 && msg[pos] == '\r');
}

}  // namespace

std::size_t scan_header(std::string_view msg, std::size_t begin, std::size_t end,
                        std::vector<raw_field>& fields) {
  std::size_t pos = begin;
  while (pos < end) {
    const std::size_t lf = line_end(msg, pos, end);
    const std::size_t next = lf < end ? lf + 1 : end;
    if (lf < end && is_blank_line(msg, pos, lf)) return next;
    if (lf == end && pos == end) break;
    const char first = msg[pos];
    if ((first == ' ' || first == '\t') && !fields.empty()) {
      // A continuation line extends the previous field.
      auto& f = fields.back();
      std::size_t content_end = lf;
      if (content_end > pos && msg[content_end - 1] == '\r') --content_end;
      f.raw = msg.substr(f.raw.data() - msg.data(),
                         content_end - static_cast<std::size_t>(f.raw.data() - msg.data()));
      f.lines.end = next;
    } else {
      std::size_t content_end = lf;
      if (content_end > pos && msg[content_end - 1] == '\r') --content_end;
      const std::string_view line = msg.substr(pos, content_end - pos);
      const auto colon = line.find(':');
      raw_field f;
      if (colon != std::string_view::npos) {
        std::string_view name = line.substr(0, colon);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
        f.name = name;
        f.raw = line.substr(colon + 1);
      } else {
        f.raw = line.substr(line.size());
      }
      f.lines = {pos, next};
      fields.push_back(f);
    }
    pos = next;
  }
  return end;
}

std::string unfold(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  const auto first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const auto last = out.find_last_not_of(" \t");
  return out.substr(first, last - first + 1);
}

}  // namespace detail

bool part::is_multipart() const noexcept {
  return detail::iequals(type, "multipart") && !children.empty();
}

bool part::is_message() const noexcept {
  return detail::iequals(type, "message") &&
         (detail::iequals(subtype, "rfc822") || detail::iequals(subtype, "global")) &&
         children.size() == 1;
}

bool part::is_text() const noexcept { return detail::iequals(type, "text"); }

namespace {

using detail::iequals;
using detail::raw_field;
using detail::unfold;

const raw_field* find_field(const std::vector<raw_field>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (iequals(f.name, name)) return &f;
  }
  return nullptr;
}

std::optional<std::string> field_value(const std::vector<raw_field>& fields,
                                       std::string_view name) {
  const auto* f = find_field(fields, name);
  if (f == nullptr) return std::nullopt;
  return unfold(f->raw);
}

std::vector<param> params_of(GMimeParamList* list) {
  std::vector<param> out;
  if (list == nullptr) return out;
  const int n = g_mime_param_list_length(list);
  for (int i = 0; i < n; ++i) {
    GMimeParam* p = g_mime_param_list_get_parameter_at(list, i);
    const char* name = g_mime_param_get_name(p);
    const char* value = g_mime_param_get_value(p);
    out.push_back({name ? name : "", value ? value : ""});
  }
  return out;
}

bool has_8bit(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

bool is_ascii(const char* s) { return !has_8bit(s); }

void add_addresses(InternetAddressList* list, bool raw_8bit, std::vector<address>& out, int depth) {
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* ia = internet_address_list_get_address(list, i);
    const char* name = internet_address_get_name(ia);
    std::optional<std::string> display;
    if (name != nullptr && *name != '\0') {
      // RFC 3501 wants the name as it was in the header. GMime decodes encoded
      // words; when the raw header was ASCII, encode the name again so the
      // client sees an RFC 2047 form (not byte-identical to the original).
      if (!raw_8bit && !is_ascii(name)) {
        display = detail::take_string(g_mime_utils_header_encode_phrase(nullptr, name, "utf-8"));
      } else {
        display = name;
      }
    }
    if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      if (depth > 0) continue;  // RFC 5322 groups do not nest
      out.push_back({std::nullopt, std::nullopt, display.value_or(""), std::nullopt});
      add_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), raw_8bit, out,
                    depth + 1);
      out.push_back({});
    } else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
      const std::string a = addr != nullptr ? addr : "";
      address entry;
      entry.name = display;
      const auto at = a.rfind('@');
      // Dovecot's placeholders for the halves a broken address lacks.
      if (at == std::string::npos) {
        entry.mailbox = a.empty() ? std::string("MISSING_MAILBOX") : a;
        entry.host = "MISSING_DOMAIN";
      } else {
        entry.mailbox = at == 0 ? std::string("MISSING_MAILBOX") : a.substr(0, at);
        entry.host = at + 1 == a.size() ? std::string("MISSING_DOMAIN") : a.substr(at + 1);
      }
      out.push_back(std::move(entry));
    }
  }
}

std::vector<address> address_list(const std::vector<raw_field>& fields, std::string_view name) {
  std::vector<address> out;
  const auto* f = find_field(fields, name);
  if (f == nullptr) return out;
  const std::string value = unfold(f->raw);
  if (value.empty()) return out;
  detail::gobject_ptr<InternetAddressList> list(
      internet_address_list_parse(nullptr, value.c_str()));
  if (list) add_addresses(list.get(), has_8bit(value), out, 0);
  return out;
}

envelope make_envelope(const std::vector<raw_field>& fields) {
  envelope e;
  e.date = field_value(fields, "date");
  e.subject = field_value(fields, "subject");
  e.from = address_list(fields, "from");
  e.sender = address_list(fields, "sender");
  e.reply_to = address_list(fields, "reply-to");
  e.to = address_list(fields, "to");
  e.cc = address_list(fields, "cc");
  e.bcc = address_list(fields, "bcc");
  e.in_reply_to = field_value(fields, "in-reply-to");
  e.message_id = field_value(fields, "message-id");
  if (e.sender.empty()) e.sender = e.from;
  if (e.reply_to.empty()) e.reply_to = e.from;
  return e;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f ||
        std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::size_t count_lf(std::string_view s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

struct parser {
  std::string_view msg;
  parse_limits limits;
  std::size_t parts = 0;

  void content_type(const std::vector<raw_field>& fields, bool digest_child, part& p) {
    if (digest_child) {
      p.type = "message";
      p.subtype = "rfc822";
    }
    const auto value = field_value(fields, "content-type");
    if (value && value->find('/') != std::string::npos) {
      detail::gobject_ptr<GMimeContentType> ct(g_mime_content_type_parse(nullptr, value->c_str()));
      const char* t = ct ? g_mime_content_type_get_media_type(ct.get()) : nullptr;
      const char* s = ct ? g_mime_content_type_get_media_subtype(ct.get()) : nullptr;
      if (t != nullptr && s != nullptr && *t != '\0' && *s != '\0') {
        p.type = t;
        p.subtype = s;
        p.params = params_of(g_mime_content_type_get_parameters(ct.get()));
      }
    }
    if (p.is_text() && p.params.empty()) p.params.push_back({"charset", "us-ascii"});
  }

  void mime_fields(const std::vector<raw_field>& fields, part& p) {
    p.id = field_value(fields, "content-id");
    p.description = field_value(fields, "content-description");
    if (auto enc = field_value(fields, "content-transfer-encoding"); enc && is_token(*enc)) {
      // Like Dovecot, a value that is not an RFC 2045 token is reported as 7bit.
      p.encoding = *enc;
    }
    p.md5 = field_value(fields, "content-md5");
    p.location = field_value(fields, "content-location");
    if (auto dsp = field_value(fields, "content-disposition"); dsp && !dsp->empty()) {
      detail::gobject_ptr<GMimeContentDisposition> d(
          g_mime_content_disposition_parse(nullptr, dsp->c_str()));
      const char* type = d ? g_mime_content_disposition_get_disposition(d.get()) : nullptr;
      if (type != nullptr && *type != '\0') {
        p.disposition = type;
        p.disposition_params = params_of(g_mime_content_disposition_get_parameters(d.get()));
      }
    }
    if (auto lang = field_value(fields, "content-language")) {
      std::string item;
      for (char c : *lang + ",") {
        if (c == ',' || c == ' ' || c == '\t') {
          if (!item.empty()) p.language.push_back(item);
          item.clear();
        } else {
          item.push_back(c);
        }
      }
    }
  }

  // Body ranges of a multipart's children (RFC 2046 §5.1.1: the line end before a
  // delimiter belongs to the delimiter). A missing close delimiter ends the last
  // part at the end of the body.
  std::vector<byte_range> split(byte_range body, std::string_view boundary) {
    std::vector<byte_range> out;
    if (boundary.empty()) return out;
    std::size_t pos = body.begin;
    std::size_t part_start = std::string_view::npos;
    bool closed = false;
    while (pos < body.end) {
      const void* lfp = std::memchr(msg.data() + pos, '\n', body.end - pos);
      const std::size_t lf =
          lfp == nullptr ? body.end
                         : static_cast<std::size_t>(static_cast<const char*>(lfp) - msg.data());
      const std::size_t next = lf < body.end ? lf + 1 : body.end;
      std::string_view line = msg.substr(pos, lf - pos);
      if (line.size() >= boundary.size() + 2 && line[0] == '-' && line[1] == '-' &&
          line.substr(2, boundary.size()) == boundary) {
        std::string_view rest = line.substr(2 + boundary.size());
        const bool is_close = rest.size() >= 2 && rest[0] == '-' && rest[1] == '-';
        if (is_close) rest.remove_prefix(2);
        if (rest.find_first_not_of(" \t\r") == std::string_view::npos) {
          if (part_start != std::string_view::npos) {
            std::size_t content_end = pos;
            if (content_end > part_start && msg[content_end - 1] == '\n') {
              --content_end;
              if (content_end > part_start && msg[content_end - 1] == '\r') --content_end;
            }
            out.push_back({part_start, content_end});
          }
          if (is_close) {
            closed = true;
            break;
          }
          part_start = next;
        }
      }
      pos = next;
    }
    if (!closed && part_start != std::string_view::npos) out.push_back({part_start, body.end});
    return out;
  }

  void make_opaque(part& p) {
    p.type = "application";
    p.subtype = "octet-stream";
    p.params.clear();
    p.opaque = true;
  }

  // Parses the part spanning [begin, end) into `p`; `fields` receives its header.
  void parse_part(std::size_t begin, std::size_t end, unsigned depth, bool digest_child, part& p,
                  std::vector<raw_field>& fields) {
    ++parts;
    const std::size_t body_start = detail::scan_header(msg, begin, end, fields);
    p.header = {begin, body_start};
    p.body = {body_start, end};
    content_type(fields, digest_child, p);
    mime_fields(fields, p);
    const bool too_deep = depth >= limits.max_depth || parts >= limits.max_parts;
    if (iequals(p.type, "multipart")) {
      if (too_deep) {
        make_opaque(p);
        return;
      }
      std::string boundary;
      for (const auto& prm : p.params) {
        if (iequals(prm.name, "boundary")) boundary = prm.value;
      }
      const bool digest = iequals(p.subtype, "digest");
      for (const auto& r : split(p.body, boundary)) {
        if (parts >= limits.max_parts) break;
        std::vector<raw_field> child_fields;
        p.children.emplace_back();
        parse_part(r.begin, r.end, depth + 1, digest, p.children.back(), child_fields);
      }
      if (p.children.empty()) {
        // A multipart without a usable boundary: IMAP needs at least one body
        // part, so report one empty text/plain part at the end of the body.
        part empty;
        empty.params.push_back({"charset", "us-ascii"});
        empty.header = {end, end};
        empty.body = {end, end};
        p.children.push_back(std::move(empty));
      }
    } else if (iequals(p.type, "message") &&
               (iequals(p.subtype, "rfc822") || iequals(p.subtype, "global"))) {
      p.lines = count_lf(msg.substr(p.body.begin, p.body.size()));
      if (too_deep) {
        make_opaque(p);
        return;
      }
      std::vector<raw_field> child_fields;
      p.children.emplace_back();
      parse_part(p.body.begin, p.body.end, depth + 1, false, p.children.back(), child_fields);
      p.message_envelope = make_envelope(child_fields);
    } else if (p.is_text()) {
      p.lines = count_lf(msg.substr(p.body.begin, p.body.size()));
    }
  }
};

}  // namespace

message_structure parse(std::string_view rfc822, const parse_limits& limits) {
  detail::ensure_gmime();
  message_structure s;
  s.size = rfc822.size();
  parser p{rfc822, limits};
  std::vector<raw_field> fields;
  p.parse_part(0, rfc822.size(), 0, false, s.root, fields);
  s.env = make_envelope(fields);
  s.header_text = extract_search_text(rfc822, s, 1 << 20, search_parts::headers).headers;
  return s;
}

result<message_structure> parse_file(const std::string& path, const parse_limits& limits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return error::temporary(errc::io_error, "cannot read message",
                            path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return error::temporary(errc::io_error, "cannot read message", path + ": " + std::strerror(e));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return parse(std::string_view(), limits);
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int e = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    return error::temporary(errc::io_error, "cannot read message", path + ": " + std::strerror(e));
  }
  auto s = parse(std::string_view(static_cast<const char*>(map), size), limits);
  ::munmap(map, size);
  return s;
}

}  // namespace hamail::mime

#include <algorithm>

#include "hamail/protocol/http/request_parser.hpp"

namespace hamail::http {

namespace {

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// A field value octet: VCHAR, obs-text, SP or HTAB (RFC 9110 §5.5).
bool is_field_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// True when a comma-separated header value lists `token` (case-insensitive).
bool lists_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (iequals(trim_ows(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string_view request::path() const noexcept {
  std::string_view t = target;
  if (!t.empty() && t.front() != '/') {
    // absolute-form: skip "scheme://authority".
    const auto scheme = t.find("://");
    if (scheme == std::string_view::npos) return t;
    const auto slash = t.find('/', scheme + 3);
    if (slash == std::string_view::npos) return "/";
    t.remove_prefix(slash);
  }
  return t.substr(0, t.find('?'));
}

std::optional<std::string_view> request::header(std::string_view lower_name) const noexcept {
  for (const auto& h : headers)
    if (h.name == lower_name) return std::string_view(h.value);
  return std::nullopt;
}

bool request::keep_alive() const noexcept {
  bool close = false;
  bool keep = false;
  for (const auto& h : headers) {
    if (h.name != "connection") continue;
    close = close || lists_token(h.value, "close");
    keep = keep || lists_token(h.value, "keep-alive");
  }
  if (close) return false;
  return version_minor >= 1 || keep;
}

int status_code(request_error e) noexcept {
  switch (e) {
    case request_error::bad_request:
    case request_error::missing_host:
    case request_error::body_not_allowed:
      return 400;
    case request_error::uri_too_long:
      return 414;
    case request_error::headers_too_large:
      return 431;
    case request_error::transfer_encoding:
      return 501;
    case request_error::version_not_supported:
      return 505;
  }
  return 400;
}

std::string_view to_string(request_error e) noexcept {
  switch (e) {
    case request_error::bad_request:
      return "bad_request";
    case request_error::missing_host:
      return "missing_host";
    case request_error::body_not_allowed:
      return "body_not_allowed";
    case request_error::uri_too_long:
      return "uri_too_long";
    case request_error::headers_too_large:
      return "headers_too_large";
    case request_error::transfer_encoding:
      return "transfer_encoding";
    case request_error::version_not_supported:
      return "version_not_supported";
  }
  return "bad_request";
}

std::string_view describe(request_error e) noexcept {
  switch (e) {
    case request_error::bad_request:
      return "Malformed request";
    case request_error::missing_host:
      return "HTTP/1.1 requests need exactly one Host header";
    case request_error::body_not_allowed:
      return "Request bodies are not accepted";
    case request_error::uri_too_long:
      return "Request line too long";
    case request_error::headers_too_large:
      return "Request header fields too large";
    case request_error::transfer_encoding:
      return "Transfer-Encoding is not supported";
    case request_error::version_not_supported:
      return "Only HTTP/1.0 and HTTP/1.1 are supported";
  }
  return "Malformed request";
}

request_parser::request_parser(request_limits limits) : limits_(limits) {}

void request_parser::reset() noexcept {
  state_ = state::request_line;
  line_.clear();
  skipped_ = 0;
  header_bytes_ = 0;
  req_ = request{};
  error_ = request_error::bad_request;
}

parse_step request_parser::fail(request_error e, std::size_t consumed) {
  state_ = state::failed;
  error_ = e;
  line_.clear();
  line_.shrink_to_fit();
  req_ = request{};
  parse_step step;
  step.consumed = consumed;
  step.status = parse_status::error;
  step.error = e;
  return step;
}

std::optional<request_error> request_parser::on_request_line(std::string_view line) {
  // request-line = method SP request-target SP HTTP-version (RFC 9112 §3): exactly two spaces.
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return request_error::bad_request;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return request_error::bad_request;
  const auto method_name = line.substr(0, sp1);
  const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  if (!is_token(method_name)) return request_error::bad_request;
  if (target.empty() ||
      !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return request_error::bad_request;
  const bool origin = target.front() == '/';
  const bool asterisk = target == "*";
  const bool absolute = target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://";
  if (!origin && !asterisk && !absolute) return request_error::bad_request;
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) ||
      version[6] != '.' || !is_digit(version[7]))
    return request_error::bad_request;
  if (version[5] != '1') return request_error::version_not_supported;
  // HTTP/1.2 and later minor versions are answered as 1.1 (RFC 9110 §6.2).
  req_.version_minor = version[7] == '0' ? 0 : 1;
  req_.method_name = std::string(method_name);
  req_.verb = method_name == "GET"    ? method::get
              : method_name == "HEAD" ? method::head
                                      : method::other;
  req_.target = std::string(target);
  return std::nullopt;
}

std::optional<request_error> request_parser::on_header_line(std::string_view line) {
  // obs-fold (a continuation line) is refused (RFC 9112 §5.2).
  if (line.front() == ' ' || line.front() == '\t') return request_error::bad_request;
  if (req_.headers.size() >= limits_.max_headers) return request_error::headers_too_large;
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return request_error::bad_request;
  // No whitespace between name and colon (RFC 9112 §5.1): the token check refuses it.
  const auto name = line.substr(0, colon);
  if (!is_token(name)) return request_error::bad_request;
  const auto value = trim_ows(line.substr(colon + 1));
  if (!std::all_of(value.begin(), value.end(), is_field_char)) return request_error::bad_request;
  header_field field;
  field.name.reserve(name.size());
  for (char c : name) field.name.push_back(lower(c));
  field.value = std::string(value);
  req_.headers.push_back(std::move(field));
  return std::nullopt;
}

std::optional<request_error> request_parser::finish() {
  std::size_t hosts = 0;
  std::optional<std::string_view> length;
  for (const auto& h : req_.headers) {
    if (h.name == "host") ++hosts;
    if (h.name == "transfer-encoding") return request_error::transfer_encoding;
    if (h.name == "content-length") {
      // Several fields must agree (RFC 9112 §6.3); a list within one is refused.
      if (h.value.empty() || !std::all_of(h.value.begin(), h.value.end(), is_digit))
        return request_error::body_not_allowed;
      if (length && *length != h.value) return request_error::body_not_allowed;
      length = h.value;
    }
  }
  if (hosts > 1 || (hosts == 0 && req_.version_minor >= 1)) return request_error::missing_host;
  if (length && length->find_first_not_of('0') != std::string_view::npos)
    return request_error::body_not_allowed;
  return std::nullopt;
}

parse_step request_parser::feed(std::string_view input) {
  if (state_ == state::failed) return fail(error_, 0);
  std::size_t pos = 0;
  while (pos < input.size()) {
    const auto lf = input.find('\n', pos);
    const auto end = lf == std::string_view::npos ? input.size() : lf;
    const auto piece = input.substr(pos, end - pos);
    // Limits first, on octets alone, so the verdict does not depend on where
    // the input was cut. The request line may carry its CR beyond the limit.
    const std::size_t held = line_.size() + piece.size();
    if (state_ == state::request_line && held > limits_.max_request_line + 1)
      return fail(request_error::uri_too_long, end);
    if (state_ == state::headers && header_bytes_ + held > limits_.max_header_bytes)
      return fail(request_error::headers_too_large, end);
    line_.append(piece);
    if (lf == std::string_view::npos) {
      pos = end;
      break;
    }
    pos = lf + 1;
    std::string_view line = line_;
    const std::size_t octets = line.size() + 1;  // with its LF
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return fail(request_error::bad_request, pos);
    if (state_ == state::request_line) {
      if (line.empty()) {
        skipped_ += octets;
        if (skipped_ > limits_.max_request_line) return fail(request_error::bad_request, pos);
      } else {
        if (line.size() > limits_.max_request_line) return fail(request_error::uri_too_long, pos);
        if (auto e = on_request_line(line)) return fail(*e, pos);
        state_ = state::headers;
      }
    } else {
      header_bytes_ += octets;
      if (header_bytes_ > limits_.max_header_bytes)
        return fail(request_error::headers_too_large, pos);
      if (line.empty()) {
        if (auto e = finish()) return fail(*e, pos);
        parse_step step;
        step.consumed = pos;
        step.status = parse_status::complete;
        step.req = std::move(req_);
        reset();
        return step;
      }
      if (auto e = on_header_line(line)) return fail(*e, pos);
    }
    line_.clear();
  }
  parse_step step;
  step.consumed = pos;
  return step;
}

}  // namespace hamail::http

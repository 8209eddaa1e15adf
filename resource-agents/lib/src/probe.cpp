#include "hamail/ocf/probe.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "hamail/blockio/client_connection.hpp"
#include "hamail/core/base64.hpp"

namespace hamail::ocf {

namespace {

using clock = std::chrono::steady_clock;

// A probe connection: the blocking client with the probe's target and its SMTP replies.
class connection : public blockio::client_connection {
 public:
  using client_connection::client_connection;

  bool connect(const probe_target& t, probe_result& r) {
    return client_connection::connect(t.address, t.port, r);
  }
  bool start_tls(const probe_target& t, probe_result& r) {
    return client_connection::start_tls(t.address, t.ca_file, t.server_name, r);
  }

  // Reads one SMTP reply (all its lines); returns its code and text, or 0 on failure.
  int reply(std::string& text, probe_result& r, const char* what) {
    text.clear();
    for (;;) {
      std::string line;
      if (!this->line(line, r, what)) return 0;
      if (line.size() < 3) {
        r.detail = std::string(what) + ": malformed reply '" + line + "'";
        return 0;
      }
      if (!text.empty()) text += ' ';
      text += line;
      if (line.size() == 3 || line[3] == ' ') {
        const int code = std::atoi(line.substr(0, 3).c_str());
        if (code < 200 || code > 599) {
          r.detail = std::string(what) + ": malformed reply '" + line + "'";
          return 0;
        }
        return code;
      }
    }
  }
};

bool expect(connection& c, int want, const char* what, std::string& text, probe_result& r) {
  const int code = c.reply(text, r, what);
  if (code == 0) return false;
  if (code / 100 != want / 100 || (want % 100 != 0 && code != want)) {
    r.detail = std::string(what) + " answered " + text;
    return false;
  }
  return true;
}

// Whether an EHLO/LHLO reply (its lines joined by spaces) lists the STARTTLS keyword.
bool offers_starttls(const std::string& reply) {
  std::size_t pos = 0;
  while ((pos = reply.find("STARTTLS", pos)) != std::string::npos) {
    const bool starts = pos >= 4 && (reply[pos - 1] == '-' || reply[pos - 1] == ' ');
    const std::size_t end = pos + 8;
    const bool ends = end == reply.size() || reply[end] == ' ';
    if (starts && ends) return true;
    pos = end;
  }
  return false;
}

std::string where_of(const probe_target& t) {
  return (t.address.find(':') != std::string::npos ? "[" + t.address + "]" : t.address) + ":" +
         std::to_string(t.port);
}

// The first line of `text`, at most 200 characters: for exit reasons.
std::string first_line(const std::string& text) {
  std::string out = text.substr(0, text.find_first_of("\r\n"));
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}

// An IMAP quoted string, or nothing when `s` cannot be one (CR, LF, NUL, 8-bit).
std::optional<std::string> imap_quoted(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0 || c == '\r' || c == '\n' || c >= 0x80) return std::nullopt;
    if (c == '"' || c == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// Reads IMAP response lines up to the tagged one for `tag`; returns its text after the
// tag ("OK ...", "NO ..."), and the untagged lines joined by spaces. A line announcing a
// literal ({n} at its end) takes the literal and the line's continuation.
bool imap_response(connection& c, const std::string& tag, std::string& tagged,
                   std::string& untagged, probe_result& r, const char* what) {
  untagged.clear();
  for (int lines = 0; lines < 1000; ++lines) {
    std::string line;
    if (!c.line(line, r, what)) return false;
    for (int literals = 0; literals < 100 && !line.empty() && line.back() == '}'; ++literals) {
      const auto open = line.rfind('{');
      if (open == std::string::npos) break;
      const std::string digits = line.substr(open + 1, line.size() - open - 2);
      if (digits.empty() || digits.size() > 5 ||
          digits.find_first_not_of("0123456789") != std::string::npos) {
        break;
      }
      std::string literal;
      std::string rest;
      if (!c.bytes(std::stoul(digits), literal, r, what) || !c.line(rest, r, what)) return false;
      line += rest;
    }
    if (line.rfind(tag + " ", 0) == 0) {
      tagged = line.substr(tag.size() + 1);
      return true;
    }
    if (line.rfind("* BYE", 0) == 0) {
      r.detail = std::string(what) + ": the server said " + first_line(line);
      return false;
    }
    if (!untagged.empty()) untagged += ' ';
    untagged += line;
  }
  r.detail = std::string(what) + ": too many response lines";
  return false;
}

bool imap_ok(connection& c, const std::string& tag, const std::string& command,
             std::string& untagged, probe_result& r, const char* what) {
  std::string tagged;
  if (!c.send(tag + " " + command + "\r\n", r) ||
      !imap_response(c, tag, tagged, untagged, r, what)) {
    return false;
  }
  if (tagged.rfind("OK", 0) != 0) {
    r.detail = std::string(what) + " answered " + first_line(tagged);
    return false;
  }
  return true;
}

// Whether a capability list (untagged lines, or a greeting's [CAPABILITY ...] code)
// names `cap` as a whole word.
bool has_capability(const std::string& text, const std::string& cap) {
  std::size_t pos = 0;
  while ((pos = text.find(cap, pos)) != std::string::npos) {
    const std::size_t end = pos + cap.size();
    const bool starts = pos > 0 && text[pos - 1] == ' ';
    const bool ends = end == text.size() || text[end] == ' ' || text[end] == ']';
    if (starts && ends) return true;
    pos = end;
  }
  return false;
}

}  // namespace

probe_result smtp_probe(const probe_target& target, clock::time_point deadline,
                        const std::optional<probe_credentials>& credentials) {
  probe_result r;
  const std::string where = where_of(target);
  connection c(deadline, where);
  if (!c.connect(target, r)) return r;
  if (target.implicit_tls && !c.start_tls(target, r)) return r;
  std::string text;
  const std::string hello = std::string(target.lmtp ? "LHLO" : "EHLO") + " hamail-ocf-probe\r\n";
  auto fail_at = [&](probe_result& res) {
    if (res.detail.find(where) == std::string::npos) res.detail = where + ": " + res.detail;
    return res;
  };
  if (!expect(c, 220, "greeting", text, r)) return fail_at(r);
  if (!c.send(hello, r) || !expect(c, 250, target.lmtp ? "LHLO" : "EHLO", text, r)) {
    return fail_at(r);
  }
  if (credentials) {
    if (!target.implicit_tls) {
      if (!offers_starttls(text)) {
        // Never send a password in the clear, whatever the server would accept.
        r.detail = where + ": the server does not offer STARTTLS; the probe account's " +
                   "password is not sent over an unencrypted connection";
        if (c.send("QUIT\r\n", r)) {
          probe_result ignored;
          (void)c.reply(text, ignored, "QUIT");
        }
        return r;
      }
      if (!c.send("STARTTLS\r\n", r) || !expect(c, 220, "STARTTLS", text, r) ||
          !c.start_tls(target, r)) {
        return fail_at(r);
      }
      if (!c.send(hello, r) || !expect(c, 250, "EHLO after STARTTLS", text, r)) {
        return fail_at(r);
      }
    }
    std::string plain;
    plain += '\0';
    plain += credentials->user;
    plain += '\0';
    plain += credentials->password;
    if (!c.send("AUTH PLAIN " + base64_encode(plain) + "\r\n", r) ||
        !expect(c, 235, "AUTH PLAIN", text, r)) {
      return fail_at(r);
    }
  }
  if (!c.send("NOOP\r\n", r) || !expect(c, 250, "NOOP", text, r)) return fail_at(r);
  // A failed QUIT does not make the service unhealthy: it answered everything else.
  if (c.send("QUIT\r\n", r)) {
    probe_result ignored;
    (void)c.reply(text, ignored, "QUIT");
  }
  r.ok = true;
  r.detail.clear();
  return r;
}

probe_result http_get(const probe_target& target, const std::string& path,
                      clock::time_point deadline, http_response* response) {
  probe_result r;
  const std::string where = where_of(target);
  auto fail_at = [&](probe_result& res) {
    if (res.detail.find(where) == std::string::npos) res.detail = where + ": " + res.detail;
    return res;
  };
  if (path.empty() || path.front() != '/' || path.find_first_of(" \r\n") != std::string::npos) {
    r.detail = "not an HTTP path: " + path;
    return r;
  }
  connection c(deadline, where);
  if (!c.connect(target, r)) return r;
  if (target.implicit_tls && !c.start_tls(target, r)) return r;
  const std::string host = target.server_name.empty() ? where : target.server_name;
  if (!c.send("GET " + path + " HTTP/1.1\r\nHost: " + host +
                  "\r\nUser-Agent: hamail-ocf-probe\r\nConnection: close\r\n\r\n",
              r)) {
    return fail_at(r);
  }
  std::string status_line;
  if (!c.line(status_line, r, "status line")) return fail_at(r);
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || status_line.rfind("HTTP/1.", 0) != 0 || status_line[8] != ' ' ||
      status_line.substr(9, 3).find_first_not_of("0123456789") != std::string::npos) {
    r.detail = "malformed HTTP status line '" + first_line(status_line) + "'";
    return fail_at(r);
  }
  const int status = std::stoi(status_line.substr(9, 3));
  std::optional<std::size_t> length;
  bool chunked = false;
  for (int headers = 0;; ++headers) {
    std::string h;
    if (!c.line(h, r, "headers")) return fail_at(r);
    if (h.empty()) break;
    if (headers >= 100) {
      r.detail = "too many HTTP header lines";
      return fail_at(r);
    }
    const auto colon = h.find(':');
    if (colon == std::string::npos) continue;
    std::string name = h.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    std::string value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    if (name == "content-length") {
      if (value.empty() || value.size() > 9 ||
          value.find_first_not_of("0123456789") != std::string::npos) {
        r.detail = "malformed Content-Length '" + first_line(value) + "'";
        return fail_at(r);
      }
      length = std::stoul(value);
    } else if (name == "transfer-encoding" && value != "identity") {
      chunked = true;
    }
  }
  constexpr std::size_t max_body = 64 * 1024;
  std::string body;
  if (chunked) {
    // The probe only needs the status; a chunked body is not decoded.
  } else if (length) {
    if (*length > max_body) {
      r.detail = "HTTP body of " + std::to_string(*length) + " bytes is too large";
      return fail_at(r);
    }
    if (!c.bytes(*length, body, r, "body")) return fail_at(r);
  } else if (!c.until_closed(max_body, body, r, "body")) {
    return fail_at(r);
  }
  if (response != nullptr) {
    response->status = status;
    response->body = body;
  }
  if (status != 200) {
    const std::string said = first_line(body);
    r.detail =
        "GET " + path + " answered " + std::to_string(status) + (said.empty() ? "" : ": " + said);
    return fail_at(r);
  }
  r.ok = true;
  return r;
}

probe_result imap_login_probe(const probe_target& target, clock::time_point deadline,
                              const probe_credentials& credentials) {
  probe_result r;
  const std::string where = where_of(target);
  auto fail_at = [&](probe_result& res) {
    if (res.detail.find(where) == std::string::npos) res.detail = where + ": " + res.detail;
    return res;
  };
  const auto user = imap_quoted(credentials.user);
  const auto password = imap_quoted(credentials.password);
  if (!user || !password) {
    r.detail =
        "the probe account's name or password cannot be sent in an IMAP quoted string "
        "(CR, LF, NUL or 8-bit characters)";
    return r;
  }
  connection c(deadline, where);
  if (!c.connect(target, r)) return r;
  if (target.implicit_tls && !c.start_tls(target, r)) return r;
  std::string greeting;
  if (!c.line(greeting, r, "greeting")) return fail_at(r);
  if (greeting.rfind("* OK", 0) != 0) {
    r.detail = "greeting: " + first_line(greeting);
    return fail_at(r);
  }
  std::string untagged;
  if (!target.implicit_tls) {
    if (!imap_ok(c, "a", "CAPABILITY", untagged, r, "CAPABILITY")) return fail_at(r);
    if (!has_capability(untagged, "STARTTLS")) {
      // Never send a password in the clear, whatever the server would accept.
      r.detail = where + ": the server does not offer STARTTLS; the probe account's " +
                 "password is not sent over an unencrypted connection";
      probe_result ignored;
      (void)imap_ok(c, "z", "LOGOUT", untagged, ignored, "LOGOUT");
      return r;
    }
    if (!imap_ok(c, "b", "STARTTLS", untagged, r, "STARTTLS") || !c.start_tls(target, r)) {
      return fail_at(r);
    }
  }
  if (!imap_ok(c, "c", "LOGIN " + *user + " " + *password, untagged, r, "LOGIN")) {
    return fail_at(r);
  }
  // A failed LOGOUT does not make the service unhealthy: the login went through.
  probe_result ignored;
  (void)imap_ok(c, "d", "LOGOUT", untagged, ignored, "LOGOUT");
  r.ok = true;
  r.detail.clear();
  return r;
}

}  // namespace hamail::ocf

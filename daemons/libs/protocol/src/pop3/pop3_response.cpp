#include "hamail/protocol/pop3/response.hpp"

namespace hamail::pop3 {

namespace {

// Appends `text` with control octets replaced, without letting the line (CRLF
// still to come) pass max_response_line.
void append_clean(std::string& line, std::string_view text) {
  for (char c : text) {
    if (line.size() + 2 >= max_response_line) break;
    const auto u = static_cast<unsigned char>(c);
    line.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
}

std::string status_line(std::string_view status, std::string_view text, resp_code code) {
  std::string line(status);
  const auto bracket = to_string(code);
  if (!bracket.empty()) {
    line.push_back(' ');
    line.append(bracket);
  }
  if (!text.empty()) {
    line.push_back(' ');
    append_clean(line, text);
  }
  line.append("\r\n");
  return line;
}

void capa_line(std::string& out, std::string_view keyword, std::string_view arg = {}) {
  std::string line(keyword);
  if (!arg.empty()) {
    line.push_back(' ');
    append_clean(line, arg);
  }
  out.append(line).append("\r\n");
}

}  // namespace

std::string_view to_string(resp_code code) noexcept {
  switch (code) {
    case resp_code::none:
      return "";
    case resp_code::auth:
      return "[AUTH]";
    case resp_code::sys_temp:
      return "[SYS/TEMP]";
    case resp_code::sys_perm:
      return "[SYS/PERM]";
    case resp_code::in_use:
      return "[IN-USE]";
    case resp_code::login_delay:
      return "[LOGIN-DELAY]";
  }
  return "";
}

std::string ok(std::string_view text, resp_code code) { return status_line("+OK", text, code); }

std::string err(std::string_view text, resp_code code) { return status_line("-ERR", text, code); }

std::string err(const command_error& error) { return err(error.detail); }

std::string challenge(std::string_view base64) {
  std::string line("+ ");
  line.append(base64).append("\r\n");
  return line;
}

std::string capa(const capabilities& caps) {
  std::string out = ok("Capability list follows");
  if (caps.top) capa_line(out, "TOP");
  if (caps.uidl) capa_line(out, "UIDL");
  if (caps.user) capa_line(out, "USER");
  if (caps.pipelining) capa_line(out, "PIPELINING");
  if (caps.resp_codes) capa_line(out, "RESP-CODES");
  if (caps.auth_resp_code) capa_line(out, "AUTH-RESP-CODE");
  if (caps.stls) capa_line(out, "STLS");
  if (!caps.sasl.empty()) {
    std::string line("SASL");
    for (const auto& mech : caps.sasl) {
      if (line.size() + 1 + mech.size() + 2 > max_response_line) break;  // whole names only
      line.push_back(' ');
      append_clean(line, mech);
    }
    out.append(line).append("\r\n");
  }
  if (caps.expire) capa_line(out, "EXPIRE", *caps.expire);
  if (caps.login_delay) capa_line(out, "LOGIN-DELAY", *caps.login_delay);
  if (!caps.implementation.empty()) capa_line(out, "IMPLEMENTATION", caps.implementation);
  out.append(".\r\n");
  return out;
}

}  // namespace hamail::pop3

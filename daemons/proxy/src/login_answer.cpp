#include "login_answer.hpp"

namespace hamail::proxy {

namespace {

/// The response code of a status line's rest ("NO [UNAVAILABLE] text" -> "UNAVAILABLE").
std::string_view code_of(std::string_view rest) {
  const auto open = rest.find('[');
  if (open == std::string_view::npos || rest.find(' ') < open - 1) return {};
  const auto end = rest.find_first_of(" ]", open);
  return end == std::string_view::npos ? rest.substr(open + 1)
                                       : rest.substr(open + 1, end - open - 1);
}

bool has(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

login_answer classify_imap_login(std::string_view rest) {
  if (rest.starts_with("OK ")) return login_answer::ok;
  if (has(rest, wrong_store_text)) return login_answer::wrong_store;
  const auto code = code_of(rest);
  // Only a temporary answer can mean a move: "NO [UNAVAILABLE] Account is being moved".
  if (code == "UNAVAILABLE" && has(rest, being_moved_text)) return login_answer::being_moved;
  if (code == "UNAVAILABLE") return login_answer::temporary;
  // The user's credentials were good here: a refusal of the proxy's own login is the
  // operator's to fix, never the user's.
  if (code == "AUTHENTICATIONFAILED" || code == "AUTHORIZATIONFAILED" || rest.starts_with("BAD")) {
    return login_answer::proxy_refused;
  }
  return login_answer::refused;
}

login_answer classify_pop3_login(std::string_view line) {
  if (line.starts_with("+OK")) return login_answer::ok;
  if (has(line, wrong_store_text)) return login_answer::wrong_store;
  // The user's own condition: the client should hear it as it is.
  if (line.starts_with("-ERR [IN-USE]") || line.starts_with("-ERR [LOGIN-DELAY]")) {
    return login_answer::refused;
  }
  if (line.starts_with("-ERR [SYS/TEMP]")) {
    return has(line, being_moved_text) ? login_answer::being_moved : login_answer::temporary;
  }
  return login_answer::proxy_refused;
}

}  // namespace hamail::proxy

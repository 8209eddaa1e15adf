#include "hamail/directory/ldap_settings.hpp"

#include <cctype>
#include <string_view>

#include "hamail/core/config.hpp"

namespace hamail::directory {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 4514 attributeType: a descr (ALPHA *(ALPHA / DIGIT / "-")) or a numericoid.
bool valid_attribute_type(std::string_view t) {
  if (t.empty()) return false;
  if (is_alpha(t.front())) {
    for (const char c : t) {
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    }
    return true;
  }
  bool digit_seen = false;
  for (const char c : t) {
    if (is_digit(c)) {
      digit_seen = true;
    } else if (c == '.' && digit_seen) {
      digit_seen = false;
    } else {
      return false;
    }
  }
  return digit_seen;
}

}  // namespace

std::optional<std::string> ldap_uri_problem(const std::string& uri, bool& tls, bool& local) {
  if (uri.find_first_of(" \t,") != std::string::npos) {
    return "one server per URI: list several servers as several array elements";
  }
  const auto sep = uri.find("://");
  if (sep == std::string::npos || sep == 0) {
    return "not an LDAP URI (ldap://host:port, ldaps://host:port or ldapi://)";
  }
  std::string scheme = uri.substr(0, sep);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "ldap" && scheme != "ldaps" && scheme != "ldapi") {
    return "scheme must be ldap, ldaps or ldapi";
  }
  const std::string rest = uri.substr(sep + 3);
  const std::string hostport = rest.substr(0, rest.find('/'));
  std::string host = hostport;
  std::string port;
  if (scheme != "ldapi") {
    if (!hostport.empty() && hostport.front() == '[') {
      const auto close = hostport.find(']');
      if (close == std::string::npos) return "not an LDAP URI: unclosed '[' in the host";
      host = hostport.substr(1, close - 1);
      if (close + 1 < hostport.size()) {
        if (hostport[close + 1] != ':') return "not an LDAP URI: junk after the IPv6 address";
        port = hostport.substr(close + 2);
      }
    } else if (const auto colon = hostport.find(':'); colon != std::string::npos) {
      host = hostport.substr(0, colon);
      port = hostport.substr(colon + 1);
    }
    if (host.empty()) return "names no host";
    if (hostport.find(':') != std::string::npos && hostport.front() != '[' &&
        port.find_first_not_of("0123456789") != std::string::npos) {
      return "not an LDAP URI: the port is not a number";
    }
    if (!port.empty() && (port.size() > 5 || std::stoul(port) == 0 || std::stoul(port) > 65535)) {
      return "not an LDAP URI: the port is out of range";
    }
  }
  tls = scheme == "ldaps";
  local = scheme == "ldapi" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
  return std::nullopt;
}

std::optional<std::string> dn_syntax_problem(const std::string& dn) {
  if (dn.empty()) return "is empty";
  // Walks RDNs (',') of AVAs ('+'), each attributeType '=' value, where a value's
  // '\\' escapes a special character or two hex digits (RFC 4514 section 3).
  std::size_t i = 0;
  for (;;) {
    const auto eq = dn.find('=', i);
    if (eq == std::string::npos) return "not a valid DN (RFC 4514): no '=' in " + dn.substr(i);
    std::string_view type(dn.data() + i, eq - i);
    while (!type.empty() && type.front() == ' ') type.remove_prefix(1);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    if (!valid_attribute_type(type)) return "not a valid DN (RFC 4514): bad attribute type";
    i = eq + 1;
    while (i < dn.size() && dn[i] != ',' && dn[i] != '+') {
      const char c = dn[i];
      if (c == '\\') {
        if (i + 1 >= dn.size()) return "not a valid DN (RFC 4514): dangling '\\'";
        if (is_hex(dn[i + 1])) {
          if (i + 2 >= dn.size() || !is_hex(dn[i + 2])) {
            return "not a valid DN (RFC 4514): bad hex escape";
          }
          i += 3;
        } else {
          i += 2;
        }
        continue;
      }
      if (c == '\0' || c == '"' || c == ';' || c == '<' || c == '>') {
        return "not a valid DN (RFC 4514): unescaped special character";
      }
      ++i;
    }
    if (i == dn.size()) return std::nullopt;
    ++i;  // past ',' or '+'
    if (i == dn.size()) return "not a valid DN (RFC 4514): ends with a separator";
  }
}

void read_ldap_settings(config::section& s, ldap_settings& out) {
  using std::chrono::milliseconds;
  if (const auto type = s.get_string("type", "ldap"); type != "ldap") {
    s.add_problem("type", "expected \"ldap\" here, found " + config::quote(type));
  }
  out.uris = s.get_string_list("uris");
  if (out.uris.empty() && !s.has("uris")) {
    s.add_problem("uris", "missing required key: list at least one server URI");
  } else if (out.uris.empty()) {
    s.add_problem("uris", "list at least one server URI");
  }
  for (const auto& uri : out.uris) {
    bool tls = false;
    bool local = false;
    if (auto why = ldap_uri_problem(uri, tls, local)) {
      s.add_problem("uris", config::quote(uri) + ": " + *why);
    }
  }
  out.base_dn = s.require_string("base_dn");
  if (!out.base_dn.empty()) {
    if (auto why = dn_syntax_problem(out.base_dn)) s.add_problem("base_dn", *why);
  }
  out.bind_dn = s.get_string("bind_dn", "");
  if (!out.bind_dn.empty()) {
    if (auto why = dn_syntax_problem(out.bind_dn)) s.add_problem("bind_dn", *why);
  }
  out.bind_secret_file = s.get_string("bind_secret_file", "");
  if (!out.bind_dn.empty() && out.bind_secret_file.empty()) {
    s.add_problem("bind_secret_file", "required with bind_dn (the file holding its password)");
  }
  if (out.bind_dn.empty() && !out.bind_secret_file.empty()) {
    s.add_problem("bind_dn", "bind_secret_file is set but bind_dn is not");
  }
  if (!out.bind_secret_file.empty() && !out.bind_secret_file.is_absolute()) {
    s.add_problem("bind_secret_file", "must be an absolute path");
  }
  out.starttls = s.get_bool("starttls", out.starttls);
  out.ca_file = s.get_string("ca_file", "");
  if (!out.ca_file.empty() && !std::filesystem::path(out.ca_file).is_absolute()) {
    s.add_problem("ca_file", "must be an absolute path");
  }
  out.timeout = s.get_duration("timeout", out.timeout);
  if (out.timeout <= milliseconds::zero()) {
    s.add_problem("timeout", "must be more than 0");
    out.timeout = std::chrono::seconds(5);
  }
  out.pool_size = static_cast<std::size_t>(
      s.get_integer("pool_size", static_cast<std::int64_t>(out.pool_size), 1, 64));
  out.retry_interval = s.get_duration("retry_interval", out.retry_interval);
  out.allow_plaintext_bind = s.get_bool("allow_plaintext_bind", out.allow_plaintext_bind);
  out.cache.positive_ttl = s.get_duration("cache_ttl", out.cache.positive_ttl);
  out.cache.negative_ttl = s.get_duration("negative_cache_ttl", out.cache.negative_ttl);
  out.cache.max_entries = static_cast<std::size_t>(s.get_integer(
      "cache_size", static_cast<std::int64_t>(out.cache.max_entries), 0, 100'000'000));
  if (!out.bind_dn.empty() && !out.starttls && !out.allow_plaintext_bind) {
    for (const auto& uri : out.uris) {
      bool tls = false;
      bool local = false;
      if (!ldap_uri_problem(uri, tls, local) && !tls && !local) {
        s.add_problem("uris", config::quote(uri) +
                                  " would carry the bind password in plaintext: use ldaps://, "
                                  "starttls = true, or allow_plaintext_bind = true");
      }
    }
  }
}

}  // namespace hamail::directory

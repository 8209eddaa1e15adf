#include "hamail/admin/settings.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "hamail/admin/errors.hpp"
#include "hamail/core/config.hpp"
#include "hamail/directory/ldap_connection.hpp"
#include "hamail/directory/password.hpp"

namespace hamail::admin {
namespace {

std::vector<std::string> split_uris(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  for (const char c : text) {
    if (c == ' ' || c == ',' || c == '\t' || c == '\n') {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

}  // namespace

connection_settings parse_settings_file(std::string_view text, const std::string& file_name) {
  auto doc = config::document::parse(text, file_name);
  if (!doc) throw admin_error(exit_status::config_error, doc.err().detail);
  connection_settings s;
  auto root = doc->root();
  if (auto ldap = root.table("ldap")) {
    s.uris = ldap->get_string_list("uris");
    s.base_dn = ldap->get_string("base_dn");
    s.bind_dn = ldap->get_string("bind_dn");
    s.bind_secret_file = ldap->get_string("bind_secret_file");
    s.starttls = ldap->get_bool("starttls", false);
    s.ca_file = ldap->get_string("ca_file");
    s.timeout = ldap->get_duration("timeout", s.timeout);
    if (s.timeout.count() <= 0) ldap->add_problem("timeout", "must be greater than zero");
    s.allow_plaintext = ldap->get_bool("allow_plaintext", false);
  }
  if (auto accounts = root.table("accounts")) {
    s.password_scheme = accounts->get_string("password_scheme", s.password_scheme);
    directory::password_scheme scheme{};
    if (!directory::parse_password_scheme(s.password_scheme, scheme)) {
      accounts->add_problem("password_scheme",
                            "unknown scheme " + config::quote(s.password_scheme) +
                                " (SSHA, SSHA256, SSHA512, SHA512-CRYPT, YESCRYPT, ARGON2ID)");
    }
  }
  if (auto sync = root.table("sync")) {
    s.sync_secret_file = sync->get_string("secret_file");
    s.sync_ca_file = sync->get_string("ca_file");
    s.sync_verify_name = sync->get_bool("verify_name", true);
  }
  doc->finish();
  if (!doc->ok()) throw admin_error(exit_status::config_error, doc->report());
  return s;
}

connection_settings resolve_settings(connection_settings s,
                                     const std::function<const char*(const char*)>& getenv,
                                     const settings_overrides& flags) {
  auto env = [&](const char* name) -> std::optional<std::string> {
    const char* v = getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  if (auto v = env("HAMAIL_LDAP_URI")) s.uris = split_uris(*v);
  if (auto v = env("HAMAIL_LDAP_BASE_DN")) s.base_dn = *v;
  if (auto v = env("HAMAIL_LDAP_BIND_DN")) s.bind_dn = *v;
  if (auto v = env("HAMAIL_LDAP_BIND_SECRET_FILE")) s.bind_secret_file = *v;
  if (auto v = env("HAMAIL_SYNC_SECRET_FILE")) s.sync_secret_file = *v;

  if (!flags.uris.empty()) s.uris = flags.uris;
  if (flags.base_dn) s.base_dn = *flags.base_dn;
  if (flags.bind_dn) s.bind_dn = *flags.bind_dn;
  if (flags.bind_secret_file) s.bind_secret_file = *flags.bind_secret_file;
  if (flags.starttls) s.starttls = *flags.starttls;
  if (flags.ca_file) s.ca_file = *flags.ca_file;
  if (flags.sync_secret_file) s.sync_secret_file = *flags.sync_secret_file;
  if (flags.sync_ca_file) s.sync_ca_file = *flags.sync_ca_file;

  if (s.uris.empty()) {
    throw admin_error(exit_status::usage,
                      "no directory URI: set [ldap] uri in the configuration file, "
                      "HAMAIL_LDAP_URI or --uri");
  }
  if (s.base_dn.empty()) {
    throw admin_error(exit_status::usage,
                      "no base DN: set [ldap] base_dn, HAMAIL_LDAP_BASE_DN or --base-dn");
  }
  if (!s.bind_dn.empty() && s.bind_secret_file.empty()) {
    throw admin_error(exit_status::usage,
                      "a bind DN needs a bind secret file ([ldap] bind_secret_file, "
                      "HAMAIL_LDAP_BIND_SECRET_FILE or --bind-secret-file)");
  }
  return s;
}

connection_settings load_settings(const std::optional<std::filesystem::path>& explicit_path,
                                  const settings_overrides& flags) {
  connection_settings file;
  std::filesystem::path path = explicit_path.value_or(default_config_path);
  std::error_code ec;
  if (explicit_path || std::filesystem::exists(path, ec)) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw admin_error(exit_status::config_error,
                        path.string() + ": cannot read the configuration file");
    }
    std::ostringstream text;
    text << in.rdbuf();
    file = parse_settings_file(text.str(), path.string());
  }
  return resolve_settings(
      std::move(file), [](const char* n) { return std::getenv(n); }, flags);
}

std::string read_secret_file(const std::filesystem::path& path) {
  auto secret = directory::read_secret_file(path);
  if (!secret) throw admin_error(exit_status::config_error, secret.err().detail);
  return std::move(*secret);
}

}  // namespace hamail::admin

#include "hamail/admin/ldap_connection.hpp"

#include <numeric>

#include "hamail/admin/errors.hpp"

namespace hamail::admin {
namespace {

constexpr std::size_t page_size = 500;

}  // namespace

directory_connection::directory_connection(connection_settings settings)
    : settings_(std::move(settings)) {}

void directory_connection::connect() {
  if (conn_.is_open()) return;
  std::string secret;
  if (!settings_.bind_dn.empty()) secret = read_secret_file(settings_.bind_secret_file);
  if (settings_.uris.empty()) throw admin_error(exit_status::config_error, "no LDAP URI given");
  const directory::ldap_connection_settings s{settings_.uris, settings_.starttls, settings_.ca_file,
                                              settings_.allow_plaintext};
  std::vector<std::size_t> order(settings_.uris.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Each server gets the whole timeout: an operator waits for an answer rather than
  // a quick "unreachable".
  const auto deadline =
      directory::ldap_connection::clock::now() + settings_.timeout * static_cast<int>(order.size());
  const auto f = conn_.open_first(s, order, deadline, settings_.bind_dn, secret);
  if (!f) return;
  switch (f->kind) {
    case directory::ldap_failure_kind::temporary:
      throw admin_error(exit_status::unreachable,
                        "no directory server could be reached: " + f->text);
    case directory::ldap_failure_kind::plaintext_refused:
      throw admin_error(exit_status::config_error,
                        f->text +
                            " (--starttls, an ldaps:// URI, or allow_plaintext = true in "
                            "[ldap])");
    case directory::ldap_failure_kind::bind_rejected:
      throw admin_error(exit_status::ldap_error, f->text);
    case directory::ldap_failure_kind::permanent:
      break;
  }
  throw admin_error(
      f->code < 0 && !f->temporary() ? exit_status::invalid_input : exit_status::ldap_error,
      f->text);
}

void directory_connection::fail(const directory::ldap_failure& f) {
  if (f.temporary()) throw admin_error(exit_status::unreachable, f.text);
  if (f.no_such_object()) throw admin_error(exit_status::not_found, f.text);
  if (f.already_exists()) throw admin_error(exit_status::conflict, f.text);
  throw admin_error(exit_status::ldap_error, f.text);
}

std::vector<ldap_entry> directory_connection::search(const std::string& base, search_scope scope,
                                                     const std::string& filter,
                                                     const std::vector<std::string>& attributes) {
  connect();
  std::vector<ldap_entry> out;
  if (auto f =
          conn_.paged_search(base, scope, filter, attributes, settings_.timeout, page_size, out)) {
    fail(*f);
  }
  return out;
}

std::optional<ldap_entry> directory_connection::read(const std::string& dn,
                                                     const std::vector<std::string>& attributes) {
  auto entries = search(dn, search_scope::base, "(objectClass=*)", attributes);
  if (entries.empty()) return std::nullopt;
  return std::move(entries.front());
}

void directory_connection::add(const std::string& dn,
                               const std::vector<attribute_change>& attributes) {
  connect();
  if (auto f = conn_.add(dn, attributes, settings_.timeout)) fail(*f);
}

void directory_connection::modify(const std::string& dn,
                                  const std::vector<attribute_change>& changes) {
  connect();
  if (auto f = conn_.modify(dn, changes, settings_.timeout)) fail(*f);
}

void directory_connection::remove(const std::string& dn) {
  connect();
  if (auto f = conn_.remove(dn, settings_.timeout)) fail(*f);
}

}  // namespace hamail::admin

#include "hamail/admin/errors.hpp"

namespace hamail::admin {

std::string_view to_string(exit_status status) noexcept {
  switch (status) {
    case exit_status::ok:
      return "ok";
    case exit_status::not_found:
      return "not_found";
    case exit_status::usage:
      return "usage";
    case exit_status::conflict:
      return "conflict";
    case exit_status::refused:
      return "refused";
    case exit_status::unreachable:
      return "unreachable";
    case exit_status::invalid_input:
      return "invalid_input";
    case exit_status::ldap_error:
      return "ldap_error";
    case exit_status::config_error:
      return "config_error";
  }
  return "ldap_error";
}

}  // namespace hamail::admin

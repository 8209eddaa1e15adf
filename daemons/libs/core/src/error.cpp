#include "hamail/core/error.hpp"

#include <utility>

namespace hamail {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::timed_out:
      return "timed_out";
    case errc::shutting_down:
      return "shutting_down";
    case errc::connection_closed:
      return "connection_closed";
    case errc::limit_exceeded:
      return "limit_exceeded";
    case errc::invalid_input:
      return "invalid_input";
    case errc::not_found:
      return "not_found";
    case errc::already_exists:
      return "already_exists";
    case errc::io_error:
      return "io_error";
    case errc::tls_error:
      return "tls_error";
    case errc::config_error:
      return "config_error";
    case errc::unavailable:
      return "unavailable";
    case errc::quota_exceeded:
      return "quota_exceeded";
    case errc::permission_denied:
      return "permission_denied";
    case errc::internal:
      return "internal";
  }
  // A value outside the enumeration: memory corruption or a bad cast.
  return "unknown";
}

std::string_view to_string(error_kind kind) noexcept {
  switch (kind) {
    case error_kind::temporary:
      return "temporary";
    case error_kind::permanent:
      return "permanent";
    case error_kind::internal:
      return "internal";
  }
  return "unknown";
}

error error::temporary(errc code, std::string user_text, std::string detail) {
  return error{error_kind::temporary, code, std::move(user_text), std::move(detail)};
}

error error::permanent(errc code, std::string user_text, std::string detail) {
  return error{error_kind::permanent, code, std::move(user_text), std::move(detail)};
}

error error::internal_error(std::string detail) {
  // Clients never learn what broke; the detail is for the log only.
  return error{error_kind::internal, errc::internal, "internal server error", std::move(detail)};
}

std::string error::describe() const {
  std::string out;
  out.reserve(user_text.size() + detail.size() + 32);
  out += to_string(kind);
  out += '/';
  out += to_string(code);
  out += ": ";
  out += user_text;
  if (!detail.empty()) {
    out += " (";
    out += detail;
    out += ')';
  }
  return out;
}

}  // namespace hamail

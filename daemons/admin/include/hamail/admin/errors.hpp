#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace hamail::admin {

/// hamail-admin's documented exit codes (docs/admin.md); scripts rely on them.
enum class exit_status : int {
  ok = 0,             ///< the command did what was asked
  not_found = 1,      ///< a named store, account or alias does not exist
  usage = 2,          ///< bad command line (unknown option, missing argument)
  conflict = 3,       ///< the object or an address exists already
  refused = 4,        ///< refused by policy: store not empty, no open store, account moving
  unreachable = 5,    ///< no directory server could be reached (or bound)
  invalid_input = 6,  ///< a value is malformed: size, address, name, state, port
  ldap_error = 7,     ///< the directory refused an operation for another reason
  config_error = 8,   ///< the configuration file or the bind secret file is unusable
};

/// The stable lower-case name of a status ("not_found"), used as the JSON error kind.
std::string_view to_string(exit_status status) noexcept;

/// A command's failure. hamail-admin is a one-shot program: every error ends the
/// command, so errors are exceptions caught once in main and turned into an exit
/// status and a message, never a half-done write.
class admin_error : public std::runtime_error {
 public:
  /// An error that ends the command with `status`; `message` is shown to the operator.
  admin_error(exit_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  /// The exit status the command ends with.
  exit_status status() const noexcept { return status_; }

 private:
  exit_status status_;
};

}  // namespace hamail::admin

#include "hamail/directory/daemon_settings.hpp"

#include "hamail/core/config.hpp"

namespace hamail::directory {

void read_auth_settings(config::section& root, auth_settings& out) {
  auto s = root.table("auth");
  if (!s) return;
  out.max_failures_per_address =
      static_cast<unsigned>(s->get_integer("max_failures_per_address", 10, 1, 100000));
  out.failure_window = s->get_duration("failure_window", out.failure_window);
  out.failure_delay = s->get_duration("failure_delay", out.failure_delay);
  out.max_failure_delay = s->get_duration("max_failure_delay", out.max_failure_delay);
  if (out.max_failure_delay < out.failure_delay) {
    s->add_problem("max_failure_delay", "must not be shorter than failure_delay");
  }
  out.hash_threads = static_cast<unsigned>(s->get_integer("hash_threads", 2, 1, 64));
  out.max_queued_hashes =
      static_cast<std::size_t>(s->get_integer("max_queued_hashes", 32, 0, 100000));
}

void read_directory_settings(config::section& root, directory_settings& out) {
  auto s = root.table("directory");
  if (!s) {
    root.add_problem("directory", "missing required table [directory]");
    return;
  }
  out.type = s->get_enum("type", {"ldap", "file"}, "ldap");
  out.auth = s->get_enum("auth", {"password", "bind"}, "password");
  if (out.auth == "bind" && out.type != "ldap") {
    s->add_problem("auth", "\"bind\" needs type = \"ldap\"");
  }
  if (out.type == "file") {
    out.accounts_file = s->require_string("accounts_file");
    if (!out.accounts_file.empty() && !out.accounts_file.is_absolute()) {
      s->add_problem("accounts_file", "must be an absolute path");
    }
  } else {
    read_ldap_settings(*s, out.ldap);
  }
}

}  // namespace hamail::directory

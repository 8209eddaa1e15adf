#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hamail::test {

/// Returns an OpenLDAP "{SSHA}" hash of `password` (SHA-1 over password and a
/// random 8-byte salt), for olcRootPW and userPassword values in test LDIF.
std::string ssha_hash(std::string_view password);

/// A real OpenLDAP slapd started by a test: its own cn=config built with
/// slapadd from LDIF, one mdb database under `suffix`, listening on a free
/// loopback port, stopped by its pid (SIGTERM, then SIGKILL) on destruction.
///
/// Files in `dir`: config.ldif and base.ldif (what was loaded), slapd.d/
/// (cn=config), db/ (mdb), slapd.log (slapd's output), slapd.pid.
/// The root DN is also the root DN of cn=config, so tests may change the
/// configuration over LDAP; anonymous users can read the database except
/// userPassword, which only serves binds. slapd runs in its own process group
/// and receives SIGTERM if the thread that started it dies (PR_SET_PDEATHSIG).
class slapd_instance {
 public:
  /// How to build and start the instance.
  struct options {
    /// The database's suffix; its entry is created (dc=, o= or ou= first RDN).
    std::string suffix = "dc=example,dc=org";
    /// The root DN of the database and of cn=config.
    std::string root_dn = "cn=admin,dc=example,dc=org";
    /// The root DN's password, stored as an {SSHA} hash.
    std::string root_password = "secret";
    /// Extra schema LDIF files (cn=config form) to load after core, cosine,
    /// inetorgperson and nis.
    std::vector<std::filesystem::path> schema_ldifs;
    /// LDIF files with entries to slapadd into the database before start.
    std::vector<std::filesystem::path> data_ldifs;
    /// How long to wait for slapd to accept connections.
    std::chrono::seconds start_timeout{20};
  };

  /// Starts slapd in `dir` (which must exist and be empty). `suffix` must start
  /// with a dc=, o= or ou= RDN (its entry is created). Throws
  /// std::runtime_error with slapadd's or slapd's output on failure.
  slapd_instance(const std::filesystem::path& dir, options opts);
  /// Stops slapd (see stop()).
  ~slapd_instance();
  slapd_instance(const slapd_instance&) = delete;
  slapd_instance& operator=(const slapd_instance&) = delete;

  /// ldap://127.0.0.1:<port>
  std::string uri() const;
  /// The TCP port slapd listens on (kept after stop()).
  std::uint16_t port() const noexcept { return port_; }
  /// slapd's pid while it runs; -1 once stopped.
  pid_t pid() const noexcept { return pid_; }
  /// The options it was started with.
  const options& opts() const noexcept { return opts_; }
  /// The file that receives slapd's stdout and stderr.
  std::filesystem::path log_file() const { return dir_ / "slapd.log"; }
  /// Stops slapd now (idempotent).
  void stop();

 private:
  std::filesystem::path dir_;
  options opts_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace hamail::test

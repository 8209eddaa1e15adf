#include "hamail/test/slapd.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "hamail/test/ports.hpp"
#include "hamail/test/process.hpp"

namespace hamail::test {
namespace {

using clock = std::chrono::steady_clock;

const std::filesystem::path slapd_program = "/usr/sbin/slapd";
const std::filesystem::path slapadd_program = "/usr/sbin/slapadd";
const std::filesystem::path module_dir = "/usr/lib/ldap";
const std::filesystem::path schema_dir = "/etc/ldap/schema";
constexpr std::uint64_t db_max_size = 64ULL * 1024 * 1024;
constexpr int max_start_attempts = 4;  // the first try and three retries on a stolen port
constexpr const char* listen_address = "127.0.0.1";

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

/// One "attr: value" LDIF line, base64-encoded ("attr:: ...") when the value
/// is not an LDIF SAFE-STRING (RFC 2849): a path or password with a leading
/// space, colon or '<', a line break or non-ASCII byte would otherwise be
/// misread.
std::string ldif_line(std::string_view attr, std::string_view value) {
  bool safe = value.empty() || (value.front() != ' ' && value.front() != ':' &&
                                value.front() != '<' && value.back() != ' ');
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0 || u == '\n' || u == '\r' || u > 0x7f) safe = false;
  }
  std::string line(attr);
  line += safe ? ": " : ":: ";
  line += safe ? std::string(value) : base64(value);
  line += '\n';
  return line;
}

/// file:// URI for an LDIF include: absolute, with anything outside the URI
/// unreserved set percent-encoded.
std::string file_uri(const std::filesystem::path& path) {
  const std::string p = std::filesystem::absolute(path).lexically_normal().string();
  std::string uri = "file://";
  for (const char c : p) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri += c;
    } else {
      constexpr std::string_view hex = "0123456789ABCDEF";
      uri += '%';
      uri += hex[u >> 4];
      uri += hex[u & 0x0f];
    }
  }
  return uri;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// The suffix's own entry: dcObject+organization for dc=, organization for o=,
/// organizationalUnit for ou=. Plain RDNs only (no escapes, no multi-valued RDN).
std::string base_entry_ldif(const std::string& suffix) {
  const std::string rdn = suffix.substr(0, suffix.find(','));
  const auto eq = rdn.find('=');
  if (eq == std::string::npos || rdn.find_first_of("+\\") != std::string::npos) {
    throw std::invalid_argument("slapd_instance: unsupported suffix " + suffix);
  }
  const std::string type = lower(rdn.substr(0, eq));
  const std::string value = rdn.substr(eq + 1);
  std::string ldif = ldif_line("dn", suffix);
  if (type == "dc") {
    ldif += "objectClass: dcObject\nobjectClass: organization\n";
    ldif += ldif_line("dc", value) + ldif_line("o", value);
  } else if (type == "o") {
    ldif += "objectClass: organization\n" + ldif_line("o", value);
  } else if (type == "ou") {
    ldif += "objectClass: organizationalUnit\n" + ldif_line("ou", value);
  } else {
    throw std::invalid_argument("slapd_instance: suffix must start with dc=, o= or ou=: " + suffix);
  }
  return ldif;
}

std::string config_ldif(const std::filesystem::path& dir, const slapd_instance::options& opts) {
  std::ostringstream out;
  out << "dn: cn=config\n"
      << "objectClass: olcGlobal\n"
      << "cn: config\n"
      << ldif_line("olcPidFile", (dir / "slapd.pid").string())
      << ldif_line("olcArgsFile", (dir / "slapd.args").string()) << "\n";

  // Debian builds back_mdb as a module; a slapd with it built in has no .la.
  if (std::filesystem::exists(module_dir / "back_mdb.la")) {
    out << "dn: cn=module{0},cn=config\n"
        << "objectClass: olcModuleList\n"
        << "cn: module{0}\n"
        << ldif_line("olcModulePath", module_dir.string()) << "olcModuleLoad: back_mdb\n\n";
  }

  out << "dn: cn=schema,cn=config\n"
      << "objectClass: olcSchemaConfig\n"
      << "cn: schema\n\n";
  // Order matters: cosine needs core; nis and inetorgperson need cosine.
  for (const char* name : {"core", "cosine", "nis", "inetorgperson"}) {
    out << "include: " << file_uri(schema_dir / (std::string(name) + ".ldif")) << "\n\n";
  }
  for (const auto& extra : opts.schema_ldifs) {
    if (!std::filesystem::is_regular_file(extra)) {
      throw std::runtime_error("slapd_instance: schema LDIF not found: " + extra.string());
    }
    out << "include: " << file_uri(extra) << "\n\n";
  }

  out << "dn: olcDatabase={-1}frontend,cn=config\n"
      << "objectClass: olcDatabaseConfig\n"
      << "objectClass: olcFrontendConfig\n"
      << "olcDatabase: {-1}frontend\n\n";

  // cn=config: no access for anyone but the root DN (which ACLs do not bind).
  out << "dn: olcDatabase={0}config,cn=config\n"
      << "objectClass: olcDatabaseConfig\n"
      << "olcDatabase: {0}config\n"
      << ldif_line("olcRootDN", opts.root_dn) << "olcAccess: {0}to * by * none\n\n";

  out << "dn: olcDatabase={1}mdb,cn=config\n"
      << "objectClass: olcDatabaseConfig\n"
      << "objectClass: olcMdbConfig\n"
      << "olcDatabase: {1}mdb\n"
      << ldif_line("olcSuffix", opts.suffix) << ldif_line("olcRootDN", opts.root_dn)
      << ldif_line("olcRootPW", ssha_hash(opts.root_password))
      << ldif_line("olcDbDirectory", (dir / "db").string()) << "olcDbMaxSize: " << db_max_size
      << "\n"
      << "olcDbIndex: objectClass eq\n"
      << "olcDbIndex: uid eq\n"
      << "olcDbIndex: mail eq\n"
      << "olcLastMod: TRUE\n"
      << "olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none\n"
      << "olcAccess: {1}to * by * read\n";
  return out.str();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("slapd_instance: cannot write " + path.string());
}

/// Runs slapadd; throws with its output when it fails.
void slapadd(const std::vector<std::string>& args, const std::filesystem::path& ldif) {
  std::vector<std::string> argv{slapadd_program.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.emplace_back("-l");
  argv.emplace_back(ldif.string());
  const command_result r = run_command(argv, std::chrono::seconds{60});
  if (r.exit_code != 0) {
    throw std::runtime_error("slapd_instance: slapadd of " + ldif.string() + " failed (exit " +
                             std::to_string(r.exit_code) + (r.timed_out ? ", timed out" : "") +
                             "): " + r.out + r.err);
  }
}

/// What slapd wrote to its log since byte `from`, at most the last 4 KiB.
std::string log_tail(const std::filesystem::path& log, std::uintmax_t from) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uintmax_t>(in.tellg());
  constexpr std::uintmax_t max_tail = 4096;
  const std::uintmax_t start = std::max(from, size > max_tail ? size - max_tail : 0);
  if (start >= size) return {};
  in.seekg(static_cast<std::streamoff>(start));
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

std::uintmax_t file_size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

}  // namespace

std::string ssha_hash(std::string_view password) {
  std::array<unsigned char, 8> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    throw std::runtime_error("ssha_hash: RAND_bytes failed");
  }
  std::string input(password);
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_sha1(), nullptr) !=
      1) {
    throw std::runtime_error("ssha_hash: SHA-1 failed");
  }
  std::string raw(reinterpret_cast<const char*>(digest.data()), digest_len);
  raw.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  return "{SSHA}" + base64(raw);
}

slapd_instance::slapd_instance(const std::filesystem::path& dir, options opts)
    : dir_(std::filesystem::absolute(dir)), opts_(std::move(opts)) {
  if (!std::filesystem::is_directory(dir_) || !std::filesystem::is_empty(dir_)) {
    throw std::runtime_error("slapd_instance: " + dir_.string() +
                             " must be an existing empty directory");
  }
  for (const auto& program : {slapd_program, slapadd_program}) {
    if (::access(program.c_str(), X_OK) != 0) {
      throw std::runtime_error("slapd_instance: " + program.string() +
                               " is missing (install Debian's slapd package)");
    }
  }
  const auto config_dir = dir_ / "slapd.d";
  std::filesystem::create_directory(config_dir);
  std::filesystem::create_directory(dir_ / "db");

  write_file(dir_ / "config.ldif", config_ldif(dir_, opts_));
  slapadd({"-n0", "-F", config_dir.string()}, dir_ / "config.ldif");
  write_file(dir_ / "base.ldif", base_entry_ldif(opts_.suffix));
  slapadd({"-F", config_dir.string(), "-b", opts_.suffix}, dir_ / "base.ldif");
  for (const auto& data : opts_.data_ldifs) {
    if (!std::filesystem::is_regular_file(data)) {
      throw std::runtime_error("slapd_instance: data LDIF not found: " + data.string());
    }
    slapadd({"-F", config_dir.string(), "-b", opts_.suffix}, data);
  }

  const auto log = log_file();
  for (int attempt = 1;; ++attempt) {
    port_ = free_tcp_port(listen_address);
    const std::uintmax_t log_start = file_size_or_zero(log);
    // "-d none" keeps slapd in the foreground like "-d 0", but "-d 0" also
    // silences every message, including the bind error this loop looks for;
    // "none" logs only what slapd logs at any level: start, stop and errors.
    pid_ = spawn_background(
        {slapd_program.string(), "-d", "none", "-F", config_dir.string(), "-h", uri()},
        {.log_file = log, .die_with_parent = true});

    const auto deadline = clock::now() + opts_.start_timeout;
    bool ready = false;
    std::string failure;
    while (!ready && failure.empty()) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        failure = "slapd " + describe_status(status);
        break;
      }
      // "slapd starting" is logged once every listener is bound, so a port
      // that accepts after it is slapd's and not a stranger's that took the
      // free port first.
      if (log_tail(log, log_start).find("slapd starting") != std::string::npos &&
          port_accepts(listen_address, port_, std::chrono::milliseconds{200})) {
        ready = true;
        break;
      }
      if (clock::now() >= deadline) {
        failure = "slapd did not accept connections on " + uri() + " within " +
                  std::to_string(opts_.start_timeout.count()) + " s";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    if (ready) return;

    stop();
    const std::string tail = log_tail(log, log_start);
    const bool port_taken = tail.find("Address already in use") != std::string::npos;
    if (port_taken && attempt < max_start_attempts) continue;
    std::string message = "slapd_instance: " + failure;
    message += " (attempt " + std::to_string(attempt) + "); log " + log.string() + ":\n";
    message += tail;
    throw std::runtime_error(message);
  }
}

slapd_instance::~slapd_instance() { stop(); }

std::string slapd_instance::uri() const {
  return std::string("ldap://") + listen_address + ":" + std::to_string(port_) + "/";
}

void slapd_instance::stop() {
  if (pid_ <= 0) return;
  terminate_child(pid_, std::chrono::seconds{5});
  pid_ = -1;
}

}  // namespace hamail::test

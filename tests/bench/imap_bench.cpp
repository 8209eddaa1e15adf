// imap_bench: the IMAP load generator behind tests/bench/imap_bench.py.
//
// One process drives one server on loopback with one workload and prints a
// single JSON object on stdout (figures plus the generator's own CPU use from
// getrusage). Plain blocking sockets, one thread per client: the workloads run
// at most a few dozen clients, and the idle workload opens its connections one
// after another (--clients threads in parallel) and then only holds them. TLS (implicit, as on port
// 993) via OpenSSL. See tests/bench/README.md.
//
//   imap_bench mixed  --port P --clients 50 --duration 30 --accounts 20 [--hot]
//   imap_bench login  --port P --clients 1|50 --duration 30 --accounts 20
//   imap_bench idle   --port P --connections 2000 --clients 16 --accounts 20 [--tls]
//
// The idle workload prints {"ready": K, ...} once all K connections are in IDLE,
// then waits for a line on stdin before ending IDLE, logging out and closing.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

/// Command-line settings shared by every workload.
struct options {
  std::string workload;
  std::string host = "127.0.0.1";
  int port = 0;
  bool tls = false;
  int clients = 50;
  int connections = 2000;
  double duration = 30;
  int accounts = 20;
  int messages = 200;                ///< messages pre-filled per INBOX (never expunged by the mix)
  bool hot = false;                  ///< every client on account 0
  std::string user_prefix = "user";  ///< account i logs in as <prefix><i, 3 digits>@<domain>
  std::string domain = "bench.test";
  std::string password = "bench";
  int size = 4096;  ///< octets per APPENDed message
};

/// A failed connection or protocol step; ends the client that hit it.
struct bench_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One IMAP connection: plain TCP or implicit TLS, blocking I/O.
class connection {
 public:
  connection(const options& o, SSL_CTX* ctx) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw bench_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(o.port));
    ::inet_pton(AF_INET, o.host.c_str(), &sa.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      const int e = errno;
      ::close(fd_);
      throw bench_error(std::string("connect: ") + std::strerror(e));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx != nullptr) {
      ssl_ = SSL_new(ctx);
      SSL_set_fd(ssl_, fd_);
      if (SSL_connect(ssl_) != 1) {
        SSL_free(ssl_);
        ::close(fd_);
        throw bench_error("TLS handshake failed");
      }
    }
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    ::close(fd_);
  }

  /// Writes all of `data`.
  void send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const long n = ssl_ != nullptr
                         ? SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off))
                         : ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw bench_error("write failed");
      off += static_cast<std::size_t>(n);
    }
  }

  /// One line without its CRLF.
  std::string line() {
    for (;;) {
      const auto i = buf_.find("\r\n", pos_);
      if (i != std::string::npos) {
        std::string out = buf_.substr(pos_, i - pos_);
        pos_ = i + 2;
        return out;
      }
      fill();
    }
  }

  /// Skips exactly n octets (a literal's contents).
  void skip(std::size_t n) {
    while (buf_.size() - pos_ < n) {
      n -= buf_.size() - pos_;
      pos_ = buf_.size();
      fill();
    }
    pos_ += n;
  }

  /// Reads a whole server response up to the tagged line of `tag`; untagged
  /// lines (with literals skipped) are kept in `untagged` when given. Returns
  /// the tagged line.
  std::string response(const std::string& tag, std::vector<std::string>* untagged = nullptr) {
    for (;;) {
      std::string l = line();
      // A line may end in a literal {n}: skip it and keep reading the line.
      while (!l.empty() && l.back() == '}') {
        const auto open = l.rfind('{');
        if (open == std::string::npos) break;
        const auto n = std::strtoull(l.c_str() + open + 1, nullptr, 10);
        skip(n);
        l += line();
      }
      if (l.compare(0, tag.size() + 1, tag + " ") == 0) return l;
      if (untagged != nullptr) untagged->push_back(std::move(l));
    }
  }

 private:
  void fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > 65536) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char tmp[65536];
    const long n =
        ssl_ != nullptr ? SSL_read(ssl_, tmp, sizeof tmp) : ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) throw bench_error("connection closed by server");
    buf_.append(tmp, static_cast<std::size_t>(n));
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
  std::size_t pos_ = 0;
};

/// An IMAP client on one connection: tags, status checks, counters.
class client {
 public:
  client(const options& o, SSL_CTX* ctx) : c_(o, ctx) {
    const auto greeting = c_.line();
    if (greeting.rfind("* OK", 0) != 0) throw bench_error("greeting: " + greeting);
  }

  /// Sends one command, waits for its completion; true on OK.
  bool run(const std::string& cmd, std::vector<std::string>* untagged = nullptr,
           std::string* tagged = nullptr) {
    const std::string tag = "a" + std::to_string(++seq_);
    c_.send(tag + " " + cmd + "\r\n");
    auto t = c_.response(tag, untagged);
    ++commands;
    const bool ok = t.compare(tag.size() + 1, 2, "OK") == 0;
    if (!ok) {
      ++failures;
      if (last_failure.empty()) last_failure = cmd.substr(0, 60) + " -> " + t.substr(0, 160);
    }
    if (tagged != nullptr) *tagged = std::move(t);
    return ok;
  }

  /// APPEND with a synchronising-free literal (LITERAL+ is not assumed: waits for "+").
  bool append(const std::string& mailbox, const std::string& message, std::string* tagged) {
    const std::string tag = "a" + std::to_string(++seq_);
    c_.send(tag + " APPEND " + mailbox + " {" + std::to_string(message.size()) + "}\r\n");
    for (;;) {
      const auto l = c_.line();
      if (l.rfind("+", 0) == 0) break;
      if (l.compare(0, tag.size() + 1, tag + " ") == 0) {
        ++commands;
        ++failures;
        return false;
      }
    }
    c_.send(message + "\r\n");
    auto t = c_.response(tag);
    ++commands;
    const bool ok = t.compare(tag.size() + 1, 2, "OK") == 0;
    if (!ok) {
      ++failures;
      if (last_failure.empty()) last_failure = "APPEND -> " + t.substr(0, 160);
    }
    *tagged = std::move(t);
    return ok;
  }

  /// LOGIN + SELECT INBOX; throws when either fails.
  void login_select(const std::string& user, const std::string& password) {
    if (!run("LOGIN \"" + user + "\" \"" + password + "\""))
      throw bench_error("LOGIN failed: " + last_failure);
    if (!run("SELECT INBOX")) throw bench_error("SELECT failed: " + last_failure);
  }

  /// Enters IDLE and waits for the continuation.
  void idle() {
    idle_tag_ = "a" + std::to_string(++seq_);
    c_.send(idle_tag_ + " IDLE\r\n");
    for (;;) {
      const auto l = c_.line();
      if (l.rfind("+", 0) == 0) return;
      if (l.compare(0, idle_tag_.size() + 1, idle_tag_ + " ") == 0)
        throw bench_error("IDLE refused: " + l);
    }
  }

  /// Ends IDLE, logs out.
  void done_logout() {
    c_.send("DONE\r\n");
    c_.response(idle_tag_);
    logout();
  }

  /// LOGOUT, reading the BYE and the tagged OK.
  void logout() { run("LOGOUT"); }

  std::uint64_t commands = 0;
  std::uint64_t failures = 0;
  std::string last_failure;

 private:
  connection c_;
  std::uint64_t seq_ = 0;
  std::string idle_tag_;
};

std::string user_name(const options& o, int i) {
  std::string n = std::to_string(o.hot ? 0 : i % o.accounts);
  if (n.size() < 3) n.insert(0, 3 - n.size(), '0');
  return o.user_prefix + n + "@" + o.domain;
}

/// A message of about o.size octets from one of 20 senders.
std::string make_message(const options& o, std::mt19937& rng, int client_no, std::uint64_t n) {
  std::string m = "From: sender" + std::to_string(rng() % 20) +
                  "@example.net\r\nTo: bench@bench.test\r\nSubject: appended " +
                  std::to_string(client_no) + "/" + std::to_string(n) + "\r\nMessage-ID: <app" +
                  std::to_string(client_no) + "." + std::to_string(n) +
                  "@bench.test>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n";
  while (static_cast<int>(m.size()) < o.size)
    m += "lorem ipsum dolor sit amet consectetur adipiscing elit\r\n";
  return m;
}

/// Totals every thread adds its figures to.
struct totals {
  std::mutex mu;
  std::uint64_t commands = 0;
  std::uint64_t failures = 0;
  std::uint64_t operations = 0;  ///< logins (login workload) or mix rounds (mixed)
  std::uint64_t client_errors = 0;
  std::map<std::string, std::uint64_t> per_command;
  std::map<std::string, double> per_command_seconds;
  std::string first_error;

  void add(const client& c, std::uint64_t ops) {
    std::lock_guard lock(mu);
    commands += c.commands;
    failures += c.failures;
    operations += ops;
    if (first_error.empty() && !c.last_failure.empty()) first_error = c.last_failure;
  }
  void error(const std::string& what) {
    std::lock_guard lock(mu);
    ++client_errors;
    if (first_error.empty()) first_error = what;
  }
};

/// The persistent mixed workload of one client until `end`.
void mixed_client(const options& o, int no, steady::time_point end, totals& t) {
  std::mt19937 rng(static_cast<unsigned>(no) * 7919U + 1);
  std::map<std::string, std::uint64_t> counts;
  std::map<std::string, double> secs;
  std::uint64_t rounds = 0;
  try {
    client c(o, nullptr);
    c.login_select(user_name(o, no), o.password);
    const int n = std::max(1, o.messages);
    auto timed = [&](const char* name, auto&& fn) {
      const auto t0 = steady::now();
      fn();
      secs[name] += std::chrono::duration<double>(steady::now() - t0).count();
      ++counts[name];
    };
    while (steady::now() < end) {
      const int first = static_cast<int>(rng() % static_cast<unsigned>(n)) + 1;
      const int last = std::min(n, first + 9);
      timed("fetch_headers", [&] {
        c.run("FETCH " + std::to_string(first) + ":" + std::to_string(last) +
              " (UID FLAGS BODY.PEEK[HEADER])");
      });
      const int one = static_cast<int>(rng() % static_cast<unsigned>(n)) + 1;
      timed("fetch_body", [&] { c.run("FETCH " + std::to_string(one) + " (BODY.PEEK[])"); });
      timed("store", [&] {
        c.run("STORE " + std::to_string(one) +
              (rounds % 2 == 0 ? " +FLAGS (\\Seen)" : " -FLAGS (\\Seen)"));
      });
      timed("store", [&] { c.run("STORE " + std::to_string(first) + " +FLAGS (\\Flagged)"); });
      timed("search_unseen", [&] { c.run("SEARCH UNSEEN"); });
      timed("search_from",
            [&] { c.run("SEARCH FROM \"sender" + std::to_string(rng() % 20) + "\""); });
      std::string tagged;
      bool appended = false;
      timed("append",
            [&] { appended = c.append("INBOX", make_message(o, rng, no, rounds), &tagged); });
      // Expunge only what this client appended (APPENDUID), so the pre-filled
      // messages 1..n stay and their sequence numbers stay valid for everyone.
      const auto p = tagged.find("[APPENDUID ");
      if (appended && p != std::string::npos) {
        const auto sp = tagged.find(' ', p + 11);
        const auto uid = tagged.substr(sp + 1, tagged.find(']', sp) - sp - 1);
        timed("store", [&] { c.run("UID STORE " + uid + " +FLAGS.SILENT (\\Deleted)"); });
        timed("expunge", [&] { c.run("UID EXPUNGE " + uid); });
      } else if (appended) {
        timed("expunge", [&] { c.run("NOOP"); });
      }
      ++rounds;
    }
    c.logout();
    t.add(c, rounds);
    std::lock_guard lock(t.mu);
    for (auto& [k, v] : counts) t.per_command[k] += v;
    for (auto& [k, v] : secs) t.per_command_seconds[k] += v;
  } catch (const std::exception& e) {
    t.error(e.what());
  }
}

/// Connection per login: connect, greeting, LOGIN, LOGOUT, close, until `end`.
void login_client(const options& o, int no, steady::time_point end, totals& t, SSL_CTX* ctx) {
  std::uint64_t i = 0;
  while (steady::now() < end) {
    ++i;
    try {
      client c(o, ctx);
      if (!c.run("LOGIN \"" + user_name(o, no + static_cast<int>(i) * o.clients) + "\" \"" +
                 o.password + "\"")) {
        t.add(c, 0);
        continue;
      }
      c.logout();
      t.add(c, 1);
    } catch (const std::exception& e) {
      t.error(e.what());
    }
  }
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/// `"key": value` pairs of the generator's resource use for the JSON output.
std::string cpu_json(double cpu, double wall) {
  const auto cores = std::max(1U, std::thread::hardware_concurrency());
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"cpu_seconds\": %.3f, \"cpu_pct_of_one_core\": %.1f, \"cpu_pct_of_machine\": "
                "%.1f, \"cores\": %u",
                cpu, 100.0 * cpu / wall, 100.0 * cpu / wall / cores, cores);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out + "\"";
}

int run_timed(const options& o, SSL_CTX* ctx) {
  totals t;
  const auto cpu0 = cpu_seconds();
  const auto start = steady::now();
  const auto end = start + std::chrono::duration_cast<steady::duration>(
                               std::chrono::duration<double>(o.duration));
  std::vector<std::thread> threads;
  for (int i = 0; i < o.clients; ++i) {
    if (o.workload == "mixed") {
      threads.emplace_back([&, i] { mixed_client(o, i, end, t); });
    } else {
      threads.emplace_back([&, i] { login_client(o, i, end, t, ctx); });
    }
  }
  for (auto& th : threads) th.join();
  const double wall = std::chrono::duration<double>(steady::now() - start).count();
  const double cpu = cpu_seconds() - cpu0;
  std::printf(
      "{\"workload\": \"%s\", \"clients\": %d, \"hot\": %s, \"seconds\": %.3f, \"commands\": %llu, "
      "\"commands_per_s\": %.1f, \"operations\": %llu, \"operations_per_s\": %.1f, "
      "\"failures\": %llu, \"client_errors\": %llu, \"first_error\": %s, %s",
      o.workload.c_str(), o.clients, o.hot ? "true" : "false", wall,
      static_cast<unsigned long long>(t.commands), static_cast<double>(t.commands) / wall,
      static_cast<unsigned long long>(t.operations), static_cast<double>(t.operations) / wall,
      static_cast<unsigned long long>(t.failures), static_cast<unsigned long long>(t.client_errors),
      json_string(t.first_error).c_str(), cpu_json(cpu, wall).c_str());
  std::printf(", \"per_command\": {");
  bool first = true;
  for (auto& [k, v] : t.per_command) {
    std::printf("%s\"%s\": {\"count\": %llu, \"avg_ms\": %.3f}", first ? "" : ", ", k.c_str(),
                static_cast<unsigned long long>(v),
                1000.0 * t.per_command_seconds[k] / static_cast<double>(v));
    first = false;
  }
  std::printf("}}\n");
  return t.client_errors == 0 && t.failures == 0 ? 0 : 1;
}

int run_idle(const options& o, SSL_CTX* ctx) {
  const auto cpu0 = cpu_seconds();
  const auto start = steady::now();
  // Opened by o.clients threads in parallel (a forking server takes a while
  // per connection); held afterwards by this thread alone.
  const int openers = std::max(1, std::min(o.clients, o.connections));
  std::vector<std::vector<std::unique_ptr<client>>> parts(static_cast<std::size_t>(openers));
  std::mutex mu;
  std::string error;
  std::vector<std::thread> threads;
  for (int t = 0; t < openers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < o.connections; i += openers) {
        try {
          auto c = std::make_unique<client>(o, ctx);
          c->login_select(user_name(o, i), o.password);
          c->idle();
          parts[static_cast<std::size_t>(t)].push_back(std::move(c));
        } catch (const std::exception& e) {
          std::lock_guard lock(mu);
          if (error.empty()) error = "connection " + std::to_string(i) + ": " + e.what();
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::unique_ptr<client>> held;
  for (auto& part : parts) {
    for (auto& c : part) held.push_back(std::move(c));
  }
  const double wall = std::chrono::duration<double>(steady::now() - start).count();
  std::printf(
      "{\"ready\": %zu, \"wanted\": %d, \"tls\": %s, \"seconds_to_open\": %.3f, \"error\": %s, "
      "%s}\n",
      held.size(), o.connections, ctx != nullptr ? "true" : "false", wall,
      json_string(error).c_str(), cpu_json(cpu_seconds() - cpu0, wall).c_str());
  std::fflush(stdout);
  std::string ignored;
  std::getline(std::cin, ignored);
  std::size_t closed_ok = 0;
  for (auto& c : held) {
    try {
      c->done_logout();
      ++closed_ok;
    } catch (const std::exception&) {
    }
    c.reset();
  }
  std::printf("{\"closed\": %zu}\n", closed_ok);
  return error.empty() && closed_ok == held.size() ? 0 : 1;
}

[[noreturn]] void usage() {
  std::fprintf(
      stderr,
      "usage: imap_bench mixed|login|idle --port P [--host H] [--tls] [--clients N] [--connections "
      "K]\n"
      "       [--duration S] [--accounts A] [--messages M] [--hot] [--user-prefix P] [--domain D]\n"
      "       [--password PW] [--size OCTETS]\n");
  std::exit(2);
}

options parse(int argc, char** argv) {
  if (argc < 2) usage();
  options o;
  o.workload = argv[1];
  if (o.workload != "mixed" && o.workload != "login" && o.workload != "idle") usage();
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = std::stoi(value());
    else if (a == "--tls")
      o.tls = true;
    else if (a == "--clients")
      o.clients = std::stoi(value());
    else if (a == "--connections")
      o.connections = std::stoi(value());
    else if (a == "--duration")
      o.duration = std::stod(value());
    else if (a == "--accounts")
      o.accounts = std::stoi(value());
    else if (a == "--messages")
      o.messages = std::stoi(value());
    else if (a == "--hot")
      o.hot = true;
    else if (a == "--user-prefix")
      o.user_prefix = value();
    else if (a == "--domain")
      o.domain = value();
    else if (a == "--password")
      o.password = value();
    else if (a == "--size")
      o.size = std::stoi(value());
    else
      usage();
  }
  if (o.port <= 0 || o.accounts < 1 || o.clients < 1) usage();
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  // Room for every held connection (one descriptor each) and then some.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  SSL_CTX* ctx = nullptr;
  if (o.tls) {
    ctx = SSL_CTX_new(TLS_client_method());
    // Loopback benchmark against throwaway certificates: no verification.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  int rc = 0;
  try {
    rc = o.workload == "idle" ? run_idle(o, ctx) : run_timed(o, ctx);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imap_bench: %s\n", e.what());
    rc = 1;
  }
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return rc;
}

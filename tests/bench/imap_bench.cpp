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
//   imap_bench pop3   --port P --pop3-port Q --clients 1|50 --duration 30 --accounts 50
//                     --messages 30 --dele 2 --user-prefix pop
//
// The login workload also reports per-login latency percentiles (p50_ms, p90_ms,
// p99_ms): connect() to the tagged OK of LOGIN, greeting included, LOGOUT not.
//
// The idle workload prints {"ready": K, ...} once all K connections are in IDLE,
// then waits for a line on stdin before ending IDLE, logging out and closing.
//
// The pop3 workload runs in rounds. Each client owns one mailbox (account i),
// topped up to --messages messages of exactly --size octets over IMAP APPEND
// before the first round. In a round every client runs one POP3 session at the
// same time (connect, USER, PASS, STAT, UIDL, RETR of every message, DELE of the
// first --dele messages, QUIT); when all have ended, each client APPENDs --dele
// new messages over a logged-in IMAP connection, so the next session again finds
// --messages messages. Only the session phases are timed. Every session checks
// STAT = --messages messages and --messages x --size octets, every RETR exactly
// --size octets and that no UIDL deleted earlier is back (a DELE not applied at
// QUIT shows as one message too many in the next STAT).

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
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
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
  int size = 4096;        ///< octets per APPENDed message
  int pop3_port = 0;      ///< pop3 workload: the POP3 listener (--port is the IMAP one for refills)
  int dele = 2;           ///< pop3 workload: messages each session deletes (and the refill adds)
  int warmup_rounds = 1;  ///< pop3 workload: rounds run before the measured ones
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

  /// Gives up on a read or write that waits longer than `seconds` (a hung server
  /// ends the run with an error instead of blocking it).
  void set_timeout(int seconds) {
    timeval tv{};
    tv.tv_sec = seconds;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
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
    if (n < 0 && ssl_ == nullptr) throw bench_error(std::string("recv: ") + std::strerror(errno));
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
  std::vector<double> login_ms;  ///< login workload: connect -> tagged LOGIN OK, per login
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
  std::vector<double> ms;  // this client's login latencies, merged at the end
  while (steady::now() < end) {
    ++i;
    try {
      const auto t0 = steady::now();
      client c(o, ctx);
      if (!c.run("LOGIN \"" + user_name(o, no + static_cast<int>(i) * o.clients) + "\" \"" +
                 o.password + "\"")) {
        t.add(c, 0);
        continue;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(steady::now() - t0).count());
      c.logout();
      t.add(c, 1);
    } catch (const std::exception& e) {
      t.error(e.what());
    }
  }
  std::lock_guard lock(t.mu);
  t.login_ms.insert(t.login_ms.end(), ms.begin(), ms.end());
}

/// The q-quantile (0..1) of `v` by the nearest-rank method; 0 when empty. Sorts `v`.
double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
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
  if (o.workload == "login") {
    // Per login: from connect() to the tagged OK of LOGIN (greeting and, with
    // --tls, the handshake included; LOGOUT and close not).
    std::printf(", \"logins_timed\": %zu, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f",
                t.login_ms.size(), percentile(t.login_ms, 0.50), percentile(t.login_ms, 0.90),
                percentile(t.login_ms, 0.99));
  }
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

/// A message of exactly o.size octets with CRLF line ends; one body line starts
/// with "." so both servers' dot-stuffing (and the generator's un-stuffing) is used.
std::string exact_message(const options& o, int client_no, std::uint64_t n) {
  std::string m = "From: sender" + std::to_string(n % 20) +
                  "@example.net\r\nTo: " + user_name(o, client_no) + "\r\nSubject: pop3 message " +
                  std::to_string(client_no) + "/" + std::to_string(n) + "\r\nMessage-ID: <pop" +
                  std::to_string(client_no) + "." + std::to_string(n) +
                  "@bench.test>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n"
                  ".a line that starts with a dot\r\n";
  const std::string filler = "lorem ipsum dolor sit amet consectetur adipiscing elit\r\n";
  const auto size = static_cast<std::size_t>(o.size);
  while (m.size() + filler.size() + 3 <= size) m += filler;
  if (m.size() + 3 > size) throw bench_error("--size too small for the pop3 messages");
  m += std::string(size - m.size() - 2, 'x') + "\r\n";
  return m;
}

/// One POP3 conversation on a plain connection to o.pop3_port.
class pop3_client {
 public:
  explicit pop3_client(const options& o) : c_(with_port(o), nullptr) {
    c_.set_timeout(60);
    const auto greeting = c_.line();
    if (greeting.rfind("+OK", 0) != 0) throw bench_error("POP3 greeting: " + greeting);
  }

  /// Sends one command and returns its +OK status line; throws on anything else.
  std::string run(const std::string& cmd) {
    c_.send(cmd + "\r\n");
    auto l = c_.line();
    if (l.rfind("+OK", 0) != 0) throw bench_error(cmd.substr(0, 60) + " -> " + l.substr(0, 160));
    return l;
  }

  /// Reads a multi-line reply's body up to its "." line, undoing dot-stuffing.
  /// Returns the octets of the unstuffed body (CRLFs counted); keeps the lines
  /// in `lines` when given.
  std::uint64_t body(std::vector<std::string>* lines = nullptr) {
    std::uint64_t octets = 0;
    for (;;) {
      auto l = c_.line();
      if (l == ".") return octets;
      if (!l.empty() && l[0] == '.') l.erase(0, 1);
      octets += l.size() + 2;
      if (lines != nullptr) lines->push_back(std::move(l));
    }
  }

 private:
  static options with_port(const options& o) {
    options p = o;
    p.port = o.pop3_port;
    return p;
  }

  connection c_;
};

/// One pop3 client's mailbox state and figures (touched by its thread only,
/// read by the main thread after the barrier).
struct pop3_state {
  std::unique_ptr<client> imap;   ///< logged in, nothing selected: the refills
  std::set<std::string> deleted;  ///< UIDLs this client has deleted
  std::uint64_t appended = 0;     ///< messages APPENDed so far (message numbering)
  std::uint64_t sessions = 0;     ///< measured sessions that ended with QUIT +OK
  std::uint64_t messages = 0;     ///< messages RETRieved in measured sessions
  std::uint64_t octets = 0;       ///< their octets, unstuffed
  std::uint64_t deletes = 0;      ///< DELEs in measured sessions
  std::uint64_t stat_min_msgs = UINT64_MAX, stat_max_msgs = 0;
  std::uint64_t stat_min_octets = UINT64_MAX, stat_max_octets = 0;
  std::map<std::string, double> secs;
  std::map<std::string, std::uint64_t> counts;
  std::string error;  ///< the first error; the client does nothing more after it
};

/// Appends `n` messages to the client's INBOX over its IMAP connection.
void pop3_refill(const options& o, int no, pop3_state& st, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string tagged;
    if (!st.imap->append("INBOX", exact_message(o, no, st.appended++), &tagged))
      throw bench_error("refill APPEND failed: " + st.imap->last_failure);
  }
}

/// Logs in over IMAP and tops the mailbox up to o.messages messages.
void pop3_setup(const options& o, int no, pop3_state& st) {
  st.imap = std::make_unique<client>(o, nullptr);
  if (!st.imap->run("LOGIN \"" + user_name(o, no) + "\" \"" + o.password + "\""))
    throw bench_error("IMAP LOGIN failed: " + st.imap->last_failure);
  std::vector<std::string> untagged;
  if (!st.imap->run("STATUS INBOX (MESSAGES)", &untagged))
    throw bench_error("STATUS failed: " + st.imap->last_failure);
  std::uint64_t have = 0;
  for (const auto& l : untagged) {
    const auto p = l.find("MESSAGES ");
    if (l.rfind("* STATUS", 0) == 0 && p != std::string::npos)
      have = std::strtoull(l.c_str() + p + 9, nullptr, 10);
  }
  const auto want = static_cast<std::uint64_t>(o.messages);
  if (have > want)
    throw bench_error(user_name(o, no) + " holds " + std::to_string(have) +
                      " messages, more than " + std::to_string(want));
  pop3_refill(o, no, st, want - have);
}

/// One POP3 session on the client's own mailbox; figures counted when `measured`.
void pop3_session(const options& o, int no, pop3_state& st, bool measured) {
  auto timed = [&](const char* name, auto&& fn) {
    const auto t0 = steady::now();
    fn();
    if (measured) {
      st.secs[name] += std::chrono::duration<double>(steady::now() - t0).count();
      ++st.counts[name];
    }
  };
  std::unique_ptr<pop3_client> p;
  timed("connect", [&] { p = std::make_unique<pop3_client>(o); });
  timed("user_pass", [&] {
    p->run("USER " + user_name(o, no));
    p->run("PASS " + o.password);
  });
  std::uint64_t count = 0, total = 0;
  timed("stat", [&] {
    const auto l = p->run("STAT");
    if (std::sscanf(l.c_str(), "+OK %llu %llu", reinterpret_cast<unsigned long long*>(&count),
                    reinterpret_cast<unsigned long long*>(&total)) != 2)
      throw bench_error("STAT -> " + l);
  });
  const auto want = static_cast<std::uint64_t>(o.messages);
  if (count != want || total != want * static_cast<std::uint64_t>(o.size))
    throw bench_error("STAT of " + user_name(o, no) + ": " + std::to_string(count) + " messages, " +
                      std::to_string(total) + " octets; expected " + std::to_string(want) + ", " +
                      std::to_string(want * static_cast<std::uint64_t>(o.size)));
  std::vector<std::string> uidl;
  timed("uidl", [&] {
    p->run("UIDL");
    p->body(&uidl);
  });
  if (uidl.size() != count)
    throw bench_error("UIDL listed " + std::to_string(uidl.size()) + " of " +
                      std::to_string(count) + " messages");
  std::vector<std::string> uids;
  for (std::size_t i = 0; i < uidl.size(); ++i) {
    const auto sp = uidl[i].find(' ');
    if (sp == std::string::npos || uidl[i].substr(0, sp) != std::to_string(i + 1))
      throw bench_error("UIDL line " + std::to_string(i + 1) + ": " + uidl[i]);
    uids.push_back(uidl[i].substr(sp + 1));
    if (st.deleted.count(uids.back()) != 0)
      throw bench_error("UIDL " + uids.back() + " was deleted by an earlier session");
  }
  std::uint64_t octets = 0;
  for (std::uint64_t k = 1; k <= count; ++k) {
    timed("retr", [&] {
      p->run("RETR " + std::to_string(k));
      const auto n = p->body();
      if (n != static_cast<std::uint64_t>(o.size))
        throw bench_error("RETR " + std::to_string(k) + ": " + std::to_string(n) +
                          " octets, expected " + std::to_string(o.size));
      octets += n;
    });
  }
  const auto dele = std::min<std::uint64_t>(static_cast<std::uint64_t>(o.dele), count);
  for (std::uint64_t k = 1; k <= dele; ++k) {
    timed("dele", [&] { p->run("DELE " + std::to_string(k)); });
  }
  timed("quit", [&] { p->run("QUIT"); });
  for (std::uint64_t k = 1; k <= dele; ++k) st.deleted.insert(uids[k - 1]);
  if (measured) {
    ++st.sessions;
    st.messages += count;
    st.octets += octets;
    st.deletes += dele;
    st.stat_min_msgs = std::min(st.stat_min_msgs, count);
    st.stat_max_msgs = std::max(st.stat_max_msgs, count);
    st.stat_min_octets = std::min(st.stat_min_octets, total);
    st.stat_max_octets = std::max(st.stat_max_octets, total);
  }
}

/// (total, idle) jiffies of the whole machine from /proc/stat.
std::pair<std::uint64_t, std::uint64_t> machine_jiffies() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  f >> cpu;
  std::uint64_t total = 0, idle = 0, v = 0;
  for (int i = 0; i < 10 && f >> v; ++i) {
    total += v;
    if (i == 3 || i == 4) idle += v;
  }
  return {total, idle};
}

int run_pop3(const options& o) {
  const int n = o.clients;
  std::vector<pop3_state> st(static_cast<std::size_t>(n));
  const auto wall0 = steady::now();
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        try {
          pop3_setup(o, i, st[static_cast<std::size_t>(i)]);
        } catch (const std::exception& e) {
          st[static_cast<std::size_t>(i)].error = std::string("set-up: ") + e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const double setup_seconds = std::chrono::duration<double>(steady::now() - wall0).count();
  // Phases per round: (A) everyone ready -> sessions run -> (B) all sessions
  // ended -> refills run -> back to (A). The main thread times A..B.
  std::barrier sync(n + 1);
  std::atomic<bool> stop{false};
  std::atomic<bool> measured{false};
  std::atomic<int> broken{0};  // clients that hit an error: the run ends after that round
  for (const auto& s : st) broken += s.error.empty() ? 0 : 1;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto& s = st[static_cast<std::size_t>(i)];
      for (;;) {
        sync.arrive_and_wait();
        if (stop.load()) return;
        const std::uint64_t before = s.deleted.size();
        if (s.error.empty()) {
          try {
            pop3_session(o, i, s, measured.load());
          } catch (const std::exception& e) {
            s.error = e.what();
            ++broken;
          }
        }
        sync.arrive_and_wait();
        if (s.error.empty()) {
          try {
            pop3_refill(o, i, s, s.deleted.size() - before);
          } catch (const std::exception& e) {
            s.error = e.what();
            ++broken;
          }
        }
      }
    });
  }
  double timed = 0, cpu = 0;
  std::uint64_t busy_total = 0, busy_idle = 0, rounds = 0;
  for (int r = 0;; ++r) {
    const bool counting = r >= o.warmup_rounds;
    if ((counting && timed >= o.duration) || broken.load() > 0) {
      stop = true;
      sync.arrive_and_wait();
      break;
    }
    measured = counting;
    sync.arrive_and_wait();
    const auto t0 = steady::now();
    const auto cpu0 = cpu_seconds();
    const auto j0 = machine_jiffies();
    sync.arrive_and_wait();
    const auto j1 = machine_jiffies();
    if (counting) {
      timed += std::chrono::duration<double>(steady::now() - t0).count();
      cpu += cpu_seconds() - cpu0;
      busy_total += j1.first - j0.first;
      busy_idle += j1.second - j0.second;
      ++rounds;
    }
  }
  for (auto& th : threads) th.join();
  pop3_state sum;
  std::uint64_t failed = 0, imap_failures = 0;
  for (auto& s : st) {
    if (s.imap) {
      if (s.error.empty()) {
        try {
          s.imap->logout();
        } catch (const std::exception&) {
        }
      }
      imap_failures += s.imap->failures;
    }
    sum.sessions += s.sessions;
    sum.messages += s.messages;
    sum.octets += s.octets;
    sum.deletes += s.deletes;
    sum.stat_min_msgs = std::min(sum.stat_min_msgs, s.stat_min_msgs);
    sum.stat_max_msgs = std::max(sum.stat_max_msgs, s.stat_max_msgs);
    sum.stat_min_octets = std::min(sum.stat_min_octets, s.stat_min_octets);
    sum.stat_max_octets = std::max(sum.stat_max_octets, s.stat_max_octets);
    for (auto& [k, v] : s.counts) sum.counts[k] += v;
    for (auto& [k, v] : s.secs) sum.secs[k] += v;
    if (!s.error.empty()) {
      ++failed;
      if (sum.error.empty())
        sum.error = user_name(o, static_cast<int>(&s - st.data())) + ": " + s.error;
    }
  }
  if (sum.sessions == 0) sum.stat_min_msgs = sum.stat_min_octets = 0;
  const double wall = std::chrono::duration<double>(steady::now() - wall0).count();
  const double t = timed > 0 ? timed : 1;
  std::printf(
      "{\"workload\": \"pop3\", \"clients\": %d, \"messages_per_mailbox\": %d, \"size\": %d, "
      "\"dele_per_session\": %d, \"rounds\": %llu, \"seconds\": %.3f, \"wall_seconds\": %.3f, "
      "\"setup_seconds\": %.3f, \"sessions\": %llu, \"sessions_per_s\": %.1f, \"messages\": %llu, "
      "\"messages_per_s\": %.1f, \"octets\": %llu, \"deleted\": %llu, "
      "\"session_messages\": [%llu, %llu], \"session_octets\": [%llu, %llu], "
      "\"failures\": %llu, \"client_errors\": %llu, \"first_error\": %s, \"busy_pct\": %.1f, %s",
      n, o.messages, o.size, o.dele, static_cast<unsigned long long>(rounds), timed, wall,
      setup_seconds, static_cast<unsigned long long>(sum.sessions),
      static_cast<double>(sum.sessions) / t, static_cast<unsigned long long>(sum.messages),
      static_cast<double>(sum.messages) / t, static_cast<unsigned long long>(sum.octets),
      static_cast<unsigned long long>(sum.deletes),
      static_cast<unsigned long long>(sum.stat_min_msgs),
      static_cast<unsigned long long>(sum.stat_max_msgs),
      static_cast<unsigned long long>(sum.stat_min_octets),
      static_cast<unsigned long long>(sum.stat_max_octets),
      static_cast<unsigned long long>(imap_failures), static_cast<unsigned long long>(failed),
      json_string(sum.error).c_str(),
      busy_total
          ? 100.0 * static_cast<double>(busy_total - busy_idle) / static_cast<double>(busy_total)
          : 0.0,
      cpu_json(cpu, t).c_str());
  std::printf(", \"per_command\": {");
  bool first = true;
  for (auto& [k, v] : sum.counts) {
    std::printf("%s\"%s\": {\"count\": %llu, \"avg_ms\": %.3f}", first ? "" : ", ", k.c_str(),
                static_cast<unsigned long long>(v), 1000.0 * sum.secs[k] / static_cast<double>(v));
    first = false;
  }
  std::printf("}}\n");
  return failed == 0 && imap_failures == 0 ? 0 : 1;
}

[[noreturn]] void usage() {
  std::fprintf(
      stderr,
      "usage: imap_bench mixed|login|idle|pop3 --port P [--host H] [--tls] [--clients N] "
      "[--connections K]\n"
      "       [--duration S] [--accounts A] [--messages M] [--hot] [--user-prefix P] [--domain D]\n"
      "       [--password PW] [--size OCTETS] [--pop3-port Q] [--dele N] [--warmup-rounds R]\n");
  std::exit(2);
}

options parse(int argc, char** argv) {
  if (argc < 2) usage();
  options o;
  o.workload = argv[1];
  if (o.workload != "mixed" && o.workload != "login" && o.workload != "idle" &&
      o.workload != "pop3")
    usage();
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
    else if (a == "--pop3-port")
      o.pop3_port = std::stoi(value());
    else if (a == "--dele")
      o.dele = std::stoi(value());
    else if (a == "--warmup-rounds")
      o.warmup_rounds = std::stoi(value());
    else
      usage();
  }
  if (o.port <= 0 || o.accounts < 1 || o.clients < 1) usage();
  if (o.workload == "pop3" && (o.pop3_port <= 0 || o.dele < 0 || o.dele > o.messages)) usage();
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
    rc = o.workload == "idle"   ? run_idle(o, ctx)
         : o.workload == "pop3" ? run_pop3(o)
                                : run_timed(o, ctx);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imap_bench: %s\n", e.what());
    rc = 1;
  }
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return rc;
}

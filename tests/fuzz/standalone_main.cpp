// A small driver for the fuzz harnesses when libFuzzer is not available (GCC
// builds): runs every corpus file, then deterministic pseudo-random mutations
// of them until a run count or a time budget is reached.
//
// Usage: <harness> [corpus-dir-or-file ...] [-runs=N] [-max_total_time=S] [-seed=N]
// Environment (used when the option is not given): HAMAIL_FUZZ_CORPUS (a
// directory), HAMAIL_FUZZ_RUNS, HAMAIL_FUZZ_SECONDS, HAMAIL_FUZZ_SEED.
// A failing input is written to ./fuzz-crash-<pid> before the process dies.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// The input being run, for the crash handler; written with async-signal-safe calls only.
const std::string* current = nullptr;

void on_crash(int sig) {
  if (current != nullptr) {
    char name[64];
    std::snprintf(name, sizeof name, "fuzz-crash-%d", static_cast<int>(getpid()));
    const int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      const char* p = current->data();
      std::size_t left = current->size();
      while (left > 0) {
        const ssize_t n = write(fd, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
      }
      close(fd);
      const char msg[] = "fuzz: failing input written to ./fuzz-crash-<pid>\n";
      (void)!write(2, msg, sizeof msg - 1);
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void run_one(const std::string& input) {
  current = &input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  current = nullptr;
}

struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    s += 0x9e3779b97f4a7c15ull;  // splitmix64
    std::uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
};

// Tokens that matter to SMTP parsers; mutations splice them in.
constexpr std::string_view tokens[] = {
    "\r\n",
    "\n",
    "\r",
    ".",
    "\r\n.\r\n",
    "\n.\n",
    "\r\n.\n",
    "\n.\r\n",
    "\r.\r",
    "..",
    "<",
    ">",
    "<>",
    "\"",
    "\\",
    "@",
    "[",
    "]",
    "IPv6:",
    ":",
    ",",
    "=",
    "+",
    "+2B",
    " ",
    "MAIL FROM:<",
    "RCPT TO:<",
    "DATA\r\n",
    "BDAT 5 LAST\r\n",
    "AUTH PLAIN ",
    "EHLO ",
    "STARTTLS\r\n",
    "SIZE=",
    "BODY=8BITMIME",
    "SMTPUTF8",
    "RET=HDRS",
    "ENVID=",
    "AUTH=<>",
    "NOTIFY=SUCCESS,FAILURE",
    "ORCPT=rfc822;",
    "\xc3\xa9",
    "\xff",
    std::string_view("\0", 1),
};

std::string mutate(std::string s, const std::vector<std::string>& corpus, rng& r) {
  const std::size_t rounds = 1 + r.below(4);
  for (std::size_t k = 0; k < rounds; ++k) {
    switch (r.below(8)) {
      case 0:  // flip a bit
        if (!s.empty()) s[r.below(s.size())] ^= static_cast<char>(1u << r.below(8));
        break;
      case 1:  // set a random octet
        if (!s.empty()) s[r.below(s.size())] = static_cast<char>(r.below(256));
        break;
      case 2:  // insert a token
      case 3: {
        const auto& t = tokens[r.below(std::size(tokens))];
        s.insert(r.below(s.size() + 1), t);
        break;
      }
      case 4:  // delete a range
        if (!s.empty()) {
          const std::size_t at = r.below(s.size());
          s.erase(at, 1 + r.below(std::min<std::size_t>(s.size() - at, 16)));
        }
        break;
      case 5:  // duplicate a range
        if (!s.empty()) {
          const std::size_t at = r.below(s.size());
          const std::size_t len = 1 + r.below(std::min<std::size_t>(s.size() - at, 64));
          s.insert(r.below(s.size() + 1), s.substr(at, len));
        }
        break;
      case 6:  // splice with another corpus entry
        if (!corpus.empty()) {
          const auto& other = corpus[r.below(corpus.size())];
          s = s.substr(0, r.below(s.size() + 1)) + other.substr(r.below(other.size() + 1));
        }
        break;
      case 7:  // repeat a long run, to reach the limits
        s.insert(r.below(s.size() + 1), std::string(1 + r.below(2000), "xA.\r"[r.below(4)]));
        break;
    }
  }
  if (s.size() > 64 * 1024) s.resize(64 * 1024);
  return s;
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

void load(const std::filesystem::path& p, std::vector<std::string>& corpus) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(p)) {
    for (const auto& e : std::filesystem::directory_iterator(p)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());  // deterministic order
  } else {
    files.push_back(p);
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t runs = env_number("HAMAIL_FUZZ_RUNS", 20000);
  std::uint64_t seconds = env_number("HAMAIL_FUZZ_SECONDS", 5);
  std::uint64_t seed = env_number("HAMAIL_FUZZ_SEED", 1);
  std::vector<std::string> corpus;
  bool any_path = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.rfind("-runs=", 0) == 0) {
      runs = std::strtoull(argv[i] + 6, nullptr, 10);
    } else if (a.rfind("-max_total_time=", 0) == 0) {
      seconds = std::strtoull(argv[i] + 16, nullptr, 10);
    } else if (a.rfind("-seed=", 0) == 0) {
      seed = std::strtoull(argv[i] + 6, nullptr, 10);
    } else {
      load(argv[i], corpus);
      any_path = true;
    }
  }
  if (!any_path) {
    if (const char* dir = std::getenv("HAMAIL_FUZZ_CORPUS")) load(dir, corpus);
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "fuzz: no corpus given (argument or HAMAIL_FUZZ_CORPUS)\n");
    return 2;
  }

  signal(SIGABRT, on_crash);
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);

  const auto start = std::chrono::steady_clock::now();
  for (const auto& input : corpus) run_one(input);
  run_one(std::string());

  rng r{seed};
  std::uint64_t done = 0;
  std::string last = corpus.front();
  while (done < runs && std::chrono::steady_clock::now() - start < std::chrono::seconds(seconds)) {
    // Mostly mutate a corpus entry, sometimes keep mutating the last mutant.
    const std::string& base = r.below(4) == 0 ? last : corpus[r.below(corpus.size())];
    last = mutate(base, corpus, r);
    run_one(last);
    ++done;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz: %zu corpus inputs and %llu mutations in %.1f s, seed %llu\n", corpus.size(),
              static_cast<unsigned long long>(done), elapsed,
              static_cast<unsigned long long>(seed));
  std::printf("%llu passed, 0 failed\n", static_cast<unsigned long long>(done + corpus.size() + 1));
  return 0;
}

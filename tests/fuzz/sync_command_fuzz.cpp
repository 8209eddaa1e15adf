// Fuzz harness for the sync channel's command framing and parser (docs/sync.md) and its
// reply parser. The input is a byte stream a sync client (or a source store, for replies)
// might send; it is cut into lines under two limits, whole and in pseudo-random pieces, and
// these invariants are checked:
//   - consumed <= input; need_more consumes everything; the partial line held stays within
//     the limit plus its CR;
//   - the same lines, too-long markers and parse results come out however the input is cut;
//   - parse_command gives exactly a command or an error; a command's account is a valid
//     account id, a GET path passes path_problem (relative, no "." or "..", no control
//     character, within the limits), a FENCE names a valid store and a lease of 1..86400 s
//     when locked, a PULL a port above 0;
//   - a command written back in its canonical form parses to the same command;
//   - parse_reply gives exactly a reply or an error, and F/D paths pass path_problem.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "sync/sync_protocol.hpp"

namespace {

using namespace hamail::backend::sync;
using hamail::fuzz::require;

/// The canonical line of a command.
std::string to_line(const command& c) {
  std::string s(to_string(c.what));
  switch (c.what) {
    case verb::auth:
      return s + " " + c.secret;
    case verb::get:
      return s + " " + c.account + " " + c.path;
    case verb::fence:
      s += " " + c.account + (c.moved ? " MOVED " : " LOCKED ") + c.store;
      if (!c.moved) s += " " + std::to_string(c.lease_seconds);
      return s;
    case verb::pull:
      s += " " + c.account + " " + c.host + " " + std::to_string(c.port);
      if (c.final) s += " FINAL";
      if (c.rate) s += " RATE " + std::to_string(*c.rate);
      return s;
    default:
      return s + " " + c.account;
  }
}

bool same(const command& a, const command& b) {
  return a.what == b.what && a.secret == b.secret && a.account == b.account && a.path == b.path &&
         a.moved == b.moved && a.store == b.store && a.lease_seconds == b.lease_seconds &&
         a.host == b.host && a.port == b.port && a.final == b.final && a.rate == b.rate;
}

std::string check_command(const std::string& line) {
  const auto p = parse_command(line);
  require(p.cmd.has_value() != !p.error.empty(), "a command or an error");
  if (!p.cmd) return "bad:" + p.error;
  const auto& c = *p.cmd;
  if (c.what == verb::auth) {
    require(!c.secret.empty() && c.secret.size() <= max_secret, "secret within limits");
  } else {
    require(valid_account_id(c.account), "account id valid");
  }
  if (c.what == verb::get) {
    require(!path_problem(c.path).has_value(), "GET path acceptable");
    require(c.path.front() != '/', "GET path relative");
    std::string_view rest = c.path;
    for (;;) {
      const auto slash = rest.find('/');
      const auto part = rest.substr(0, slash);
      require(!part.empty() && part != "." && part != "..", "GET path has no empty, . or .. part");
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
  }
  if (c.what == verb::fence) {
    require(valid_store_name(c.store), "FENCE store valid");
    require(c.moved || (c.lease_seconds >= 1 && c.lease_seconds <= max_lease_seconds),
            "lease in range");
  }
  if (c.what == verb::pull) require(c.port > 0 && !c.host.empty(), "PULL target");
  const auto again = parse_command(to_line(c));
  require(again.cmd.has_value() && same(*again.cmd, c), "canonical form parses back");
  return "cmd:" + to_line(c);
}

std::string check_reply(const std::string& line) {
  const auto r = parse_reply(line);
  require(r.rep.has_value() != !r.error.empty(), "a reply or an error");
  if (!r.rep) return "rbad";
  if (r.rep->kind == reply::kind_t::file || r.rep->kind == reply::kind_t::dir)
    require(!path_problem(r.rep->path).has_value(), "listed path acceptable");
  if (r.rep->kind == reply::kind_t::no) require(!r.rep->code.empty(), "NO has a code");
  return "r" + std::to_string(static_cast<int>(r.rep->kind));
}

std::vector<std::string> run(const std::vector<std::string_view>& pieces, std::size_t max_line) {
  line_splitter splitter(max_line);
  std::vector<std::string> out;
  for (auto piece : pieces) {
    while (!piece.empty()) {
      const auto step = splitter.feed(piece);
      require(step.consumed <= piece.size(), "consumed <= input");
      require(splitter.buffered() <= max_line + 1, "held partial line within the limit");
      if (step.status == line_status::need_more) {
        require(step.consumed == piece.size(), "need_more consumes all input");
        break;
      }
      require(step.consumed > 0, "a finished line consumed something");
      piece.remove_prefix(step.consumed);
      if (step.status == line_status::too_long) {
        out.push_back("too_long");
        continue;
      }
      require(step.line.size() <= max_line, "line within the limit");
      out.push_back(check_command(step.line) + "|" + check_reply(step.line));
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  for (std::size_t limit : {max_command_line, std::size_t{48}}) {
    const auto whole = run({input}, limit);
    require(run(hamail::fuzz::pieces(input, seed, 7), limit) == whole,
            "same result when fed in small pieces");
    require(run(hamail::fuzz::pieces(input, seed >> 17, 300), limit) == whole,
            "same result when fed in large pieces");
  }
  return 0;
}

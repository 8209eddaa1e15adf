// Fuzz harness for the HTTP/1.1 request parser of the metrics endpoint. The
// input is a byte stream a client (Prometheus, a load balancer's health check,
// an attacker) might send; it is parsed under several limits, whole and in
// pseudo-random pieces, and these invariants are checked:
//   - consumed <= input; need_more consumes everything; a complete request
//     always makes progress; after an error the parser consumes nothing and
//     repeats the error;
//   - the octets held inside never exceed the larger limit (+1 for a CR);
//   - the same requests and errors come out however the input is cut;
//   - an error maps to 400, 414, 431, 501 or 505;
//   - a complete request is well formed: method a token, target without
//     spaces or controls, HTTP/1.0 or 1.1, at most max_headers fields with
//     lower-case token names and values without CR, LF, NUL or edge
//     whitespace, exactly one Host in HTTP/1.1, no Transfer-Encoding, no
//     non-zero Content-Length, a path starting with '/' (or "*");
//   - a complete request written back in canonical form parses to itself.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/http/request_parser.hpp"

namespace {

using namespace hamail::http;
using hamail::fuzz::require;

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string canonical(const request& r) {
  std::string out =
      r.method_name + " " + r.target + " HTTP/1." + std::to_string(r.version_minor) + "\r\n";
  for (const auto& h : r.headers) out += h.name + ": " + h.value + "\r\n";
  return out + "\r\n";
}

std::string render(const request& r) {
  std::string s = r.method_name + " " + r.target + " 1." + std::to_string(r.version_minor);
  for (const auto& h : r.headers) s += "|" + h.name + "=" + h.value;
  return s;
}

void check_request(const request& r, const request_limits& limits) {
  require(!r.method_name.empty(), "method not empty");
  for (char c : r.method_name) require(is_token_char(c), "method is a token");
  require((r.verb == method::get) == (r.method_name == "GET"), "GET verb");
  require((r.verb == method::head) == (r.method_name == "HEAD"), "HEAD verb");
  require(!r.target.empty(), "target not empty");
  for (char c : r.target) require(c > 0x20 && c < 0x7f, "target is visible ASCII");
  require(r.version_minor == 0 || r.version_minor == 1, "HTTP/1.0 or 1.1");
  require(r.headers.size() <= limits.max_headers, "at most max_headers fields");
  std::size_t hosts = 0;
  for (const auto& h : r.headers) {
    require(!h.name.empty(), "field name not empty");
    for (char c : h.name) require(is_token_char(c) && !(c >= 'A' && c <= 'Z'), "lower-case token");
    for (char c : h.value) require(c != '\r' && c != '\n' && c != '\0', "no CR, LF, NUL in value");
    require(h.value.empty() || (h.value.front() != ' ' && h.value.front() != '\t' &&
                                h.value.back() != ' ' && h.value.back() != '\t'),
            "value trimmed");
    require(h.name != "transfer-encoding", "no Transfer-Encoding");
    if (h.name == "content-length")
      require(h.value.find_first_not_of('0') == std::string::npos, "no body");
    if (h.name == "host") ++hosts;
  }
  require(hosts <= 1 && (r.version_minor == 0 || hosts == 1), "Host rules");
  const auto path = r.path();
  require(r.target == "*" || (!path.empty() && path.front() == '/'), "path starts with /");
  require(path.find('?') == std::string_view::npos, "path has no query");

  // The canonical form parses back to the same request (under generous limits:
  // canonical spacing may be longer than what was sent).
  request_parser again(request_limits{.max_request_line = limits.max_request_line + 1,
                                      .max_header_bytes = 2 * limits.max_header_bytes + 4,
                                      .max_headers = limits.max_headers});
  const auto text = canonical(r);
  const auto step = again.feed(text);
  require(step.status == parse_status::complete, "canonical form parses");
  require(step.consumed == text.size(), "canonical form consumed whole");
  require(render(*step.req) == render(r), "canonical form parses to itself");
}

std::vector<std::string> run(const std::vector<std::string_view>& pieces,
                             const request_limits& limits) {
  request_parser parser(limits);
  const std::size_t bound = limits.max_request_line + 1 > limits.max_header_bytes
                                ? limits.max_request_line + 1
                                : limits.max_header_bytes;
  std::vector<std::string> out;
  std::string pending;
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto step = parser.feed(view);
      require(step.consumed <= view.size(), "consumed <= input");
      require(parser.buffered() <= bound, "held line stays within the limit");
      if (step.status == parse_status::need_more) {
        require(step.consumed == view.size(), "need_more consumes all input");
        require(!step.req && !step.error, "need_more carries nothing");
        view = {};
        break;
      }
      if (step.status == parse_status::error) {
        require(step.error && !step.req, "error step carries an error only");
        const int code = status_code(*step.error);
        require(code == 400 || code == 414 || code == 431 || code == 501 || code == 505,
                "error status");
        require(!describe(*step.error).empty(), "error text");
        const auto again = parser.feed(view.substr(step.consumed));
        require(
            again.status == parse_status::error && again.consumed == 0 && again.error == step.error,
            "error is sticky");
        out.push_back("err:" + std::string(to_string(*step.error)));
        return out;  // a session closes the connection
      }
      require(step.req && !step.error, "complete step carries a request");
      require(step.consumed > 0, "a request consumed something");
      require(parser.idle(), "idle after a request");
      check_request(*step.req, limits);
      out.push_back(render(*step.req));
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  if (!parser.idle()) out.emplace_back("partial");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  const request_limits configs[] = {
      request_limits{},
      request_limits{.max_request_line = 24, .max_header_bytes = 64, .max_headers = 3},
      request_limits{.max_request_line = 64, .max_header_bytes = 256, .max_headers = 50},
  };
  for (const auto& limits : configs) {
    const auto whole = run({input}, limits);
    require(run(hamail::fuzz::pieces(input, seed, 7), limits) == whole,
            "same result when fed in small pieces");
    require(run(hamail::fuzz::pieces(input, seed >> 17, 300), limits) == whole,
            "same result when fed in large pieces");
  }
  return 0;
}

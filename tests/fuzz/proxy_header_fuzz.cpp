// Fuzz harness for the PROXY protocol header parser (v1 text and v2 binary).
// The input is the first octets a balancer (or anyone) sends on a connection;
// it is parsed under several limits, whole and in pseudo-random pieces, and
// these invariants are checked:
//   - consumed <= input; need_more consumes everything; the octets held stay
//     within max(107, max_v2_length); after complete or error nothing more is
//     consumed and the answer repeats;
//   - the same header or error, after the same number of octets, however the
//     input is cut;
//   - nothing past the header is consumed: the consumed prefix alone gives the
//     same answer, and a v1 header ends in CRLF, a v2 one at 16 + its length;
//   - a complete header written back (encode_v1 for v1, encode_v2 for v2)
//     parses to the same header, consuming exactly what was written; any
//     header written as v2 reads back the same but for the version;
//   - every error has a name and a text.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/proxy/header_parser.hpp"

namespace {

using namespace hamail::proxy_protocol;
using hamail::fuzz::require;

struct outcome {
  parse_status status = parse_status::need_more;
  std::optional<header> hdr;
  std::optional<parse_error> error;
  std::size_t consumed = 0;
  bool operator==(const outcome&) const = default;
};

outcome run(const std::vector<std::string_view>& pieces, const limits& lim) {
  header_parser parser(lim);
  const std::size_t bound = lim.max_v2_length > max_v1_line ? lim.max_v2_length : max_v1_line;
  outcome out;
  for (auto piece : pieces) {
    const auto s = parser.feed(piece);
    require(s.consumed <= piece.size(), "consumed <= input");
    require(parser.buffered() <= bound, "held octets stay within the limit");
    out.consumed += s.consumed;
    if (s.status == parse_status::need_more) {
      require(s.consumed == piece.size(), "need_more consumes all input");
      require(!s.hdr && !s.error, "need_more carries nothing");
      continue;
    }
    require(parser.finished(), "finished after complete or error");
    if (s.status == parse_status::complete) {
      require(s.hdr && !s.error, "complete carries a header only");
    } else {
      require(s.error && !s.hdr, "error carries an error only");
      require(!to_string(*s.error).empty() && !describe(*s.error).empty(), "error has a text");
    }
    const auto again = parser.feed(piece.substr(s.consumed));
    require(again.consumed == 0 && again.status == s.status && again.hdr == s.hdr &&
                again.error == s.error,
            "a finished parser consumes nothing and repeats itself");
    out.status = s.status;
    out.hdr = s.hdr;
    out.error = s.error;
    return out;
  }
  return out;
}

outcome run_whole(std::string_view input, const limits& lim) { return run({input}, lim); }

void check_header(std::string_view input, const outcome& whole, const limits& lim) {
  const header& h = *whole.hdr;
  const auto used = input.substr(0, whole.consumed);
  require(looks_like_proxy_header(used), "a header starts with a signature");
  if (h.version == 1) {
    require(used.size() <= max_v1_line && used.ends_with("\r\n"), "v1 ends at its CRLF");
  } else {
    require(h.version == 2, "version is 1 or 2");
    require(used.size() >= v2_fixed_length && used.size() <= lim.max_v2_length,
            "v2 header within the limit");
    const std::size_t len =
        (static_cast<std::uint8_t>(used[14]) << 8) | static_cast<std::uint8_t>(used[15]);
    require(used.size() == v2_fixed_length + len, "v2 ends at 16 + its length");
  }
  require(h.cmd == command::proxy || h.fam == family::unspec, "LOCAL has no addresses");
  if (h.fam != family::inet && h.fam != family::inet6)
    require(h.source == endpoint{} && h.destination == endpoint{}, "no endpoint without inet");
  if (h.unique_id) require(h.unique_id->size() <= 128, "unique id within 128 octets");
  require(h.other_tlvs.size() <= lim.max_other_tlvs, "kept TLVs within the limit");

  // Re-encode in the same version and parse back (with room for any size).
  const limits roomy{.max_v2_length = 16 + 65535, .max_other_tlvs = 1000};
  const std::string wire = h.version == 1 ? encode_v1(h) : encode_v2(h);
  const auto back = run_whole(wire + "tail", roomy);
  require(back.status == parse_status::complete, "re-encoded header parses");
  require(back.consumed == wire.size(), "re-encoded header consumed exactly");
  require(*back.hdr == h, "re-encoded header parses to the same header");

  // Any header written as v2 reads back the same but for the version.
  const auto as_v2 = run_whole(encode_v2(h), roomy);
  require(as_v2.status == parse_status::complete, "v2 form parses");
  header expect = h;
  expect.version = 2;
  if (h.cmd == command::local) expect = header{};
  require(*as_v2.hdr == expect, "v2 form parses to the same header");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  const limits configs[] = {
      limits{},
      limits{.max_v2_length = 64, .max_other_tlvs = 1},
      limits{.max_v2_length = 16 + 65535, .max_other_tlvs = 64, .accept_v1 = false},
      limits{.accept_v2 = false},
  };
  for (const auto& lim : configs) {
    const auto whole = run_whole(input, lim);
    require(whole.consumed <= input.size(), "consumed <= input overall");
    require(run(hamail::fuzz::pieces(input, seed, 5), lim) == whole,
            "same result when fed in small pieces");
    require(run(hamail::fuzz::pieces(input, seed >> 17, 200), lim) == whole,
            "same result when fed in large pieces");
    if (whole.status == parse_status::need_more) {
      require(whole.consumed == input.size(), "an unfinished header consumed all");
      continue;
    }
    // The answer depends on the consumed octets alone: nothing after them
    // was looked at.
    require(run_whole(input.substr(0, whole.consumed), lim) == whole,
            "the consumed prefix alone gives the same answer");
    if (whole.status == parse_status::complete) check_header(input, whole, lim);
  }
  return 0;
}

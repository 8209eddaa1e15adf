// Fuzz harness for the DATA body reader and the BDAT filter. The input is
// what a client sends after "DATA\r\n" (or as BDAT chunks). Invariants:
//   - consumed <= input, and progress on every feed;
//   - end-of-data is exactly the first <CR><LF>.<CR><LF> (the first CRLF may be
//     the DATA line's) and nothing else: no smuggled end marker;
//   - output never exceeds max_message_size;
//   - an accepted body under normalize has no bare CR or LF; any accepted
//     body ends in CRLF (or is empty) and, dot-stuffed again, reads back to
//     itself: no unstuffed end marker can leak into what is relayed;
//   - the verdict, counters and output do not depend on how input is cut.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/smtp/data_reader.hpp"

namespace {

using namespace hamail::smtp;
using hamail::fuzz::require;

struct bounded_sink final : output_sink {
  std::string data;
  std::size_t largest_write = 0;
  void write(std::string_view chunk) override {
    require(!chunk.empty(), "no empty writes");
    data.append(chunk);
    if (chunk.size() > largest_write) largest_write = chunk.size();
  }
};

struct outcome {
  bool complete = false;
  std::size_t consumed = 0;
  std::string output;
  data_result result;
};

bool same(const outcome& a, const outcome& b) {
  return a.complete == b.complete && a.consumed == b.consumed &&
         a.result.status == b.result.status && a.result.octets == b.result.octets &&
         a.result.lines == b.result.lines && a.result.normalized == b.result.normalized &&
         (a.result.status != data_status::ok || a.output == b.output);
}

outcome read(const std::vector<std::string_view>& pieces, const data_limits& limits,
             bool after_crlf) {
  data_reader reader(limits);
  reader.reset(after_crlf);
  bounded_sink sink;
  outcome o;
  for (auto piece : pieces) {
    const auto step = reader.feed(piece, sink);
    require(step.consumed <= piece.size(), "consumed <= input");
    o.consumed += step.consumed;
    if (step.complete) {
      o.complete = true;
      require(reader.complete(), "reader knows it is complete");
      break;
    }
    require(step.consumed == piece.size(), "an unfinished body consumes all input");
  }
  o.output = std::move(sink.data);
  o.result = reader.result();
  require(o.output.size() <= limits.max_message_size, "output within the size limit");
  require(o.result.octets >= o.output.size(), "octets count everything written");
  return o;
}

bool has_bare_newline(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
  }
  return false;
}

std::string dot_stuff(std::string_view content) {
  std::string out;
  bool line_start = true;
  for (std::size_t i = 0; i < content.size(); ++i) {
    if (line_start && content[i] == '.') out.push_back('.');
    out.push_back(content[i]);
    line_start = content[i] == '\n' && i > 0 && content[i - 1] == '\r';
  }
  return out + ".\r\n";
}

void check_data(std::string_view input, const data_limits& limits, bool after_crlf,
                std::uint64_t seed) {
  const auto whole = read({input}, limits, after_crlf);

  // End-of-data is exactly the first CRLF "." CRLF.
  const std::string prefix = after_crlf ? "\r\n" : "";
  const std::string stream = prefix + std::string(input);
  const auto marker = stream.find("\r\n.\r\n");
  if (marker == std::string::npos) {
    require(!whole.complete && whole.consumed == input.size(), "no end marker, no end");
  } else {
    require(whole.complete, "an end marker ends the body");
    require(whole.consumed == marker + 5 - prefix.size(),
            "the body ends at the first end marker only");
  }

  if (whole.complete && whole.result.status == data_status::ok) {
    if (limits.bare_newlines == bare_newline_policy::normalize) {
      require(!has_bare_newline(whole.output), "normalized output has only CRLF");
    } else {
      require(!whole.result.saw_bare_lf && !whole.result.saw_bare_cr,
              "accepted body had no bare newline");
    }
    require(whole.output.empty() || whole.output.size() >= 2, "accepted body ends in CRLF");
    if (!whole.output.empty()) {
      require(whole.output.compare(whole.output.size() - 2, 2, "\r\n") == 0,
              "accepted body ends in CRLF");
    }
    // Stuffed again (as a relay sends it), the content reads back unchanged.
    const std::string relayed = dot_stuff(whole.output);
    data_limits wide = limits;
    wide.max_line_length = relayed.size() + 2;
    const auto back = read({relayed}, wide, true);
    require(back.complete && back.consumed == relayed.size(),
            "relayed body ends at its own marker");
    require(back.result.status == data_status::ok && back.output == whole.output,
            "relayed body reads back");
  }

  require(same(read(hamail::fuzz::pieces(input, seed, 5), limits, after_crlf), whole),
          "same result in small pieces");
  require(same(read(hamail::fuzz::pieces(input, seed >> 11, 200), limits, after_crlf), whole),
          "same result in large pieces");
}

void check_bdat(std::string_view input, const data_limits& limits, bool binary,
                std::uint64_t seed) {
  auto run = [&](const std::vector<std::string_view>& chunks) {
    bdat_filter filter(limits, binary);
    bounded_sink sink;
    for (auto c : chunks) filter.feed(c, sink);
    outcome o;
    o.result = filter.finish(sink);
    o.output = std::move(sink.data);
    o.complete = true;
    require(o.output.size() <= limits.max_message_size, "BDAT output within the size limit");
    return o;
  };
  const auto whole = run({input});
  if (whole.result.status == data_status::ok) {
    if (binary) {
      require(whole.output == input, "binary BDAT passes octets unchanged");
    } else if (limits.bare_newlines == bare_newline_policy::normalize) {
      require(!has_bare_newline(whole.output), "normalized BDAT output has only CRLF");
    } else {
      require(whole.output == input, "accepted BDAT content is unchanged");
    }
  }
  require(same(run(hamail::fuzz::pieces(input, seed, 3)), whole),
          "BDAT same result across chunk splits");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  const data_limits configs[] = {
      data_limits{},
      data_limits{.bare_newlines = bare_newline_policy::normalize},
      data_limits{.max_message_size = 64,
                  .max_line_length = 16,
                  .bare_newlines = bare_newline_policy::reject},
      data_limits{.max_message_size = 64,
                  .max_line_length = 16,
                  .bare_newlines = bare_newline_policy::normalize},
  };
  for (const auto& limits : configs) {
    check_data(input, limits, true, seed);
    check_data(input, limits, false, seed);
    check_bdat(input, limits, false, seed);
  }
  check_bdat(input, data_limits{}, true, seed);
  return 0;
}

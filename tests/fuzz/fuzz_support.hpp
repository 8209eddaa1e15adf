#pragma once

// Shared by the SMTP fuzz harnesses: invariant checks that abort, and
// deterministic piece sizes derived from the input itself.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace hamail::fuzz {

/// Aborts with a message when an invariant does not hold; the fuzzer keeps the input.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

/// FNV-1a of the input, seeding the piece sizes so a given input always splits the same way.
inline std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

/// Splits input into pseudo-random pieces (1..max_piece octets, sometimes empty).
inline std::vector<std::string_view> pieces(std::string_view input, std::uint64_t seed,
                                            std::size_t max_piece) {
  std::vector<std::string_view> out;
  std::uint64_t x = seed | 1;
  while (!input.empty()) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::size_t n = static_cast<std::size_t>(x % (max_piece + 1));
    if (n > input.size()) n = input.size();
    out.push_back(input.substr(0, n));  // an empty piece checks that empty feeds are harmless
    input.remove_prefix(n);
  }
  return out;
}

}  // namespace hamail::fuzz

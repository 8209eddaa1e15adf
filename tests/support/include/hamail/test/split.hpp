#pragma once

// Cutting parser input into pieces, for the tests that feed it at every split point.

#include <cstddef>
#include <string_view>
#include <vector>

namespace hamail::test {

/// Splits input at the given ascending cut positions.
inline std::vector<std::string_view> cut(std::string_view input,
                                         const std::vector<std::size_t>& cuts) {
  std::vector<std::string_view> pieces;
  std::size_t from = 0;
  for (auto c : cuts) {
    pieces.push_back(input.substr(from, c - from));
    from = c;
  }
  pieces.push_back(input.substr(from));
  return pieces;
}

}  // namespace hamail::test

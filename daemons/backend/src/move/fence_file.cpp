#include "move/fence_file.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <vector>

#include "hamail/directory/store_record.hpp"

namespace hamail::backend::account_move {

namespace {

error bad(std::string detail) {
  return error::permanent(errc::invalid_input, "invalid fence file", std::move(detail));
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < line.size()) {
    const auto end = line.find(' ', pos);
    out.push_back(line.substr(pos, end == std::string_view::npos ? line.size() - pos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return out;
}

}  // namespace

std::string format_fence(const fence_state& f) {
  switch (f.kind) {
    case fence_state::kind_t::locked: {
      const auto until =
          std::chrono::duration_cast<std::chrono::seconds>(f.until.time_since_epoch()).count();
      return fmt::format("locked {} {}\n", f.store, until);
    }
    case fence_state::kind_t::moved:
      return fmt::format("moved {}\n", f.store);
    case fence_state::kind_t::none:
      break;
  }
  return {};
}

result<fence_state> parse_fence(std::string_view text) {
  if (text.size() > max_fence_file_size) {
    return bad(fmt::format("{} octets, more than {}", text.size(), max_fence_file_size));
  }
  if (text.ends_with('\n')) text.remove_suffix(1);
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u >= 0x7f) return bad("not one line of printable ASCII");
  }
  const auto w = words(text);
  if (w.empty() || w[0].empty()) return bad("empty");
  fence_state f;
  if (w[0] == "locked") {
    if (w.size() != 3) return bad("\"locked\" takes a store and a time (locked <store> <until>)");
    f.kind = fence_state::kind_t::locked;
    std::int64_t until = 0;
    const auto* end = w[2].data() + w[2].size();
    const auto [p, ec] = std::from_chars(w[2].data(), end, until);
    if (ec != std::errc{} || p != end || until < 0) {
      return bad(fmt::format("lease end '{}' is not a unix time", w[2]));
    }
    f.until = std::chrono::system_clock::time_point(std::chrono::seconds(until));
  } else if (w[0] == "moved") {
    if (w.size() != 2) return bad("\"moved\" takes a store (moved <store>)");
    f.kind = fence_state::kind_t::moved;
  } else {
    return bad(fmt::format("unknown fence '{}' (locked or moved)", w[0]));
  }
  if (!directory::valid_store_name(w[1])) {
    return bad(fmt::format("'{}' is not a store name", w[1]));
  }
  f.store = std::string(w[1]);
  return f;
}

}  // namespace hamail::backend::account_move

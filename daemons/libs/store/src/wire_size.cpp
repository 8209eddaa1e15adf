#include "wire_size.hpp"

#include <cstring>

namespace hamail::store::detail {

void wire_counter::add(std::string_view bytes) noexcept {
  if (bytes.empty()) return;
  const char* const begin = bytes.data();
  const char* const end = begin + bytes.size();
  const char* p = begin;
  while (p != end) {
    const auto* lf =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (lf == nullptr) break;
    // The octet before this LF may be the last one of the previous write.
    const char before = lf == begin ? last_ : lf[-1];
    if (before != '\r') ++bare_lfs_;
    p = lf + 1;
  }
  last_ = bytes.back();
}

std::uint64_t wire_size_of(std::string_view message) noexcept {
  wire_counter c;
  c.add(message);
  return c.wire_size(message.size());
}

}  // namespace hamail::store::detail

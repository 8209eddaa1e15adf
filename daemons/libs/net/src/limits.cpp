#include "hamail/net/limits.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace hamail::net {

namespace asio = boost::asio;

namespace {

/// Zeroes every bit of `bytes` after the first `prefix`.
template <std::size_t N>
void mask(std::array<unsigned char, N>& bytes, unsigned prefix) {
  for (std::size_t i = 0; i < N; ++i) {
    const unsigned first_bit = static_cast<unsigned>(i) * 8;
    if (prefix >= first_bit + 8) continue;
    const unsigned keep = prefix > first_bit ? prefix - first_bit : 0;
    bytes[i] &= static_cast<unsigned char>(0xff00u >> keep);
  }
}

}  // namespace

std::string client_key(const asio::ip::address& address, unsigned ipv4_prefix,
                       unsigned ipv6_prefix) {
  if (address.is_v4() || address.to_v6().is_v4_mapped()) {
    const auto v4 = address.is_v4()
                        ? address.to_v4()
                        : asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    const unsigned prefix = std::min(ipv4_prefix, 32u);
    if (prefix == 32) return v4.to_string();
    auto bytes = v4.to_bytes();
    mask(bytes, prefix);
    return fmt::format("{}/{}", asio::ip::address_v4(bytes).to_string(), prefix);
  }
  const auto v6 = address.to_v6();
  const unsigned prefix = std::min(ipv6_prefix, 128u);
  // The scope id (fe80::1%eth0) is not part of the key: the prefix is.
  auto bytes = v6.to_bytes();
  if (prefix == 128) return asio::ip::address_v6(bytes).to_string();
  mask(bytes, prefix);
  return fmt::format("{}/{}", asio::ip::address_v6(bytes).to_string(), prefix);
}

rate_meter::rate_meter(transfer_rate rate, clock::time_point start)
    : rate_(rate),
      start_(start),
      deadline_(rate.enabled() ? start + rate.grace : clock::time_point::max()) {}

void rate_meter::add(std::uint64_t bytes, clock::time_point now) {
  // A late byte does not undo a missed deadline: the transfer was too slow.
  if (!rate_.enabled() || bytes == 0 || now >= deadline_) return;
  const auto cap = std::max(now + rate_.window, start_ + rate_.grace);
  const auto window = std::chrono::duration_cast<clock::duration>(rate_.window);
  // Seconds of credit, in floating point: bytes * 1e9 would overflow for large counts.
  const double seconds =
      static_cast<double>(bytes) / static_cast<double>(rate_.min_bytes_per_second);
  const auto credit =
      seconds >= std::chrono::duration<double>(window).count()
          ? window
          : std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  deadline_ = std::min(deadline_ + credit, cap);
}

}  // namespace hamail::net

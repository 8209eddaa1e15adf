#pragma once

// Admission and pacing rules a server applies to its clients, kept free of
// sockets so they can be tested on their own: which key a client's connections
// count under, and how fast a transfer must go.

#include <chrono>
#include <cstdint>
#include <string>

#include <boost/asio/ip/address.hpp>

namespace hamail::net {

/// The key per-client connection limits count under: an IPv4 address's
/// /`ipv4_prefix` network, or an IPv6 address's /`ipv6_prefix` network
/// ("192.0.2.7", "198.51.100.0/24", "2001:db8:1:2::/64"). One IPv6 host is
/// usually given a whole /64, so counting full addresses would let it take
/// every slot. IPv4-mapped IPv6 addresses count as IPv4. Prefixes beyond the
/// address length are clamped (/32, /128 mean the full address, written
/// without a suffix).
std::string client_key(const boost::asio::ip::address& address, unsigned ipv4_prefix,
                       unsigned ipv6_prefix);

/// A minimum transfer rate (e.g. for a message body): a client may fall behind
/// by at most `window` worth of credit, and is not measured during `grace`.
struct transfer_rate {
  std::uint64_t min_bytes_per_second = 0;  ///< 0: no minimum
  /// Credit cap: bytes sent ahead count for at most this long, so a fast start
  /// does not pay for an endless trickle afterwards.
  std::chrono::milliseconds window = std::chrono::seconds(30);
  std::chrono::milliseconds grace = std::chrono::seconds(30);  ///< unmeasured start
  bool enabled() const noexcept { return min_bytes_per_second > 0; }
};

/// Sans-I/O meter for a transfer_rate, a leaky bucket of time: the deadline
/// starts at start + grace and every byte moves it 1/rate seconds later, never
/// more than `window` past the moment it arrived. A client averaging the rate
/// keeps the deadline ahead of the clock; a slower one reaches it.
class rate_meter {
 public:
  using clock = std::chrono::steady_clock;

  /// Starts measuring at `start`.
  rate_meter(transfer_rate rate, clock::time_point start);
  /// Counts `bytes` received at `now`.
  void add(std::uint64_t bytes, clock::time_point now);
  /// The moment the transfer becomes too slow unless more bytes arrive;
  /// time_point::max() when no minimum is set.
  clock::time_point deadline() const noexcept { return deadline_; }
  /// True when the transfer is below the rate at `now`.
  bool too_slow(clock::time_point now) const noexcept { return now >= deadline_; }
  /// The rate being enforced.
  const transfer_rate& rate() const noexcept { return rate_; }

 private:
  transfer_rate rate_;
  clock::time_point start_;
  clock::time_point deadline_;
};

}  // namespace hamail::net

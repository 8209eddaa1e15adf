#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hamail::test {

/// A TCP port on `address` that was free a moment ago: bound with port 0 and
/// released. Only for external programs (slapd) that cannot bind port 0 and
/// report it; hamail's own listeners bind port 0 directly.
std::uint16_t free_tcp_port(const std::string& address = "127.0.0.1");

/// True when something accepts TCP connections on address:port (an IPv4 or
/// IPv6 literal) within half a second.
bool port_accepts(const std::string& address, std::uint16_t port);

/// True when something accepts TCP connections on address:port within `timeout`
/// (non-blocking connect; a refused or unanswered connect is false).
bool port_accepts(const std::string& address, std::uint16_t port,
                  std::chrono::milliseconds timeout);

}  // namespace hamail::test

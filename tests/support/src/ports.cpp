#include "hamail/test/ports.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace hamail::test {
namespace {

/// A socket address for a numeric IPv4 or IPv6 literal.
struct endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

endpoint make_endpoint(const std::string& address, std::uint16_t port) {
  endpoint ep;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.length = sizeof(sockaddr_in);
    ep.family = AF_INET;
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.length = sizeof(sockaddr_in6);
    ep.family = AF_INET6;
  } else {
    throw std::invalid_argument("not an IP address literal: " + address);
  }
  return ep;
}

/// Closes a socket on scope exit.
struct socket_guard {
  int fd;
  explicit socket_guard(int f) noexcept : fd(f) {}
  socket_guard(const socket_guard&) = delete;
  socket_guard& operator=(const socket_guard&) = delete;
  ~socket_guard() {
    if (fd >= 0) ::close(fd);
  }
};

std::uint16_t port_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

std::uint16_t free_tcp_port(const std::string& address) {
  endpoint ep = make_endpoint(address, 0);
  socket_guard s{::socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&ep.storage), ep.length) != 0) {
    throw std::runtime_error("bind " + address + ":0: " + std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    throw std::runtime_error(std::string("getsockname: ") + std::strerror(errno));
  }
  // Never listened or connected, so the port is free again once closed, with
  // no TIME_WAIT to wait out.
  return port_of(bound);
}

bool port_accepts(const std::string& address, std::uint16_t port) {
  return port_accepts(address, port, std::chrono::milliseconds{500});
}

bool port_accepts(const std::string& address, std::uint16_t port,
                  std::chrono::milliseconds timeout) {
  endpoint ep = make_endpoint(address, port);
  socket_guard s{::socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return false;
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&ep.storage), ep.length) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd pfd{s.fd, POLLOUT, 0};
  int ready = 0;
  do {
    ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return false;
  int so_error = 0;
  socklen_t len = sizeof so_error;
  if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) return false;
  return so_error == 0;
}

}  // namespace hamail::test

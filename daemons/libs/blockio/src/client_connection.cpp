#include "hamail/blockio/client_connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace hamail::blockio {

namespace {

using clock = client_connection::clock;

bool is_address(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

int remaining_ms(clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

std::string ssl_error_text() {
  const unsigned long e = ::ERR_get_error();
  if (e == 0) return "TLS error";
  char buf[256];
  ::ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

client_connection::client_connection(clock::time_point deadline, std::string where)
    : deadline_(deadline), where_(std::move(where)) {}

client_connection::~client_connection() {
  if (ssl_ != nullptr) ::SSL_free(ssl_);
  if (ctx_ != nullptr) ::SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

bool client_connection::connect(const std::string& address, std::uint16_t port, client_status& r) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    r.detail = "not a numeric address: " + address;
    return false;
  }
  fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return sys_fail(r, "socket");
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      r.refused = errno == ECONNREFUSED;
      return sys_fail(r, "connect");
    }
    if (!wait(POLLOUT, r, "connect")) return false;
    int err = 0;
    socklen_t elen = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) {
      errno = err;
      r.refused = err == ECONNREFUSED;
      return sys_fail(r, "connect");
    }
  }
  return true;
}

bool client_connection::start_tls(const std::string& address, const std::string& ca_file,
                                  const std::string& server_name, client_status& r) {
  ctx_ = ::SSL_CTX_new(::TLS_client_method());
  if (ctx_ == nullptr) return tls_fail(r);
  ::SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  ::SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (!ca_file.empty()) {
    if (::SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
      r.detail = where_ + ": cannot load the CA file " + ca_file + ": " + ssl_error_text();
      return false;
    }
  } else if (::SSL_CTX_set_default_verify_paths(ctx_) != 1) {
    return tls_fail(r);
  }
  ssl_ = ::SSL_new(ctx_);
  if (ssl_ == nullptr || ::SSL_set_fd(ssl_, fd_) != 1) return tls_fail(r);
  if (!server_name.empty()) {
    // SSL_set1_host matches DNS names, and IP SANs when the name is an address.
    if (::SSL_set1_host(ssl_, server_name.c_str()) != 1) return tls_fail(r);
    if (!is_address(server_name) && ::SSL_set_tlsext_host_name(ssl_, server_name.c_str()) != 1) {
      return tls_fail(r);
    }
  } else if (::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl_), address.c_str()) != 1) {
    return tls_fail(r);
  }
  for (;;) {
    const int rc = ::SSL_connect(ssl_);
    if (rc == 1) return true;
    const long verify = ::SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      ::ERR_clear_error();
      r.detail = where_ + ": TLS handshake: certificate verification failed: " +
                 ::X509_verify_cert_error_string(verify) + " (expected name " +
                 (server_name.empty() ? address : server_name) +
                 (ca_file.empty() ? ", system trust store" : ", CA file " + ca_file) + ")";
      return false;
    }
    if (!tls_wait(rc, r, "TLS handshake")) return false;
  }
}

bool client_connection::send(const std::string& data, client_status& r) {
  std::size_t off = 0;
  while (off < data.size()) {
    if (ssl_ != nullptr) {
      const int n = ::SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      if (!tls_wait(n, r, "write")) return false;
      continue;
    }
    const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLOUT, r, "write")) return false;
    } else {
      return sys_fail(r, "write");
    }
  }
  return true;
}

bool client_connection::line(std::string& out, client_status& r, const char* what) {
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl == std::string::npos) {
      if (buffer_.size() > max_line) {
        r.detail = std::string(what) + ": reply line too long";
        return false;
      }
      if (!fill(r, what)) return false;
      continue;
    }
    out = buffer_.substr(0, nl > 0 && buffer_[nl - 1] == '\r' ? nl - 1 : nl);
    buffer_.erase(0, nl + 1);
    return true;
  }
}

bool client_connection::bytes(std::size_t n, std::string& out, client_status& r, const char* what) {
  while (buffer_.size() < n) {
    if (!fill(r, what)) return false;
  }
  out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return true;
}

bool client_connection::until_closed(std::size_t limit, std::string& out, client_status& r,
                                     const char* what) {
  eof_ok_ = true;
  while (!eof_) {
    if (!fill(r, what)) return false;
    if (buffer_.size() > limit) break;
  }
  out = buffer_.substr(0, std::min(limit, buffer_.size()));
  buffer_.clear();
  return true;
}

bool client_connection::fill(client_status& r, const char* what) {
  char buf[4096];
  for (;;) {
    if (ssl_ != nullptr) {
      const int n = ::SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        buffer_.append(buf, static_cast<std::size_t>(n));
        return true;
      }
      if (eof_ok_) {
        // A server that closes without close_notify (SSL_ERROR_SYSCALL) has still ended
        // a body that runs to the end of the connection.
        const int e = ::SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) return closed();
      }
      if (!tls_wait(n, r, what)) return false;
      continue;
    }
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      buffer_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0 && eof_ok_) return closed();
    if (n == 0) {
      r.detail = where_ + ": " + what + ": connection closed by the server";
      return false;
    }
    if (errno != EAGAIN && errno != EINTR) return sys_fail(r, what);
    if (!wait(POLLIN, r, what)) return false;
  }
}

bool client_connection::closed() {
  ::ERR_clear_error();
  eof_ = true;
  return true;
}

bool client_connection::wait(short events, client_status& r, const char* what) {
  pollfd p{fd_, events, 0};
  for (;;) {
    const int ms = remaining_ms(deadline_);
    if (ms == 0) {
      r.detail = where_ + ": " + what + ": timed out";
      return false;
    }
    const int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return sys_fail(r, what);
  }
}

bool client_connection::tls_wait(int rc, client_status& r, const char* what) {
  const int e = ::SSL_get_error(ssl_, rc);
  if (e == SSL_ERROR_WANT_READ) return wait(POLLIN, r, what);
  if (e == SSL_ERROR_WANT_WRITE) return wait(POLLOUT, r, what);
  if (e == SSL_ERROR_ZERO_RETURN) {
    r.detail = where_ + ": " + what + ": connection closed by the server";
    return false;
  }
  r.detail = where_ + ": " + what + ": " + ssl_error_text();
  return false;
}

bool client_connection::sys_fail(client_status& r, const char* what) {
  r.detail = where_ + ": " + what + ": " + std::strerror(errno);
  return false;
}

bool client_connection::tls_fail(client_status& r) {
  r.detail = where_ + ": " + ssl_error_text();
  return false;
}

}  // namespace hamail::blockio

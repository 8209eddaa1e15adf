#include "hamail/relay/body_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hamail::relay {

result<std::size_t> memory_body::read_at(std::uint64_t offset, std::span<char> out) const {
  if (offset >= data_.size()) return std::size_t{0};
  const auto n = std::min<std::uint64_t>(out.size(), data_.size() - offset);
  std::memcpy(out.data(), data_.data() + offset, n);
  return static_cast<std::size_t>(n);
}

result<std::shared_ptr<file_body>> file_body::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return error::temporary(e == ENOENT ? errc::not_found : errc::io_error,
                            "cannot read the message", path + ": " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return error::temporary(errc::io_error, "cannot read the message",
                            path + ": fstat: " + std::strerror(e));
  }
  return std::shared_ptr<file_body>(
      new file_body(fd, static_cast<std::uint64_t>(st.st_size), path));
}

file_body::~file_body() { ::close(fd_); }

result<std::size_t> file_body::read_at(std::uint64_t offset, std::span<char> out) const {
  if (offset >= size_ || out.empty()) return std::size_t{0};
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - offset));
  for (;;) {
    const auto n = ::pread(fd_, out.data(), want, static_cast<off_t>(offset));
    if (n >= 0) {
      if (n == 0)  // shorter than at open: the spool file was changed under us
        return error::temporary(errc::io_error, "cannot read the message",
                                path_ + ": file shrank while being sent");
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    return error::temporary(errc::io_error, "cannot read the message",
                            path_ + ": pread: " + std::strerror(errno));
  }
}

}  // namespace hamail::relay

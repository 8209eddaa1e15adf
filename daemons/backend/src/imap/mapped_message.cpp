#include "imap/mapped_message.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace hamail::backend::imap_fetch {

mapped_message::mapped_message(mapped_message&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)) {}

mapped_message& mapped_message::operator=(mapped_message&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }
  return *this;
}

mapped_message::~mapped_message() { reset(); }

void mapped_message::reset() noexcept {
  if (data_ != nullptr) {
    if (mapped_) {
      ::munmap(const_cast<char*>(data_), size_);
    } else {
      std::free(const_cast<char*>(data_));
    }
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

result<mapped_message> mapped_message::map(const store::message_file& file) {
  return map(file.fd.get(), file.size);
}

result<mapped_message> mapped_message::map(int fd, std::uint64_t size) {
  if (size == 0) return mapped_message();
  if (size > std::numeric_limits<std::size_t>::max() / 2) {
    return error::permanent(errc::limit_exceeded, "message too large to map",
                            "size " + std::to_string(size));
  }
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int e = fd < 0 ? EBADF : errno;
    return error::temporary(errc::io_error, "cannot read the message",
                            std::string("fstat: ") + std::strerror(e));
  }
  if (st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) < size) {
    return error::temporary(
        errc::io_error, "cannot read the message",
        "file holds " + std::to_string(st.st_size) + " octets, expected " + std::to_string(size));
  }
  const auto n = static_cast<std::size_t>(size);
  if (n <= read_limit) {
    // Small messages are read: unmapping a mapping in a process with several
    // threads costs a TLB shootdown on every CPU, which under SEARCH over
    // thousands of small messages was most of the server's time.
    char* buf = static_cast<char*>(std::malloc(n));
    if (buf == nullptr) {
      return error::temporary(errc::io_error, "cannot read the message", "out of memory");
    }
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd, buf + got, n - got, static_cast<off_t>(got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        const int e = r < 0 ? errno : 0;
        std::free(buf);
        return error::temporary(errc::io_error, "cannot read the message",
                                e != 0 ? std::string("read: ") + std::strerror(e)
                                       : "file shorter than " + std::to_string(n) + " octets");
      }
      got += static_cast<std::size_t>(r);
    }
    return mapped_message(buf, n, false);
  }
  void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    return error::temporary(errc::io_error, "cannot read the message",
                            std::string("mmap: ") + std::strerror(e));
  }
  return mapped_message(static_cast<const char*>(p), n, true);
}

}  // namespace hamail::backend::imap_fetch

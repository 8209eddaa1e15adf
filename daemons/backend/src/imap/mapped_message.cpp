#include "imap/mapped_message.hpp"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace hamail::backend::imap_fetch {

mapped_message::mapped_message(mapped_message&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

mapped_message& mapped_message::operator=(mapped_message&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

mapped_message::~mapped_message() { reset(); }

void mapped_message::reset() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
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
  void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    return error::temporary(errc::io_error, "cannot read the message",
                            std::string("mmap: ") + std::strerror(e));
  }
  return mapped_message(static_cast<const char*>(p), n);
}

}  // namespace hamail::backend::imap_fetch

#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "hamail/core/result.hpp"

namespace hamail::relay {

/// A message body that several deliveries read at once, each at its own
/// offset, without the whole message in memory. Implementations must allow
/// concurrent read_at() calls (they are const and keep no cursor).
class body_source {
 public:
  virtual ~body_source() = default;
  /// Size in octets.
  virtual std::uint64_t size() const = 0;
  /// Reads up to out.size() octets at `offset`; the count read, 0 only at or
  /// past the end; an error (io_error, temporary) when the storage fails.
  virtual result<std::size_t> read_at(std::uint64_t offset, std::span<char> out) const = 0;
};

/// A body held in memory (tests, small messages).
class memory_body final : public body_source {
 public:
  /// Takes the octets of the message.
  explicit memory_body(std::string data) : data_(std::move(data)) {}
  std::uint64_t size() const override { return data_.size(); }
  result<std::size_t> read_at(std::uint64_t offset, std::span<char> out) const override;

 private:
  std::string data_;
};

/// A body in a file (the proxy's spool), read with pread(2). The size is
/// taken at open: the file must not change while deliveries read it.
class file_body final : public body_source {
 public:
  /// Opens `path` read-only; errc::not_found or io_error when it cannot.
  static result<std::shared_ptr<file_body>> open(const std::string& path);
  ~file_body() override;
  file_body(const file_body&) = delete;
  file_body& operator=(const file_body&) = delete;

  std::uint64_t size() const override { return size_; }
  result<std::size_t> read_at(std::uint64_t offset, std::span<char> out) const override;

 private:
  file_body(int fd, std::uint64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_;
  std::uint64_t size_;
  std::string path_;
};

}  // namespace hamail::relay

#pragma once

// A message body mapped read-only into memory, for FETCH to slice sections
// from without copying the file.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hamail/core/result.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_fetch {

/// A read-only, private mapping of one message file, unmapped on
/// destruction. Move-only. The mapping stays valid after the descriptor is
/// closed; store messages are never rewritten in place, so the bytes hold.
class mapped_message {
 public:
  /// An empty mapping (view() is empty).
  mapped_message() noexcept = default;
  mapped_message(mapped_message&& other) noexcept;
  mapped_message& operator=(mapped_message&& other) noexcept;
  mapped_message(const mapped_message&) = delete;
  mapped_message& operator=(const mapped_message&) = delete;
  ~mapped_message();

  /// Maps `file.size` octets of `file.fd`; a size of 0 gives an empty view
  /// without a mapping. Errors: io_error (temporary) when the descriptor is
  /// not open, the file is shorter than `size` (reading past its end would
  /// fault) or mmap fails; limit_exceeded (permanent) when the size does not
  /// fit the address space.
  static result<mapped_message> map(const store::message_file& file);
  /// As map(file) for a descriptor (not taken over) and a size.
  static result<mapped_message> map(int fd, std::uint64_t size);

  /// The mapped octets.
  std::string_view view() const noexcept { return {data_, size_}; }
  /// The number of mapped octets.
  std::size_t size() const noexcept { return size_; }

 private:
  mapped_message(const char* data, std::size_t size) noexcept : data_(data), size_(size) {}
  void reset() noexcept;

  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace hamail::backend::imap_fetch

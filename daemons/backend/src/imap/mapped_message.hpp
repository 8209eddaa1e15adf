#pragma once

// A message's octets in memory, for FETCH and SEARCH to slice sections from:
// read into a buffer when small, mapped read-only when large.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hamail/core/result.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_fetch {

/// The octets of one message file: read into a heap buffer up to read_limit
/// octets (no mapping to tear down, which in a multi-threaded process costs a
/// TLB shootdown on every CPU), a read-only private mapping above it (no copy
/// of a large message). Freed or unmapped on destruction. Move-only. The
/// mapping stays valid after the descriptor is closed; store messages are
/// never rewritten in place, so the bytes hold.
class mapped_message {
 public:
  /// Messages up to this many octets are read rather than mapped.
  static constexpr std::size_t read_limit = 256 * 1024;

  /// An empty mapping (view() is empty).
  mapped_message() noexcept = default;
  mapped_message(mapped_message&& other) noexcept;
  mapped_message& operator=(mapped_message&& other) noexcept;
  mapped_message(const mapped_message&) = delete;
  mapped_message& operator=(const mapped_message&) = delete;
  ~mapped_message();

  /// Reads or maps `file.size` octets of `file.fd`; a size of 0 gives an empty view
  /// without a mapping. Errors: io_error (temporary) when the descriptor is
  /// not open, the file is shorter than `size` (reading past its end would
  /// fault) or mmap fails; limit_exceeded (permanent) when the size does not
  /// fit the address space.
  static result<mapped_message> map(const store::message_file& file);
  /// As map(file) for a descriptor (not taken over) and a size.
  static result<mapped_message> map(int fd, std::uint64_t size);

  /// The mapped octets.
  std::string_view view() const noexcept { return {data_, size_}; }
  /// The number of octets.
  std::size_t size() const noexcept { return size_; }
  /// True when the octets are a mapping of the file, false when they were read.
  bool is_mapped() const noexcept { return mapped_; }

 private:
  mapped_message(const char* data, std::size_t size, bool mapped) noexcept
      : data_(data), size_(size), mapped_(mapped) {}
  void reset() noexcept;

  const char* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace hamail::backend::imap_fetch

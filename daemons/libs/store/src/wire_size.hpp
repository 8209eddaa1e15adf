#pragma once

#include <cstdint>
#include <string_view>

// The POP3 ("wire") size of a message, counted while it is written: every LF
// not preceded by CR counts as CRLF, and a non-empty message whose last octet
// is not LF gets a CRLF more (RFC 1939: RETR sends every line end as CRLF).

namespace hamail::store::detail {

/// Counts what a message's wire size adds to its size, over any number of
/// writes (a CRLF split between two writes is still one line end).
class wire_counter {
 public:
  /// Accounts for the next `bytes` of the message.
  void add(std::string_view bytes) noexcept;
  /// The wire size of the `size` octets added so far.
  std::uint64_t wire_size(std::uint64_t size) const noexcept {
    return size + bare_lfs_ + (size > 0 && last_ != '\n' ? 2 : 0);
  }

 private:
  std::uint64_t bare_lfs_ = 0;  ///< LFs whose preceding octet is not CR
  char last_ = '\0';            ///< the last octet added ('\0' before any)
};

/// The wire size of a whole message.
std::uint64_t wire_size_of(std::string_view message) noexcept;

}  // namespace hamail::store::detail

#pragma once

// Splitting a raw header block into fields, shared by parsing and section fetches.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/mime/message.hpp"

namespace hamail::mime::detail {

/// One header field as it sits in the raw message.
struct raw_field {
  std::string_view name;  ///< field name, without the colon; empty for a line without one
  std::string_view raw;   ///< everything after the colon, folding kept, line end excluded
  byte_range lines;       ///< the field's lines including every line end
};

/// Scans the header starting at `begin` (bounded by `end`) into `fields`; returns
/// where the body starts (after the blank line, or `end` if there is none).
std::size_t scan_header(std::string_view msg, std::size_t begin, std::size_t end,
                        std::vector<raw_field>& fields);

/// The field's value unfolded (line ends before continuation lines removed) and
/// trimmed of surrounding whitespace.
std::string unfold(std::string_view raw);

/// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace hamail::mime::detail

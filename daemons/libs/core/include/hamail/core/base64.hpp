#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hamail {

/// Standard base64 (RFC 4648 §4) with padding.
std::string base64_encode(std::string_view data);

/// Decodes standard base64 strictly: the length is a multiple of 4, padding
/// only at the end, no whitespace, and the unused bits of the last symbol are
/// zero (so every value has one encoding). nullopt on any violation.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace hamail

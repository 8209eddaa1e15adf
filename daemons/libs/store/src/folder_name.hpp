#pragma once

#include <string>
#include <string_view>

#include "hamail/core/result.hpp"

// How canonical mailbox names map to Maildir++ folder directories.

namespace hamail::store::detail {

/// Modified UTF-7; with `dot_encoded` a '.' goes into base64 as well, so a
/// literal '.' never appears inside an on-disk segment.
result<std::string> mutf7_encode(std::string_view utf8, bool dot_encoded);
/// Strict inverse of mutf7_encode with the same `dot_encoded`.
result<std::string> mutf7_decode(std::string_view mutf7, bool dot_encoded);

/// The directory entry of a canonical mailbox name under the account root:
/// "" for INBOX, ".A.B" for "A/B" (segments encoded with '.' in base64).
/// Errors: invalid_input when the result exceeds 255 octets.
result<std::string> mailbox_dir_name(std::string_view canonical);

/// The canonical mailbox name of a folder directory entry (".A.B"); errors for
/// anything that is not the canonical encoding of a valid name other than INBOX.
result<std::string> mailbox_name_from_dir(std::string_view dir_name);

}  // namespace hamail::store::detail

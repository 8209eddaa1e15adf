#pragma once

#include <string>
#include <string_view>

#include "hamail/core/result.hpp"

// Names as the store accepts them. Mailbox names are UTF-8 inside hamail, with '/'
// as the hierarchy delimiter; the IMAP layer converts to and from modified UTF-7
// (RFC 3501 §5.1.3) on the wire with mutf7_encode/mutf7_decode.

namespace hamail::store {

/// The hierarchy delimiter of mailbox names.
inline constexpr char mailbox_delimiter = '/';
/// Longest mailbox name accepted, in UTF-8 octets.
inline constexpr std::size_t max_mailbox_name_octets = 255;
/// Deepest hierarchy accepted (number of '/'-separated segments).
inline constexpr std::size_t max_mailbox_levels = 16;

/// Converts UTF-8 to IMAP modified UTF-7. Errors (permanent, invalid_input) on
/// malformed UTF-8 (overlong forms, surrogates, truncated sequences).
result<std::string> mutf7_encode(std::string_view utf8);

/// Converts IMAP modified UTF-7 to UTF-8, strictly: rejects characters outside
/// printable US-ASCII, bad or unterminated base64, non-zero padding bits,
/// printable ASCII or '&' inside base64 (non-shortest forms), two adjacent base64
/// runs, and unpaired surrogates. Errors are permanent, invalid_input.
result<std::string> mutf7_decode(std::string_view mutf7);

/// Checks a UTF-8 mailbox name and returns its canonical form: "INBOX" in any case
/// (as the first segment too) becomes "INBOX". Rejects (permanent, invalid_input):
/// empty names, empty segments (leading, trailing or doubled '/'), "." and ".."
/// segments, control characters (C0, DEL, C1), the LIST wildcards '*' and '%',
/// malformed UTF-8, more than 255 octets or more than 16 levels.
result<std::string> validate_mailbox_name(std::string_view utf8);

/// Checks an account id by the tree's one rule (hamail::account_id_problem in
/// core/account_id.hpp). Errors are permanent, invalid_input.
result<void> validate_account_id(std::string_view account_id);

}  // namespace hamail::store

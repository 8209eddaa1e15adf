#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hamail/store/store.hpp"

// Maildir message file names: "<unique>[,W=<wire size>],S=<size>,U=<uid>" in
// new/, plus ":2,<letters>" in cur/. Letters are the Maildir info flags in ASCII
// order (D F P R S T), then keyword letters a-z. W= (Dovecot's "virtual size")
// is there only when the message's wire size differs from its size.

namespace hamail::store::detail {

/// Maildir 'P' (passed): no IMAP system flag, shown as the $Forwarded keyword.
inline constexpr std::uint8_t flag_passed = 32;
/// The keyword spelled by flag_passed.
inline constexpr std::string_view forwarded_keyword = "$Forwarded";
/// At most 26 keywords per mailbox: one letter each.
inline constexpr std::size_t max_keywords = 26;

/// Flags as stored: system_flag bits plus flag_passed, and a keyword letter mask
/// (bit i = letter 'a'+i).
struct stored_flags {
  std::uint8_t system = 0;
  std::uint32_t keywords = 0;
  bool empty() const noexcept { return system == 0 && keywords == 0; }
  bool operator==(const stored_flags&) const = default;
};

/// "DFPRST" subset then keyword letters; "" when none.
std::string flag_letters(stored_flags flags);
/// Inverse of flag_letters; unknown characters are ignored.
stored_flags parse_flag_letters(std::string_view letters);

/// What a message file name says.
struct message_name {
  std::string base;                        ///< everything before the first ':'
  bool has_info = false;                   ///< a ":..." part exists
  std::optional<imap_uid> uid;             ///< from ",U="
  std::optional<std::uint64_t> size;       ///< from ",S="
  std::optional<std::uint64_t> wire_size;  ///< from ",W="
  stored_flags flags;                      ///< from ":2,<letters>"
};

/// Parses a directory entry of new/ or cur/; nullopt for names that are not
/// message files (hidden, empty, or containing '/', '\n' or '\r').
std::optional<message_name> parse_message_name(std::string_view file_name);

/// `base` with its S= and U= fields replaced (or added at the end); other
/// fields (W=) are kept.
std::string base_with_size_and_uid(std::string_view base, std::uint64_t size, imap_uid uid);

/// `base` with its W=, S= and U= fields replaced (or added at the end, in that
/// order); W= only when `wire_size` differs from `size`.
std::string base_with_sizes_and_uid(std::string_view base, std::uint64_t size,
                                    std::uint64_t wire_size, imap_uid uid);

/// The wire size (message_info::wire_size) of a message whose base is `base`
/// and size `size`: its W= field, or `size` when it has none (or a W= below
/// `size`, which no message can have).
std::uint64_t wire_size_in_base(std::string_view base, std::uint64_t size);

/// The path of a message relative to its mailbox directory.
std::string message_relpath(std::string_view base, bool in_new, stored_flags flags);

/// A name part unique within the store: "<sec>.M<usec>P<pid>Q<counter>.<host>".
std::string unique_message_name(std::string_view hostname);

/// The host name as it may appear in a file name: '/', ':', ',' and anything
/// outside printable ASCII escaped as \ooo (Maildir convention), at most 64 octets.
std::string sanitize_hostname(std::string_view hostname);

}  // namespace hamail::store::detail

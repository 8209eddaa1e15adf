#pragma once

// How flags and UID sets are written in responses.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hamail/store/store.hpp"

namespace hamail::backend::imap_session_detail {

/// "(\Seen \Flagged $Junk)", with \Recent first when `recent`.
std::string flag_list_text(const store::message_flags& flags, bool recent);
/// The FLAGS of SELECT: system flags plus the mailbox's keywords.
std::string mailbox_flags_text(std::span<const std::string> keywords);
/// Ascending numbers as a compact set: {1,2,3,5} gives "1:3,5".
std::string uid_set_text(std::span<const std::uint32_t> numbers);

/// Turns flag names (as imap::parse_flag_list returns them, system flags in
/// canonical case) into message_flags; nullopt when a keyword is invalid.
std::optional<store::message_flags> to_message_flags(const std::vector<std::string>& names);

}  // namespace hamail::backend::imap_session_detail

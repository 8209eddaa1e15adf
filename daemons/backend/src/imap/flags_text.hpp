#pragma once

// The FLAGS list of SELECT, and flag arguments read into message_flags.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hamail/store/store.hpp"

namespace hamail::backend::imap_session_detail {

/// The FLAGS of SELECT: system flags plus the mailbox's keywords.
std::string mailbox_flags_text(std::span<const std::string> keywords);

/// Turns flag names (as imap::parse_flag_list returns them, system flags in
/// canonical case) into message_flags; nullopt when a keyword is invalid.
std::optional<store::message_flags> to_message_flags(const std::vector<std::string>& names);

}  // namespace hamail::backend::imap_session_detail

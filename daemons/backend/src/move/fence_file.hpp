#pragma once

// The text of a fence file, `<data_dir>/fences/<account>` (docs/adr/0005-account-moves.md,
// "The fence"): one line, `locked <store> <until-unix>` or `moved <store>`. Sans-I/O: the
// account gate reads and writes the files.

#include <cstddef>
#include <string>
#include <string_view>

#include "hamail/backend/fence.hpp"
#include "hamail/core/result.hpp"

namespace hamail::backend::account_move {

/// The largest fence file read: a valid one is under 100 octets.
inline constexpr std::size_t max_fence_file_size = 256;

/// The file's text for `f` (locked or moved), newline-terminated.
std::string format_fence(const fence_state& f);

/// Parses a fence file's text. errc::invalid_input, with a detail saying what is wrong,
/// for anything but one `locked <store> <until-unix>` or `moved <store>` line (a final
/// newline is optional) with a valid store name.
result<fence_state> parse_fence(std::string_view text);

}  // namespace hamail::backend::account_move

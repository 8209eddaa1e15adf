#pragma once

// The data move behind `account move` (docs/adr/0005-account-moves.md).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hamail/admin/commands.hpp"

namespace hamail::admin::detail {

/// hamailMoveJournal: `<phase> <from> <to> <since-unix>`.
struct move_journal {
  std::string phase;  ///< copy | final | switched
  std::string from, to;
  std::int64_t since = 0;  ///< when the phase began (unix seconds)
};

/// The journal in `text`, nullopt when it is not one.
std::optional<move_journal> parse_move_journal(std::string_view text);
/// The attribute value of `j`.
std::string format_move_journal(const move_journal& j);

/// Writes the journal (phase copy) and runs the move to its end.
command_output start_move(command_context& ctx, const ldap_entry& e, const std::string& from,
                          const std::string& to, const move_options& o);
/// Continues a move from its journal's phase.
command_output resume_move(command_context& ctx, const ldap_entry& e, const move_journal& j,
                           const move_options& o);
/// Undoes a move that has not switched: unlocks the source, discards the destination's copy,
/// removes the journal. Refused (exit_status::refused) once it switched.
command_output abort_move(command_context& ctx, const ldap_entry& e, const move_journal& j);

}  // namespace hamail::admin::detail

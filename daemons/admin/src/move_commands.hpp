#pragma once

// The data move behind `account move` (docs/adr/0005-account-moves.md).

#include <cstddef>
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

/// What one PULL did: its OK counts.
struct pass_result {
  std::uint64_t files = 0, bytes = 0, renamed = 0, removed = 0;
  bool absent = false;  ///< the source has no tree for the account: nothing to copy
};

/// A copy pass that fetched fewer files than this, and fewer bytes than small_delta_bytes,
/// leaves a delta small enough for the final pass under the lock.
inline constexpr std::uint64_t small_delta_files = 100;
inline constexpr std::uint64_t small_delta_bytes = 1024 * 1024;

/// Whether the copy passes can stop after `last`: it fetched a small delta, or no fewer
/// files than the pass before it (`previous`). Every pass fetches each changed mailbox's
/// index whole (about 100 octets a message), so a large mailbox that keeps receiving mail
/// never gets under small_delta_bytes; once the count of files stops shrinking, mail arrives
/// as fast as a pass copies it and another pass would not make the final one shorter.
bool copy_converged(const std::optional<pass_result>& previous, const pass_result& last);

/// `[####......]`, `width` characters between the brackets filled in proportion to
/// done/total (full when total is 0 or done reaches it).
std::string progress_bar(std::uint64_t done, std::uint64_t total, std::size_t width);

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

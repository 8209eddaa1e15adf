#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "maildir_file.hpp"

// The hamail-index file: an append-only text log, one record per line, each line
// "<payload> <crc32 of payload, 8 lowercase hex>\n". The first line is the header
// "hamail-index 1 uidvalidity=<n>". Records:
//   A <uid> <modseq> <flags> <date> <size> <n|c> <base>   message added (W= in <base>)
//   F <uid> <modseq> <flags>                            flags changed (file now in cur/)
//   R <uid> <n|c> <base>                                file moved or renamed, same flags
//   X <uid> <modseq>                                    expunged
//   N <uidnext>                                         UIDs below are used up
//   M <modseq>                                          modseqs up to here are used up
// <flags> is flag_letters() or "-" when empty. The index is a cache: everything
// but modseqs can be rebuilt from the message files.

namespace hamail::store::detail {

/// The largest UID a message can get: UIDNEXT must stay a 32-bit nz-number
/// above every UID (RFC 3501 §2.3.1.1, §9), so UIDNEXT 4294967295 means "no
/// UID left".
inline constexpr imap_uid max_uid = 4294967294U;

/// One live message as the index knows it.
struct index_entry {
  imap_uid uid = 0;
  mod_seq modseq = 0;
  stored_flags flags;
  std::int64_t date = 0;  ///< INTERNALDATE, unix seconds (the file's mtime)
  std::uint64_t size = 0;
  /// message_info::wire_size. Not a field of its own on disk: the W= of `base`,
  /// else `size` (see wire_size_in_base).
  std::uint64_t wire_size = 0;
  bool in_new = false;  ///< file in new/ (and so without flags)
  /// \Recent not yet claimed. Not a field of its own on disk: a load sets it to
  /// in_new (claim_recent moves files to cur/ and records that), so a claim
  /// survives a restart and a reload.
  bool recent = false;
  std::string base;  ///< file name without the ":2," part
  /// The file's path relative to the mailbox directory.
  std::string relpath() const { return message_relpath(base, in_new, flags); }
};

/// The state a replayed index describes.
struct index_state {
  std::uint32_t uid_validity = 0;
  imap_uid uid_next = 1;
  mod_seq highest_modseq = 0;
  std::vector<index_entry> entries;  ///< ascending uid
  std::size_t records = 0;           ///< record lines after the header

  /// The entry of `uid`, or nullptr.
  index_entry* find(imap_uid uid);
  const index_entry* find(imap_uid uid) const;
  /// Inserts keeping uid order; false if the uid exists.
  bool insert(index_entry e);
  /// Removes `uid`; false if absent.
  bool erase(imap_uid uid);
};

/// "<payload> <crc>\n".
std::string seal_line(std::string_view payload);
/// The header line, sealed.
std::string header_line(std::uint32_t uid_validity);
/// Record payloads (unsealed).
std::string add_record(const index_entry& e);
std::string flags_record(imap_uid uid, mod_seq modseq, stored_flags flags);
std::string move_record(imap_uid uid, bool in_new, std::string_view base);
std::string expunge_record(imap_uid uid, mod_seq modseq);
std::string uid_next_record(imap_uid uid_next);
std::string modseq_record(mod_seq modseq);

/// A whole index: header, N and M records and one A record per entry.
std::string compact_index(const index_state& state);

/// What replaying an index file found.
struct replay_result {
  enum class outcome_t {
    ok,       ///< the state is exact (perhaps after dropping a torn last line)
    damaged,  ///< bad header, a bad line before the last, or inconsistent records
  };
  outcome_t outcome = outcome_t::ok;
  index_state state;
  std::size_t valid_bytes = 0;  ///< length of the good prefix (the file is cut here when torn)
  bool torn_tail = false;       ///< the last line was incomplete or failed its CRC
  std::string problem;          ///< why damaged / torn, for logs
  /// Maxima over every line whose CRC is good, even in a damaged file: what
  /// a rebuild must stay above.
  mod_seq max_modseq_seen = 0;
  imap_uid max_uid_seen = 0;
  std::optional<std::uint32_t> header_uid_validity;
};

/// Replays the contents of an index file.
replay_result replay_index(std::string_view content);

}  // namespace hamail::store::detail

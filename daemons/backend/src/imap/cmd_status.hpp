#pragma once

// STATUS data items (RFC 3501 §6.3.10, RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ,
// RFC 8438 SIZE, RFC 7889 APPENDLIMIT, RFC 9208 DELETED-STORAGE), shared by
// STATUS and LIST's RETURN (STATUS (...)) (RFC 5819).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_session_detail {

class session;

/// One STATUS data item.
enum class status_item {
  messages,
  recent,
  uid_next,
  uid_validity,
  unseen,
  highest_modseq,
  size,
  deleted,
  deleted_storage,
  append_limit,
};

/// Reads a parenthesised, non-empty list of STATUS items; duplicates are
/// dropped, the order kept. nullopt when it is not one or names an unknown item.
std::optional<std::vector<status_item>> parse_status_items(const imap::value& v);

/// The numbers STATUS reports of one mailbox.
struct status_values {
  store::mailbox_status counters;
  std::uint32_t deleted = 0;         ///< messages with \Deleted (when asked)
  std::uint64_t deleted_octets = 0;  ///< their total size (when asked)
};

/// Reads what `items` need of mailbox `name` of `account`: the store's counters,
/// and a snapshot when DELETED or DELETED-STORAGE is asked. Blocking. Errors as
/// mail_store::status().
result<status_values> read_status(store::mail_store& st, std::string_view account,
                                  std::string_view name, const std::vector<status_item>& items);

/// The untagged response "STATUS <name> (<item> <value> ...)", without "* ".
std::string status_text(const session& s, std::string_view name,
                        const std::vector<status_item>& items, const status_values& values);

/// True when `items` switch CONDSTORE on (HIGHESTMODSEQ, RFC 7162 §3.1).
bool enables_condstore(const std::vector<status_item>& items) noexcept;

}  // namespace hamail::backend::imap_session_detail

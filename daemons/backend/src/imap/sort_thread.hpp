#pragma once

// Sans-I/O IMAP SORT and THREAD (RFC 5256, with RFC 5957's DISPLAYFROM and
// DISPLAYTO): parsing the commands' arguments, ordering the messages a search
// selected, and building threads with ORDEREDSUBJECT or REFERENCES.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "imap/search.hpp"

namespace hamail::backend::imap_search {

/// One SORT criterion's key (RFC 5256 §3, RFC 5957 §3).
enum class sort_key : std::uint8_t {
  arrival,       ///< ARRIVAL: internal date
  cc,            ///< CC: mailbox (local part) of the first Cc address
  date,          ///< DATE: sent date, the internal date when the Date: header is unusable
  from,          ///< FROM: mailbox of the first From address
  size,          ///< SIZE: RFC822.SIZE
  subject,       ///< SUBJECT: base subject (see base_subject)
  to,            ///< TO: mailbox of the first To address
  display_from,  ///< DISPLAYFROM: display name of the first From address, else its address
  display_to,    ///< DISPLAYTO: the same for To
};

/// One SORT criterion.
struct sort_criterion {
  sort_key key = sort_key::arrival;
  bool reverse = false;  ///< REVERSE preceded the key
};

/// A parsed SORT command.
struct sort_query {
  std::vector<sort_criterion> criteria;  ///< at least one
  search_query search;                   ///< the search keys (and RETURN options when allowed)
};

/// The THREAD algorithms.
enum class thread_algorithm : std::uint8_t {
  orderedsubject,  ///< THREAD=ORDEREDSUBJECT
  references,      ///< THREAD=REFERENCES
};

/// A parsed THREAD command.
struct thread_query {
  thread_algorithm algorithm = thread_algorithm::references;
  search_query search;
};

/// Parses SORT arguments: an optional "RETURN (...)" when o.allow_return
/// (RFC 5267 ESORT), "(criteria)", a charset (US-ASCII or UTF-8, else NO
/// [BADCHARSET (US-ASCII UTF-8)]; only UTF-8 when o.utf8_accept, else BAD, per
/// RFC 6855 erratum 4029), then search keys. Errors as parse_search.
std::variant<sort_query, search_error> parse_sort(std::span<const imap::value> args,
                                                  const parse_options& o);

/// Parses THREAD arguments: algorithm, charset (as parse_sort), search keys.
/// An unknown algorithm gives BAD.
std::variant<thread_query, search_error> parse_thread(std::span<const imap::value> args,
                                                      const parse_options& o);

/// Returns the envelope of message `index`, or null when it cannot be read
/// (the message then sorts as if every header were empty).
using envelope_fn = std::function<const mime::envelope*(std::size_t index)>;

/// Orders `indices` (into `messages`) by the criteria; ties are broken by
/// sequence number. Each envelope is asked for at most once, and only when a
/// criterion needs headers.
std::vector<std::uint32_t> sort_messages(std::span<const std::uint32_t> indices,
                                         std::span<const sort_criterion> criteria,
                                         std::span<const store::message_info> messages,
                                         const envelope_fn& envelope);

/// The header values threading reads, undecoded.
struct thread_fields {
  std::string subject;      ///< Subject:
  std::string date;         ///< Date:
  std::string message_id;   ///< Message-ID:
  std::string in_reply_to;  ///< In-Reply-To:
  std::string references;   ///< References:
};

/// Collects the thread fields of a parsed message (References is read from
/// the raw header, the rest from the envelope).
thread_fields thread_fields_of(std::string_view raw, const mime::message_structure& structure);

/// Returns the thread fields of message `index` (empty ones when unreadable).
using thread_fields_fn = std::function<thread_fields(std::size_t index)>;

/// Threads `indices` (into `messages`) and returns the IMAP thread list, e.g.
/// "(1)(2 3 (4)(5))", over sequence numbers (uid false) or UIDs; "" for none.
/// REFERENCES follows RFC 5256 §3 (at most the last 256 references of a
/// message are used); sent dates fall back to the internal date, ties go by
/// sequence number.
std::string thread_messages(thread_algorithm algorithm, std::span<const std::uint32_t> indices,
                            std::span<const store::message_info> messages,
                            const thread_fields_fn& fields, bool uid);

/// The base subject of RFC 5256 §2.1 of a raw (RFC 2047 encoded) Subject
/// value, not yet case folded. *is_reply is set when a "Re:", "Fwd:", "(fwd)"
/// or "[fwd: ...]" was removed.
std::string base_subject(std::string_view raw_subject, bool* is_reply = nullptr);

}  // namespace hamail::backend::imap_search

#pragma once

// Sans-I/O IMAP SEARCH (RFC 3501 §6.4.4, RFC 9051 §6.4.4): the search keys of a
// parsed command as a tree, their evaluation over a mailbox snapshot, and the
// responses. Covers ESEARCH's RETURN options (RFC 4731), SEARCHRES's "$" and
// SAVE (RFC 5182), CONDSTORE's MODSEQ key (RFC 7162), WITHIN's OLDER/YOUNGER
// (RFC 5032) and UTF8=ACCEPT's charset rule (RFC 6855).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hamail/mime/message.hpp"
#include "hamail/mime/search_text.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/protocol/imap/sequence_set.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_search {

/// The kind of one node of a search key tree.
enum class key_kind : std::uint8_t {
  all,          ///< ALL
  and_,         ///< a parenthesised group, or the whole query: every child matches
  or_,          ///< OR a b: either of the two children matches
  not_,         ///< NOT a: the one child does not match
  flag,         ///< ANSWERED DELETED DRAFT FLAGGED SEEN (system_flag in `flag`)
  unflag,       ///< UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN
  recent,       ///< RECENT
  not_recent,   ///< OLD
  new_,         ///< NEW: recent and not seen
  keyword,      ///< KEYWORD text
  unkeyword,    ///< UNKEYWORD text
  larger,       ///< LARGER number: size > number
  smaller,      ///< SMALLER number: size < number
  before,       ///< BEFORE date: internal date's UTC day < number (days since epoch)
  on,           ///< ON date
  since,        ///< SINCE date: day >= number
  sent_before,  ///< SENTBEFORE date: the Date: header's day < number
  sent_on,      ///< SENTON date
  sent_since,   ///< SENTSINCE date
  older,        ///< OLDER seconds (RFC 5032): internal date more than number seconds ago
  younger,      ///< YOUNGER seconds: internal date at most number seconds ago
  header,       ///< HEADER field text, and FROM TO CC BCC SUBJECT (field set accordingly)
  body,         ///< BODY text: the decoded body
  text,         ///< TEXT text: header or body
  sequence,     ///< a sequence set over sequence numbers, or "$"
  uid,          ///< UID set, or UID $
  modseq,       ///< MODSEQ [entry type] number: modseq >= number
};

/// One node of a search key tree.
struct search_key {
  key_kind kind = key_kind::all;
  store::system_flag flag = store::system_flag::seen;  ///< for flag and unflag
  std::string field;  ///< header: field name, case folded; keyword, unkeyword: the keyword as sent
  std::string value;  ///< the string to find (header, body, text), already case folded
  std::uint64_t number = 0;          ///< size, days since 1970-01-01, seconds or modseq
  imap::sequence_set set;            ///< for sequence and uid
  std::vector<search_key> children;  ///< for and_, or_ (two), not_ (one)
};

/// The RETURN options of an extended SEARCH (RFC 4731, RFC 5182).
struct return_options {
  bool extended = false;  ///< RETURN was given: answer with ESEARCH, not SEARCH
  bool min = false;       ///< MIN
  bool max = false;       ///< MAX
  bool all = false;       ///< ALL (also set for "RETURN ()")
  bool count = false;     ///< COUNT
  bool save = false;      ///< SAVE: keep the result as "$" (see saved_uids)
};

/// A parsed SEARCH command.
struct search_query {
  search_key root;  ///< an and_ node holding the top-level keys
  return_options ret;
  bool needs_header = false;  ///< a key reads header fields (FROM, HEADER, SENT*...): load needed
  bool needs_body = false;    ///< a key reads the body (BODY, TEXT): load needed
  bool uses_modseq = false;   ///< MODSEQ was used: a CONDSTORE reply carries (MODSEQ n)
  bool uses_saved = false;    ///< "$" was used: the caller must have a valid saved result
  /// True when evaluate may call load.
  bool needs_content() const noexcept { return needs_header || needs_body; }
};

/// A refused command.
struct search_error {
  bool bad = true;   ///< true: answer BAD; false: answer NO
  std::string code;  ///< response code without brackets, e.g. "BADCHARSET (US-ASCII UTF-8)"
  std::string text;  ///< human-readable reason
};

/// What the parser accepts and its limits; exceeding a limit gives BAD.
struct parse_options {
  bool allow_return = false;  ///< ESEARCH advertised: "RETURN (...)" may lead the arguments
  bool utf8_accept =
      false;  ///< ENABLE UTF8=ACCEPT was done: SEARCH CHARSET gives BAD (RFC 6855 §3)
  std::size_t max_keys = 1000;    ///< search-key nodes in the query
  std::size_t max_depth = 32;     ///< nesting of groups, NOT and OR
  std::size_t max_ranges = 1000;  ///< comma-separated parts of one sequence set
};

/// Parses SEARCH arguments (those after the command name): an optional
/// "RETURN (...)" when o.allow_return, an optional "CHARSET name" (US-ASCII or
/// UTF-8 in any case; another gives NO [BADCHARSET (US-ASCII UTF-8)]), then one
/// or more search keys. Syntax errors and exceeded limits give BAD.
std::variant<search_query, search_error> parse_search(std::span<const imap::value> args,
                                                      const parse_options& o);

/// The content of one message that string and SENT* keys read. String keys
/// (FROM, HEADER, BODY, TEXT...) read `text`; SENT* keys read the Date: of
/// `structure`'s envelope, or of `text`'s header lines when structure is null.
/// A null `text` makes the string keys fail to match.
struct message_content {
  std::string_view raw;                                ///< the whole message (not read by evaluate)
  const mime::message_structure* structure = nullptr;  ///< parsed raw, or null
  const mime::search_text* text = nullptr;             ///< mime::extract_search_text of raw
};

/// The mailbox a query runs over.
struct search_context {
  /// The messages in sequence order: index i has sequence number i + 1.
  std::span<const store::message_info> messages;
  /// The saved result ("$", RFC 5182) as UIDs, ascending.
  std::span<const store::imap_uid> saved;
  /// Returns the content of message `index`, or null when it cannot be read (it
  /// then matches no content key). Called only when a content key must be
  /// decided, at most once per message; the pointer must stay valid until the
  /// next call.
  std::function<const message_content*(std::size_t index)> load;
  /// The current time, for OLDER and YOUNGER.
  std::chrono::sys_seconds now{};
};

/// Returns the indices (0-based, ascending) of the messages of c matching q.
/// Flag, size, date, set and modseq keys are decided before content is loaded,
/// and AND/OR stop as soon as the result is known.
std::vector<std::uint32_t> evaluate(const search_query& q, const search_context& c);

/// Maps indices to sequence numbers (uid false) or UIDs (uid true).
std::vector<std::uint32_t> to_numbers(std::span<const std::uint32_t> indices,
                                      std::span<const store::message_info> messages, bool uid);

/// The UIDs SAVE keeps as "$" (RFC 5182 §2.4): only the MIN and/or MAX message
/// when those are the only other options, else every match.
std::vector<store::imap_uid> saved_uids(const return_options& ret,
                                        std::span<const std::uint32_t> indices,
                                        std::span<const store::message_info> messages);

/// The highest modseq among the matches (for CONDSTORE's "(MODSEQ n)"), 0 when none.
store::mod_seq highest_modseq(std::span<const std::uint32_t> indices,
                              std::span<const store::message_info> messages);

/// Compresses ascending numbers to a sequence set: {3,4,5,9} gives "3:5,9"; none gives "".
std::string sequence_set_string(std::span<const std::uint32_t> sorted);

/// Builds an untagged ESEARCH response without CRLF (RFC 4731 §3.1, RFC 7162
/// §3.1.5): "* ESEARCH (TAG "a1") UID MIN 3 MAX 9 COUNT 4 ALL 3:5,9 MODSEQ 7".
/// `numbers` are the sequence numbers or UIDs in the order to report:
/// ascending for SEARCH, sort order for ESORT (RFC 5267), where MIN and MAX
/// are the first and last of them. MIN, MAX, ALL and MODSEQ are left out when
/// there are no numbers; modseq 0 is left out; an empty tag leaves out TAG.
std::string esearch_response(std::string_view tag, bool uid, const return_options& ret,
                             std::span<const std::uint32_t> numbers, store::mod_seq modseq = 0);

/// Builds an untagged SEARCH response without CRLF: "* SEARCH 2 5 (MODSEQ 7)";
/// modseq 0 (or no numbers) leaves out the MODSEQ part. `name` "SORT" gives
/// the SORT response (RFC 5256 §4, RFC 7162 §3.1.5) in the numbers' order.
std::string search_response(std::span<const std::uint32_t> numbers, store::mod_seq modseq = 0,
                            std::string_view name = "SEARCH");

/// A date taken from a Date: header (RFC 5322 §3.3, obsolete forms too).
struct header_date {
  int year = 0;
  unsigned month = 0;             ///< 1..12
  unsigned day = 0;               ///< 1..31
  std::int64_t unix_seconds = 0;  ///< the instant in UTC (zone applied)
};

/// Parses a Date: header value; nullopt when it is not a date.
std::optional<header_date> parse_header_date(std::string_view text);

/// Case folds UTF-8 text for comparison: ASCII, Latin-1, Latin Extended-A,
/// Greek and Cyrillic capitals to small letters; other text as is.
std::string fold_case(std::string_view text);

}  // namespace hamail::backend::imap_search

#pragma once

// The IMAP FETCH engine, sans I/O: reads the items of a FETCH / UID FETCH
// command (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162
// CONDSTORE/QRESYNC modifiers) into a fetch_request, and renders one message's
// "* n FETCH (...)" response (RFC 3501 §7.4.2) from its store record, its raw
// bytes and its parsed MIME structure. Also the FLAGS-only FETCH responses
// that STORE and unsolicited flag updates send.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/mime/message.hpp"
#include "hamail/mime/section.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::imap_fetch {

/// What one FETCH data item asks for.
enum class item_kind {
  body,            ///< BODY: the non-extensible BODYSTRUCTURE
  body_structure,  ///< BODYSTRUCTURE
  envelope,        ///< ENVELOPE
  flags,           ///< FLAGS
  internal_date,   ///< INTERNALDATE
  rfc822,          ///< RFC822 (BODY[], sets \Seen)
  rfc822_header,   ///< RFC822.HEADER (BODY.PEEK[HEADER])
  rfc822_size,     ///< RFC822.SIZE
  rfc822_text,     ///< RFC822.TEXT (BODY[TEXT], sets \Seen)
  uid,             ///< UID
  modseq,          ///< MODSEQ (RFC 7162)
  body_section,    ///< BODY[section]<partial> or BODY.PEEK[...]
  binary,          ///< BINARY[part]<partial> or BINARY.PEEK[...] (RFC 3516)
  binary_size,     ///< BINARY.SIZE[part] (RFC 3516)
};

/// One requested data item.
struct fetch_item {
  item_kind kind = item_kind::flags;  ///< which item
  bool peek = false;                  ///< BODY.PEEK / BINARY.PEEK: \Seen is left alone
  mime::section_spec section;         ///< body_section; binary/binary_size use section.part only
  std::optional<imap::partial_range> partial;  ///< <offset.count> of body_section / binary
};

/// A FETCH command's items and modifiers, as parse_fetch() read them.
struct fetch_request {
  std::vector<fetch_item> items;  ///< in the order asked (macros expanded)
  /// Some item needs the message's raw bytes (sections, BINARY, RFC822*).
  bool needs_raw = false;
  /// Some item needs the parsed structure (BODY, BODYSTRUCTURE, ENVELOPE, a
  /// section other than the whole message). The structure is parsed from the
  /// raw bytes, so a caller without it cached must read them as well.
  bool needs_structure = false;
  /// A non-PEEK BODY[...] / BINARY[...], RFC822 or RFC822.TEXT: the session
  /// sets \Seen on each message fetched (RFC 3501 §6.4.5) before rendering it.
  bool sets_seen = false;
  /// The MODSEQ item or CHANGEDSINCE was used: the client uses CONDSTORE (RFC
  /// 7162 §3.1: the session enables it) and every response carries MODSEQ.
  bool wants_modseq = false;
  /// CHANGEDSINCE n: only messages whose modseq is above n are fetched (the
  /// session filters; see selected_by()).
  std::optional<store::mod_seq> changedsince;
  /// VANISHED (UID FETCH under QRESYNC): the session first sends "* VANISHED
  /// (EARLIER) uids" for the expunged UIDs of the set (RFC 7162 §3.2.6).
  bool vanished = false;
};

/// What the session allows in this FETCH.
struct parse_options {
  bool uid = false;        ///< the command is UID FETCH
  bool condstore = false;  ///< CONDSTORE is advertised: MODSEQ and CHANGEDSINCE are accepted
  bool qresync = false;    ///< QRESYNC is enabled: VANISHED is accepted (with UID FETCH)
};

/// A FETCH the server refuses with BAD; `text` is fit for the response text.
struct fetch_error {
  std::string text;
};

/// Reads the arguments that follow FETCH's sequence set: one item, a macro
/// (ALL, FAST, FULL) or a parenthesised list of items, then optionally a list
/// of modifiers "(CHANGEDSINCE n [VANISHED])". Names are case-insensitive.
/// Returns fetch_error (answer BAD) on anything else: an unknown item, a bad
/// section, BINARY with a section text, a modifier not allowed by `options`,
/// VANISHED without CHANGEDSINCE or outside UID FETCH, an empty list.
std::variant<fetch_request, fetch_error> parse_fetch(std::span<const imap::value> args,
                                                     const parse_options& options);

/// True when message `info` is to be answered under `request`'s CHANGEDSINCE
/// (always when there is none).
bool selected_by(const fetch_request& request, const store::message_info& info) noexcept;

/// One message as render_fetch() sees it.
struct message_view {
  std::uint32_t seq = 0;                               ///< its sequence number
  const store::message_info& info;                     ///< UID, flags (after any \Seen), date, size
  std::string_view raw;                                ///< the bytes; may be empty unless needs_raw
  const mime::message_structure* structure = nullptr;  ///< may be null unless needs_structure
};

/// How responses are written on this connection.
struct render_options {
  bool add_uid = false;             ///< UID FETCH: UID is sent even when not asked (first)
  bool add_modseq = false;          ///< CONDSTORE in use: MODSEQ is sent even when not asked (last)
  bool add_flags_for_seen = false;  ///< \Seen was set implicitly: FLAGS sent even when not asked
  bool utf8 = false;                ///< UTF8=ACCEPT enabled: UTF-8 strings may go quoted
  bool rev2 = false;                ///< IMAP4rev2 selected: no \Recent, UTF-8 may go quoted
};

/// Renders "* <seq> FETCH (...)\r\n" for one message: the items in the
/// order asked, UID first when added, added FLAGS and MODSEQ last. Bodies go
/// out as literals ({n}\r\n + octets; a NUL inside a BODY section, or inside
/// an ENVELOPE/BODYSTRUCTURE string, is sent as 0x80; a BINARY with a NUL as
/// literal8 ~{n}); empty ones as "". A BODY partial echoes its origin only
/// ("BODY[]<0>"), BINARY none (RFC 9051 ABNF); an origin past the end gives
/// "". A part that does not exist gives NIL (BODY[...], BINARY[...]) or 0
/// (BINARY.SIZE). Errors: BINARY of a part whose Content-Transfer-Encoding is
/// unknown gives the mime library's permanent invalid_input with user_text
/// "UNKNOWN-CTE" (answer NO [UNKNOWN-CTE]); a missing raw or structure that
/// the request needs gives an internal error.
result<std::string> render_fetch(const fetch_request& request, const message_view& message,
                                 const render_options& options);

/// Appends a parenthesised flag list: "(\Answered \Flagged \Deleted \Seen
/// \Draft \Recent keyword...)" with only the flags set; \Recent when `recent`.
void append_flag_list(std::string& out, const store::message_flags& flags, bool recent = false);
/// The flag list as a string (see append_flag_list).
std::string flag_list(const store::message_flags& flags, bool recent = false);

/// "* <seq> FETCH (FLAGS (...)[ UID n][ MODSEQ (n)])\r\n" for STORE responses
/// and unsolicited flag changes; \Recent is included when `recent`.
std::string flags_response(std::uint32_t seq, const store::message_flags& flags,
                           std::optional<store::imap_uid> uid = std::nullopt,
                           std::optional<store::mod_seq> modseq = std::nullopt,
                           bool recent = false);

/// "dd-Mon-yyyy hh:mm:ss +0000", the INTERNALDATE text (without quotes).
std::string internal_date_text(store::internal_date date);

}  // namespace hamail::backend::imap_fetch

#pragma once

// Typed readings of command arguments that several commands share: dates
// (SEARCH, APPEND), flag lists (STORE, APPEND) and mailbox names.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/imap/command_parser.hpp"

namespace hamail::imap {

/// A calendar date as SEARCH BEFORE/ON/SINCE take it.
struct date {
  int year = 0;
  unsigned month = 0;  ///< 1..12
  unsigned day = 0;    ///< 1..31, valid for the month
  friend bool operator==(const date&, const date&) = default;
};

/// A date-time as APPEND takes it: local time and the zone's offset from UTC.
struct date_time {
  imap::date day;
  unsigned hour = 0, minute = 0, second = 0;  ///< second may be 60 (leap second)
  int zone_minutes = 0;                       ///< "+0130" gives 90, "-0800" gives -480
  /// Seconds since 1970-01-01T00:00:00Z.
  std::int64_t unix_seconds() const noexcept;
  friend bool operator==(const date_time&, const date_time&) = default;
};

/// Parses RFC 3501 date-text "1-Feb-1994" / "01-Feb-1994" (month in any case,
/// the quotes already removed); nullopt when malformed or not a real date.
std::optional<date> parse_date(std::string_view text);
/// Parses RFC 3501 date-time "dd-Mon-yyyy hh:mm:ss +zzzz" where dd may be
/// " d" (the quotes already removed); nullopt when malformed or out of range.
std::optional<date_time> parse_date_time(std::string_view text);
/// Returns the days since 1970-01-01 of a valid date.
std::int64_t days_since_epoch(const date& d) noexcept;

/// Where a flag list is read.
struct flag_options {
  bool allow_recent = false;    ///< \Recent may not be set by STORE or APPEND
  bool allow_wildcard = false;  ///< \* appears only in PERMANENTFLAGS
  bool allow_single = true;     ///< STORE FLAGS \Seen without parentheses (RFC 3501 §9)
};

/// Reads a flag list "(\Seen $Junk)": system flags are returned in their
/// canonical case (\Seen), keywords as sent; nullopt when an element is not a
/// flag or is a forbidden one (numbers and NIL count as not flags).
std::optional<std::vector<std::string>> parse_flag_list(const value& v,
                                                        const flag_options& options = {});

/// Reads a mailbox argument (an astring): INBOX in any case becomes "INBOX";
/// nullopt for a list, a FETCH section, or a name holding CR, LF or NUL.
std::optional<std::string> mailbox_name(const value& v);

}  // namespace hamail::imap

#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"

namespace hamail::mime {

/// A half-open byte range [begin, end) within the raw message.
struct byte_range {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t size() const noexcept { return end - begin; }
  bool operator==(const byte_range&) const = default;
};

/// A MIME parameter (Content-Type or Content-Disposition), RFC 2231 decoded by GMime.
struct param {
  std::string name;
  std::string value;
  bool operator==(const param&) const = default;
};

/// One address of an IMAP ENVELOPE list (RFC 3501 §7.4.2): a mailbox, or a group
/// start (host unset, mailbox = group name) or a group end (all unset).
struct address {
  std::optional<std::string> name;
  std::optional<std::string> adl;
  std::optional<std::string> mailbox;
  std::optional<std::string> host;
  bool operator==(const address&) const = default;
};

/// The ENVELOPE of a message: unfolded raw header values (RFC 2047 left encoded)
/// and parsed address lists. Sender and reply-to already default to from.
struct envelope {
  std::optional<std::string> date;
  std::optional<std::string> subject;
  std::vector<address> from;
  std::vector<address> sender;
  std::vector<address> reply_to;
  std::vector<address> to;
  std::vector<address> cc;
  std::vector<address> bcc;
  std::optional<std::string> in_reply_to;
  std::optional<std::string> message_id;
};

/// One node of the MIME tree. For multipart/* `children` are the body parts; for
/// message/rfc822 `children` holds exactly one node, the encapsulated message's
/// top-level part (its header range is the encapsulated message's header) and
/// `message_envelope` is that message's envelope.
struct part {
  std::string type = "text";
  std::string subtype = "plain";
  std::vector<param> params;  ///< Content-Type parameters
  std::optional<std::string> id;
  std::optional<std::string> description;
  std::string encoding = "7bit";
  std::optional<std::string> md5;
  std::optional<std::string> disposition;  ///< disposition type, e.g. "attachment"
  std::vector<param> disposition_params;
  std::vector<std::string> language;
  std::optional<std::string> location;

  byte_range header;      ///< the part's header including the blank line ending it
  byte_range body;        ///< the part's body; body.size() is the IMAP size
  std::size_t lines = 0;  ///< LF count of the body (reported for text/* and message/rfc822)
  bool opaque = false;    ///< nesting or part-count limit hit: kept as one leaf

  std::vector<part> children;
  std::optional<envelope> message_envelope;

  bool is_multipart() const noexcept;
  bool is_message() const noexcept;  ///< message/rfc822 (or message/global) with a parsed child
  bool is_text() const noexcept;
};

/// Parsing limits: deeper or further parts become opaque leaves.
struct parse_limits {
  unsigned max_depth = 100;
  std::size_t max_parts = 10000;
};

/// The parsed structure of one message: the top-level part (its header is the
/// message header) and the message's envelope. Offsets refer to the raw bytes given
/// to parse(); the raw bytes are not kept, so a cached structure is small.
struct message_structure {
  part root;
  envelope env;
  std::size_t size = 0;  ///< size of the raw message
  /// The top-level header as SEARCH matches it: extract_search_text(raw, *this,
  /// 1 MiB, search_parts::headers).headers, kept so that a search on header
  /// fields over cached structures reads no message file.
  std::string header_text;
};

/// Parses a raw RFC 5322 message. Never fails: malformed input still yields a
/// structure (missing boundaries give one empty text/plain child, too deep nesting
/// an opaque application/octet-stream leaf).
message_structure parse(std::string_view rfc822, const parse_limits& limits = {});

/// Parses the message stored in `path` through a read-only mapping; an io_error
/// if the file cannot be opened or mapped.
result<message_structure> parse_file(const std::string& path, const parse_limits& limits = {});

}  // namespace hamail::mime

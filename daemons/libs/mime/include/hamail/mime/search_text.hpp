#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "hamail/mime/message.hpp"

namespace hamail::mime {

/// Decoded text of a message for SEARCH, UTF-8 throughout.
struct search_text {
  std::string headers;  ///< top-level header, one "Name: value\n" line per field, RFC 2047 decoded
  std::string body;     ///< text/* parts (nested messages included) transfer-decoded and converted
  bool truncated = false;  ///< the size cap cut headers or body
};

/// Which parts of a message extract_search_text() decodes.
enum class search_parts {
  headers,  ///< the top-level header only (FROM, SUBJECT, HEADER...): body left empty
  all,      ///< header and body (BODY, TEXT)
};

/// Extracts the text SEARCH BODY/TEXT/HEADER match against; headers and body are
/// each capped at `max_bytes` (cut on a UTF-8 character boundary). With
/// search_parts::headers the body is not decoded at all, which is most of the
/// cost for a search on header fields only.
search_text extract_search_text(std::string_view raw, const message_structure& msg,
                                std::size_t max_bytes = 1 << 20,
                                search_parts parts = search_parts::all);

/// One header value RFC 2047 decoded to UTF-8 (for SEARCH HEADER, SUBJECT, FROM...).
std::string decode_header_value(std::string_view raw_value);

}  // namespace hamail::mime

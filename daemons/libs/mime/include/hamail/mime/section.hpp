#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/mime/message.hpp"

namespace hamail::mime {

/// What a section spec names after its part number (RFC 3501 §6.4.5).
enum class section_text { all, header, header_fields, header_fields_not, text, mime };

/// A parsed section spec: "1.2.HEADER.FIELDS (From To)" gives part {1, 2},
/// header_fields and {"From", "To"}. An empty spec names the whole message.
struct section_spec {
  std::vector<unsigned> part;
  section_text text = section_text::all;
  std::vector<std::string> fields;
};

/// Parses the text between "BODY[" and "]"; invalid_input on bad syntax (the caller
/// answers BAD).
result<section_spec> parse_section(std::string_view spec);

/// The bytes a section names: a slice of the raw message, or bytes produced for
/// HEADER.FIELDS[.NOT]. Use text() to get them either way.
struct section_content {
  byte_range slice;
  bool produced_bytes = false;
  std::string produced;
  std::string_view text(std::string_view raw) const {
    return produced_bytes ? std::string_view(produced) : raw.substr(slice.begin, slice.size());
  }
};

/// Resolves a section against a parsed message and its raw bytes. not_found when a
/// part number names no part (the caller answers with an empty string). HEADER,
/// TEXT and HEADER.FIELDS of a part that is not message/rfc822 give empty content.
result<section_content> fetch_section(std::string_view raw, const message_structure& msg,
                                      const section_spec& spec);

/// BINARY[part] (RFC 3516): the part's body with its content transfer encoding
/// undone; an empty part path gives the whole message unchanged. not_found for a
/// missing part; invalid_input with user_text "UNKNOWN-CTE" for an encoding this
/// library cannot decode (the caller answers NO [UNKNOWN-CTE]).
result<std::string> fetch_binary(std::string_view raw, const message_structure& msg,
                                 const std::vector<unsigned>& part_path);

/// BINARY.SIZE[part]: the size fetch_binary() would return.
result<std::size_t> binary_size(std::string_view raw, const message_structure& msg,
                                const std::vector<unsigned>& part_path);

/// Undoes a content transfer encoding (7bit, 8bit, binary, base64, quoted-printable,
/// x-uuencode); invalid_input "UNKNOWN-CTE" for any other.
result<std::string> decode_transfer_encoding(std::string_view body, std::string_view encoding);

}  // namespace hamail::mime

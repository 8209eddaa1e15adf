#pragma once

#include <string>

#include "hamail/mime/message.hpp"
#include "hamail/protocol/imap/writer.hpp"

namespace hamail::mime {

/// The IMAP ENVELOPE form (RFC 3501 §7.4.2), parenthesised, ready to follow "ENVELOPE ";
/// strings are written per `options` (UTF8=ACCEPT lets UTF-8 go quoted).
std::string envelope_form(const envelope& env, const imap::write_options& options = {});

/// The IMAP BODYSTRUCTURE form with extension data, or the BODY form without it when
/// `extensible` is false; ready to follow "BODYSTRUCTURE " or "BODY ".
std::string body_structure_form(const message_structure& msg, bool extensible = true,
                                const imap::write_options& options = {});

}  // namespace hamail::mime

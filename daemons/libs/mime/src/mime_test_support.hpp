#pragma once

// Helpers shared by the MIME library's tests.

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <string_view>

#include "hamail/mime/message.hpp"
#include "hamail/mime/section.hpp"

namespace hamail::mime::test {

/// The text with every LF turned into CRLF (messages are written with \n in the tests).
inline std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

/// The bytes of section `spec` of `raw`, or "<error code>".
inline std::string section(const std::string& raw, std::string_view spec) {
  const auto msg = parse(raw);
  auto s = parse_section(spec);
  CPPUNIT_ASSERT(s.has_value());
  auto c = fetch_section(raw, msg, *s);
  if (!c) return "<" + std::string(to_string(c.err().code)) + ">";
  return std::string(c->text(raw));
}

}  // namespace hamail::mime::test

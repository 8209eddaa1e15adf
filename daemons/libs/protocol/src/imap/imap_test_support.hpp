#pragma once

// Helpers shared by the IMAP parser tests: render parse results as comparable
// strings and feed input in given pieces.

#include <cppunit/extensions/HelperMacros.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/test/split.hpp"

namespace hamail::imap::test {

/// Renders a value: atoms bare, numbers "#n", NIL "NIL", quoted "q'..'",
/// literals "{n}..." / "~{n}...", lists "(a b)", sections "BODY[...]<o.c>".
inline std::string render(const value& v) {
  std::string out;
  switch (v.kind) {
    case value_kind::atom:
      out = v.text;
      break;
    case value_kind::number:
      out = "#" + std::to_string(v.number);
      break;
    case value_kind::nil:
      out = "NIL";
      break;
    case value_kind::quoted:
      out = "q'" + v.text + "'";
      break;
    case value_kind::literal:
      out = std::string(v.literal8 ? "~{" : "{") + std::to_string(v.text.size()) + "}" + v.text;
      break;
    case value_kind::list:
      break;
  }
  if (v.kind == value_kind::list || v.has_section) {
    out += v.has_section ? "[" : "(";
    for (std::size_t i = 0; i < v.items.size(); ++i) {
      if (i > 0) out += ' ';
      out += render(v.items[i]);
    }
    out += v.has_section ? "]" : ")";
    if (v.partial)
      out += "<" + std::to_string(v.partial->offset) + "." + std::to_string(v.partial->count) + ">";
  }
  return out;
}

/// Renders one non-need_more step.
inline std::string render(const parse_step& step) {
  switch (step.status) {
    case parse_status::need_more:
      return "need_more";
    case parse_status::need_continuation:
      return "+";
    case parse_status::complete:
      break;
    case parse_status::error:
      return "err:" + std::string(to_string(step.error->code)) +
             (step.error->action == error_action::close ? ":close" : ":bad") + ":" +
             step.error->tag;
  }
  if (step.line) return "line:" + *step.line;
  std::string out = step.cmd->tag + " " + (step.cmd->uid ? "UID " : "") + step.cmd->name;
  for (const auto& a : step.cmd->args) out += " " + render(a);
  return out;
}

using hamail::test::cut;

/// Feeds pieces the way a session does, checking the feed contract; returns
/// one rendering per step other than need_more, plus "partial" when input
/// ended inside a command. A command named IDLE puts the parser in line mode
/// and "close" errors stop the feed, as a session would.
inline std::vector<std::string> feed_all(command_parser& parser,
                                         const std::vector<std::string_view>& pieces) {
  std::vector<std::string> out;
  std::string pending;
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto step = parser.feed(view);
      CPPUNIT_ASSERT(step.consumed <= view.size());
      if (step.status == parse_status::need_more) {
        CPPUNIT_ASSERT_EQUAL(view.size(), step.consumed);
        view.remove_prefix(step.consumed);
        break;
      }
      CPPUNIT_ASSERT(step.consumed > 0);
      out.push_back(render(step));
      if (step.cmd && step.cmd->name == "IDLE") parser.expect_line();
      if (step.error && step.error->action == error_action::close) return out;
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  if (parser.buffered() != 0) out.emplace_back("partial");
  return out;
}

/// Feeds `input` to a fresh parser in one piece.
inline std::vector<std::string> parse_whole(std::string_view input, command_limits limits = {},
                                            bool utf8 = false) {
  command_parser parser(limits);
  parser.set_utf8_accept(utf8);
  return feed_all(parser, {input});
}

/// Asserts that every 2-way split and the byte-by-byte feed of `input` give `expected`.
inline void check_every_split(std::string_view input, const std::vector<std::string>& expected,
                              command_limits limits = {}) {
  for (std::size_t c = 0; c <= input.size(); ++c) {
    command_parser parser(limits);
    const auto got = feed_all(parser, cut(input, {c}));
    if (got != expected) {
      std::string g;
      for (const auto& s : got) g += "[" + s + "]";
      CPPUNIT_FAIL("split at " + std::to_string(c) + " of " + std::string(input) + " gave " + g);
    }
  }
  std::vector<std::size_t> every;
  for (std::size_t c = 1; c < input.size(); ++c) every.push_back(c);
  command_parser parser(limits);
  CPPUNIT_ASSERT_MESSAGE("byte by byte: " + std::string(input),
                         feed_all(parser, cut(input, every)) == expected);
}

}  // namespace hamail::imap::test

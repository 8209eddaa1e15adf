#pragma once

// Helpers shared by the SMTP unit tests: feed input in given pieces and
// render what the parsers produced as comparable strings.

#include <cppunit/extensions/HelperMacros.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/smtp/command_parser.hpp"
#include "hamail/protocol/smtp/data_reader.hpp"
#include "hamail/test/split.hpp"

namespace hamail::smtp::test {

/// Renders one non-need_more step: "cmd:<wire without CRLF>" or "err:<name>".
inline std::string render(const parse_step& step) {
  if (step.status == parse_status::complete) {
    std::string wire = to_wire(*step.cmd);
    wire.resize(wire.size() - 2);
    return "cmd:" + wire;
  }
  return "err:" + std::string(to_string(step.error->code));
}

using hamail::test::cut;

/// Feeds pieces to a command parser the way a session does (keeping
/// unconsumed octets), checking the feed contract; returns one rendering per
/// command line plus "partial" if input ended inside a line.
inline std::vector<std::string> feed_commands(command_parser& parser,
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
        CPPUNIT_ASSERT_EQUAL(view.size(), step.consumed);  // need_more takes everything
        view.remove_prefix(step.consumed);
        break;
      }
      CPPUNIT_ASSERT(step.consumed > 0);
      out.push_back(render(step));
      if (step.cmd) {
        if (auto* mail = std::get_if<mail_command>(&*step.cmd))
          parser.set_utf8_transaction(mail->params.smtputf8);
      }
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  if (parser.buffered() != 0) out.emplace_back("partial");
  return out;
}

/// Feeds `input` to a fresh parser in one piece.
inline std::vector<std::string> parse_whole(std::string_view input, command_limits limits = {}) {
  command_parser parser(limits);
  return feed_commands(parser, {input});
}

/// Asserts that every 2-way split and the byte-by-byte feed of `input` give `expected`.
inline void check_every_split(std::string_view input, const std::vector<std::string>& expected,
                              command_limits limits = {}) {
  for (std::size_t c = 0; c <= input.size(); ++c) {
    command_parser parser(limits);
    const auto got = feed_commands(parser, cut(input, {c}));
    CPPUNIT_ASSERT_MESSAGE("split at " + std::to_string(c) + " of " + std::string(input),
                           got == expected);
  }
  std::vector<std::size_t> every;
  for (std::size_t c = 1; c < input.size(); ++c) every.push_back(c);
  command_parser parser(limits);
  CPPUNIT_ASSERT_MESSAGE("byte by byte: " + std::string(input),
                         feed_commands(parser, cut(input, every)) == expected);
}

/// A sink that keeps everything written, and counts the writes.
struct string_sink final : output_sink {
  std::string data;
  std::size_t writes = 0;
  void write(std::string_view chunk) override {
    data.append(chunk);
    ++writes;
  }
};

/// What a DATA reader made of some input.
struct data_outcome {
  bool complete = false;
  std::size_t consumed = 0;  // total octets consumed
  std::string output;
  data_result result;

  // A refused body's partial output depends on where feeds were cut (writing
  // stops at the failure), so output is only compared for accepted bodies.
  friend bool operator==(const data_outcome& a, const data_outcome& b) {
    const bool same_output = a.result.status != data_status::ok || a.output == b.output;
    return a.complete == b.complete && a.consumed == b.consumed && same_output &&
           a.result.status == b.result.status && a.result.octets == b.result.octets &&
           a.result.lines == b.result.lines && a.result.normalized == b.result.normalized;
  }
};

/// Feeds pieces to a fresh data_reader until it completes, checking the feed contract.
inline data_outcome read_data(const std::vector<std::string_view>& pieces,
                              data_limits limits = {}) {
  data_reader reader(limits);
  string_sink sink;
  data_outcome out;
  for (auto piece : pieces) {
    const auto step = reader.feed(piece, sink);
    CPPUNIT_ASSERT(step.consumed <= piece.size());
    out.consumed += step.consumed;
    if (step.complete) {
      out.complete = true;
      break;
    }
    CPPUNIT_ASSERT_EQUAL(piece.size(), step.consumed);
  }
  out.output = sink.data;
  out.result = reader.result();
  return out;
}

}  // namespace hamail::smtp::test

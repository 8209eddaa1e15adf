// Fuzz harness for the IMAP command parser. The input is a byte stream a
// client might send; it is parsed under several limits and modes, whole and
// in pseudo-random pieces, and these invariants are checked:
//   - consumed <= input; need_more consumes everything; every other step
//     makes progress;
//   - the octets held inside never exceed the command limit;
//   - the same steps come out however the input is cut;
//   - a parsed command written back with the response writer parses to the
//     same command;
//   - the argument readers (sequence sets, dates, flags, mailbox names) keep
//     their own invariants on whatever the parser produced.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hamail/protocol/imap/arguments.hpp"
#include "hamail/protocol/imap/command_parser.hpp"
#include "hamail/protocol/imap/sequence_set.hpp"
#include "hamail/protocol/imap/writer.hpp"

namespace {

using namespace hamail::imap;
using hamail::fuzz::require;

void write_value(std::string& out, const value& v) {
  const write_options quote_all{.utf8 = true,
                                .max_quoted = std::numeric_limits<std::size_t>::max()};
  switch (v.kind) {
    case value_kind::atom:
    case value_kind::number:
    case value_kind::nil:
      out += v.text;
      break;
    case value_kind::quoted:
      require(can_quote(v.text, quote_all), "a quoted value can be quoted again");
      append_string(out, v.text, quote_all);
      break;
    case value_kind::literal:
      append_literal(out, v.text, v.literal8);
      break;
    case value_kind::list:
      break;
  }
  if (v.kind == value_kind::list || v.has_section) {
    out += v.has_section ? '[' : '(';
    for (std::size_t i = 0; i < v.items.size(); ++i) {
      if (i > 0) out += ' ';
      write_value(out, v.items[i]);
    }
    out += v.has_section ? ']' : ')';
    if (v.partial) {
      out += '<' + std::to_string(v.partial->offset) + '.' + std::to_string(v.partial->count) + '>';
    }
  }
}

std::string wire(const command& c) {
  std::string out = c.tag + ' ' + (c.uid ? "UID " : "") + c.name;
  for (const auto& a : c.args) {
    out += ' ';
    write_value(out, a);
  }
  return out + "\r\n";
}

// Parses one command's wire form with roomy limits.
command reparse(const std::string& text, bool utf8) {
  command_parser p(command_limits{.max_line = std::numeric_limits<std::size_t>::max() / 4,
                                  .max_literal = std::numeric_limits<std::size_t>::max() / 4,
                                  .max_command = std::numeric_limits<std::size_t>::max() / 4,
                                  .max_depth = 1000,
                                  .max_arguments = 1u << 30});
  p.set_utf8_accept(utf8);
  std::string_view rest = text;
  for (;;) {
    const auto s = p.feed(rest);
    rest.remove_prefix(s.consumed);
    if (s.status == parse_status::complete) {
      require(rest.empty() && s.cmd.has_value(), "wire form is one command");
      return *s.cmd;
    }
    require(s.status != parse_status::error, "wire form parses again");
    require(s.status == parse_status::need_continuation || rest.empty(), "wire form progresses");
    require(!rest.empty() || s.status == parse_status::need_continuation, "wire form is complete");
  }
}

void check_arguments(const value& v, int depth) {
  if (depth > 64) return;
  if (v.kind == value_kind::atom || v.kind == value_kind::number) {
    sequence_error e{};
    if (const auto set = sequence_set::parse(v.text, 64, &e)) {
      const auto resolved = set->resolve(1000);
      for (std::size_t i = 0; i < resolved.size(); ++i) {
        require(resolved[i].first >= 1 && resolved[i].first <= resolved[i].last &&
                    resolved[i].last <= 1000,
                "resolved ranges lie in 1..max");
        require(i == 0 || resolved[i].first > resolved[i - 1].last + 1,
                "resolved ranges are sorted and merged");
      }
      require(
          set->contains(7, 1000) ==
              [&] {
                for (const auto& r : resolved)
                  if (r.first <= 7 && 7 <= r.last) return true;
                return false;
              }(),
          "contains agrees with resolve");
    }
  }
  if (v.kind == value_kind::quoted || v.kind == value_kind::atom) {
    if (const auto d = parse_date(v.text))
      require(d->month >= 1 && d->month <= 12 && d->day >= 1 && d->day <= 31, "a date is real");
    if (const auto t = parse_date_time(v.text))
      require(t->hour < 24 && t->minute < 60 && t->second <= 60, "a time is real");
  }
  if (const auto flags = parse_flag_list(v)) {
    for (const auto& f : *flags) require(!f.empty(), "flags are not empty");
  }
  if (const auto name = mailbox_name(v)) require(name->find('\n') == std::string::npos, "no LF");
  for (const auto& item : v.items) check_arguments(item, depth + 1);
}

std::string render(const parse_step& step, bool utf8) {
  switch (step.status) {
    case parse_status::need_more:
      return "?";
    case parse_status::need_continuation:
      require(!step.cmd && !step.error, "continuation carries nothing");
      return "+";
    case parse_status::error:
      require(step.error.has_value() && !step.cmd, "error step carries an error only");
      require(!step.error->detail.empty(), "an error says why");
      require(step.error->action == error_action::reply_bad ||
                  step.error->code == parse_error::literal_too_large,
              "only an oversized literal closes the connection");
      return "err:" + std::string(to_string(step.error->code)) + ":" + step.error->tag;
    case parse_status::complete:
      break;
  }
  if (step.line) return "line:" + *step.line;
  require(step.cmd.has_value(), "complete step carries a command");
  const std::string text = wire(*step.cmd);
  require(reparse(text, utf8) == *step.cmd, "wire form parses to the same command");
  for (const auto& a : step.cmd->args) check_arguments(a, 0);
  return "cmd:" + text;
}

std::vector<std::string> run(const std::vector<std::string_view>& pieces,
                             const command_limits& limits, bool utf8) {
  command_parser parser(limits);
  parser.set_utf8_accept(utf8);
  std::vector<std::string> out;
  std::string pending;
  for (auto piece : pieces) {
    pending.append(piece);
    std::string_view view = pending;
    while (!view.empty()) {
      const auto step = parser.feed(view);
      require(step.consumed <= view.size(), "consumed <= input");
      require(parser.buffered() <= limits.max_command, "held octets stay under the limit");
      if (step.status == parse_status::need_more) {
        require(step.consumed == view.size(), "need_more consumes all input");
        view = {};
        break;
      }
      require(step.consumed > 0, "a step other than need_more consumed something");
      out.push_back(render(step, utf8));
      if (step.cmd && (step.cmd->name == "IDLE" || step.cmd->name == "AUTHENTICATE"))
        parser.expect_line();
      if (step.error && step.error->action == error_action::close) return out;
      view.remove_prefix(step.consumed);
    }
    pending.assign(view);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hamail::fuzz::fnv1a(input);
  struct config {
    command_limits limits;
    bool utf8;
  };
  const config configs[] = {
      {command_limits{}, false},
      {command_limits::before_login(), false},
      {command_limits{.max_line = 24,
                      .max_literal = 16,
                      .max_command = 64,
                      .max_depth = 2,
                      .max_arguments = 6,
                      .non_sync = literal_mode::literal_minus},
       true},
      {command_limits{.non_sync = literal_mode::synchronizing_only}, true},
  };
  for (const auto& c : configs) {
    const auto whole = run({input}, c.limits, c.utf8);
    require(run(hamail::fuzz::pieces(input, seed, 7), c.limits, c.utf8) == whole,
            "same result when fed in small pieces");
    require(run(hamail::fuzz::pieces(input, seed >> 17, 300), c.limits, c.utf8) == whole,
            "same result when fed in large pieces");
  }
  return 0;
}

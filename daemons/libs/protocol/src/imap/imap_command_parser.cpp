#include <algorithm>
#include <cstring>
#include <utility>

#include "hamail/core/utf8.hpp"
#include "hamail/protocol/imap/command_parser.hpp"

namespace hamail::imap {

namespace {

constexpr std::size_t literal_minus_max = 4096;             // RFC 7888 §4
constexpr std::uint64_t size_cap = std::uint64_t(1) << 62;  // saturation for announced sizes
constexpr std::size_t max_name = 64;
constexpr std::size_t initial_literal_reserve = 65536;

constexpr char to_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  }
  return true;
}

constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }

// Octets that may appear in an atom as this parser reads it: RFC 3501
// ATOM-CHAR plus ']' (ASTRING-CHAR), '%' and '*' (list-mailbox, sequence sets)
// and '\' (flags), so one token class serves every argument position. 8-bit
// octets are handled by the caller.
constexpr bool is_atom_octet(unsigned char c) noexcept {
  if (c <= 0x20 || c == 0x7f) return false;
  switch (c) {
    case '(':
    case ')':
    case '{':
    case '"':
      return false;
    default:
      return true;
  }
}

// RFC 3501 tag: ASTRING-CHAR except '+'.
constexpr bool is_tag_octet(unsigned char c) noexcept {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case '(':
    case ')':
    case '{':
    case '"':
    case '\\':
    case '%':
    case '*':
    case '+':
      return false;
    default:
      return true;
  }
}

bool takes_section(std::string_view atom) noexcept {
  return iequals(atom, "BODY") || iequals(atom, "BODY.PEEK") || iequals(atom, "BINARY") ||
         iequals(atom, "BINARY.PEEK") || iequals(atom, "BINARY.SIZE");
}

}  // namespace

enum class command_parser::state : unsigned char {
  tag,
  name,
  args,         // between values
  after_value,  // right after a quoted string, literal, list or section
  atom,
  tilde,  // '~' at the start of a value: literal8 or an atom
  quoted,
  quoted_escape,
  literal_size,  // inside "{" digits
  literal_plus,  // after '+', expecting '}'
  literal_end,   // after '}', expecting CRLF
  literal_lf,    // after "}\r"
  literal_data,
  section_end,  // after a section's ']': '<' or the end of the value
  partial_offset,
  partial_count,
  line_cr,       // CR at the end of a command line
  line,          // line mode
  skip,          // skipping the rest of a refused command's line
  skip_literal,  // skipping a non-synchronizing literal of a refused command
};

std::string_view to_string(parse_error code) noexcept {
  switch (code) {
    case parse_error::syntax:
      return "syntax";
    case parse_error::empty_line:
      return "empty_line";
    case parse_error::bad_tag:
      return "bad_tag";
    case parse_error::line_too_long:
      return "line_too_long";
    case parse_error::literal_too_large:
      return "literal_too_large";
    case parse_error::command_too_large:
      return "command_too_large";
    case parse_error::non_sync_not_allowed:
      return "non_sync_not_allowed";
    case parse_error::non_sync_too_large:
      return "non_sync_too_large";
    case parse_error::too_deep:
      return "too_deep";
    case parse_error::too_many_arguments:
      return "too_many_arguments";
    case parse_error::eight_bit_not_allowed:
      return "eight_bit_not_allowed";
    case parse_error::bad_utf8:
      return "bad_utf8";
    case parse_error::nul_in_literal:
      return "nul_in_literal";
  }
  return "unknown";
}

bool value::is_atom(std::string_view word) const noexcept {
  return kind == value_kind::atom && !has_section && iequals(text, word);
}

bool value::is_astring() const noexcept {
  switch (kind) {
    case value_kind::quoted:
    case value_kind::literal:
    case value_kind::number:
    case value_kind::nil:
      return true;
    case value_kind::atom:
      return !has_section;
    case value_kind::list:
      return false;
  }
  return false;
}

command_parser::command_parser(command_limits limits) : limits_(limits) { start_command(); }

void command_parser::start_command() noexcept {
  state_ = line_mode_ ? state::line : state::tag;
  cmd_ = command{};
  frames_.clear();
  token_.clear();
  token_eight_bit_ = false;
  tag_known_ = false;
  name_done_ = false;
  held_.reset();
  line_octets_ = 0;
  command_octets_ = 0;
  values_ = 0;
  pending_.reset();
  skip_brace_ = 0;
}

void command_parser::reset() noexcept {
  line_mode_ = false;
  start_command();
}

void command_parser::expect_line() noexcept {
  line_mode_ = true;
  if (state_ == state::tag && command_octets_ == 0) state_ = state::line;
}

std::size_t command_parser::buffered() const noexcept {
  return (state_ == state::skip || state_ == state::skip_literal) ? 0 : command_octets_;
}

void command_parser::begin_skip(parse_error code, std::string_view detail) {
  command_error e;
  e.code = code;
  e.detail = detail;
  e.tag = tag_known_ ? std::move(cmd_.tag) : std::string();
  // A "{n+}" whose header was being read when the command was refused: the
  // skipper must know it so it skips the literal's octets too.
  unsigned brace = 0;
  if (state_ == state::literal_size && literal_digits_ > 0) brace = 1;
  if (state_ == state::literal_plus) brace = 2;
  if (state_ == state::literal_end || state_ == state::literal_lf) brace = literal_plus_ ? 4 : 3;
  const std::uint64_t size = literal_size_;
  if (state_ == state::line) line_mode_ = false;
  start_command();
  pending_ = std::move(e);
  state_ = state::skip;
  skip_brace_ = brace;
  skip_size_ = size;
}

parse_step command_parser::report(std::size_t consumed) {
  parse_step step;
  step.consumed = consumed;
  step.status = parse_status::error;
  step.error = std::move(pending_);
  line_mode_ = false;
  start_command();
  return step;
}

parse_step command_parser::fatal(std::size_t consumed, parse_error code, std::string_view detail) {
  parse_step step;
  step.consumed = consumed;
  step.status = parse_status::error;
  std::string tag = pending_ ? std::move(pending_->tag) : tag_known_ ? cmd_.tag : std::string();
  step.error = command_error{code, error_action::close, std::move(tag), detail};
  line_mode_ = false;
  start_command();
  return step;
}

void command_parser::place(value v) {
  if (frames_.empty())
    cmd_.args.push_back(std::move(v));
  else
    frames_.back().items.push_back(std::move(v));
}

bool command_parser::count_value() {
  if (++values_ <= limits_.max_arguments) return true;
  begin_skip(parse_error::too_many_arguments, "Too many arguments");
  return false;
}

bool command_parser::check_text() {
  if (!token_eight_bit_) return true;
  if (!utf8_) {
    begin_skip(parse_error::eight_bit_not_allowed, "8-bit text without UTF8=ACCEPT");
    return false;
  }
  if (!is_valid_utf8(token_)) {
    begin_skip(parse_error::bad_utf8, "Invalid UTF-8");
    return false;
  }
  return true;
}

bool command_parser::end_atom() {
  if (!check_text() || !count_value()) return false;
  value v;
  std::uint64_t number = 0;
  bool digits = token_.size() <= 20;
  for (char ch : token_) {
    const auto c = static_cast<unsigned char>(ch);
    if (!digits) break;
    if (!is_digit(c) || number > (UINT64_MAX - (c - '0')) / 10) {
      digits = false;
      break;
    }
    number = number * 10 + (c - '0');
  }
  if (digits) {
    v.kind = value_kind::number;
    v.number = number;
  } else if (iequals(token_, "NIL")) {
    v.kind = value_kind::nil;
  }
  v.text = std::move(token_);
  token_.clear();
  token_eight_bit_ = false;
  place(std::move(v));
  return true;
}

bool command_parser::open_frame(value v) {
  if (!count_value()) return false;
  if (frames_.size() >= limits_.max_depth) {
    begin_skip(parse_error::too_deep, "Lists nested too deeply");
    return false;
  }
  frames_.push_back(std::move(v));
  return true;
}

// Handles one octet at a value boundary (states args and after_value);
// returns false when the command ended or failed and the caller must return.
command_parser::outcome command_parser::boundary(unsigned char c, std::size_t consumed) {
  switch (c) {
    case ' ':
      state_ = state::args;
      return outcome::go_on;
    case '\r':
      state_ = state::line_cr;
      return outcome::go_on;
    case '\n':
      return end_line(consumed);
    case ')':
      if (frames_.empty() || frames_.back().kind != value_kind::list) {
        begin_skip(parse_error::syntax, "Unexpected ')'");
        return outcome::redo;
      }
      {
        value v = std::move(frames_.back());
        frames_.pop_back();
        place(std::move(v));
      }
      state_ = state::after_value;
      return outcome::go_on;
    case ']':
      if (!frames_.empty() && frames_.back().has_section &&
          frames_.back().kind == value_kind::atom) {
        held_ = std::move(frames_.back());
        frames_.pop_back();
        state_ = state::section_end;
        return outcome::go_on;
      }
      break;
    default:
      break;
  }
  if (state_ == state::after_value) {
    begin_skip(parse_error::syntax, "Expected SP between arguments");
    return outcome::redo;
  }
  switch (c) {
    case '(': {
      value v;
      v.kind = value_kind::list;
      if (!open_frame(std::move(v))) return outcome::redo;
      return outcome::go_on;
    }
    case '"':
      if (!count_value()) return outcome::redo;
      state_ = state::quoted;
      return outcome::go_on;
    case '{':
      literal8_ = false;
      start_literal();
      return outcome::go_on;
    case '~':
      state_ = state::tilde;
      return outcome::go_on;
    default:
      break;
  }
  if (c >= 0x80) {
    token_eight_bit_ = true;
  } else if (!is_atom_octet(c)) {
    begin_skip(parse_error::syntax, c == 0 ? "NUL in command" : "Unexpected character");
    return outcome::redo;
  }
  token_.push_back(static_cast<char>(c));
  state_ = state::atom;
  return outcome::go_on;
}

void command_parser::start_literal() {
  literal_size_ = 0;
  literal_digits_ = 0;
  literal_plus_ = false;
  state_ = state::literal_size;
}

command_parser::outcome command_parser::end_line(std::size_t consumed) {
  if (!frames_.empty()) {
    begin_skip(parse_error::syntax, frames_.back().kind == value_kind::list
                                        ? "Unterminated list"
                                        : "Unterminated section");
    return outcome::redo;
  }
  if (!name_done_) {
    if (cmd_.name.empty()) {
      begin_skip(parse_error::syntax, "Missing command");
      return outcome::redo;
    }
    name_done_ = true;
  }
  if (iequals(cmd_.name, "UID")) {
    if (cmd_.args.empty() || cmd_.args.front().kind != value_kind::atom ||
        cmd_.args.front().has_section) {
      begin_skip(parse_error::syntax, "UID needs a command");
      return outcome::redo;
    }
    cmd_.uid = true;
    cmd_.name = std::move(cmd_.args.front().text);
    std::transform(cmd_.name.begin(), cmd_.name.end(), cmd_.name.begin(), to_upper);
    cmd_.args.erase(cmd_.args.begin());
  }
  result_ = parse_step{};
  result_.consumed = consumed;
  result_.status = parse_status::complete;
  result_.cmd = std::move(cmd_);
  start_command();
  return outcome::done;
}

command_parser::outcome command_parser::end_literal_header(std::size_t consumed) {
  const std::uint64_t size = literal_size_;
  if (!literal_plus_) {
    if (size > limits_.max_literal) {
      begin_skip(parse_error::literal_too_large, "Literal too large");
      result_ = report(consumed);
      return outcome::done;
    }
    if (command_octets_ + size > limits_.max_command) {
      begin_skip(parse_error::command_too_large, "Command too large");
      result_ = report(consumed);
      return outcome::done;
    }
    start_literal_data(size);
    result_ = parse_step{};
    result_.consumed = consumed;
    result_.status = parse_status::need_continuation;
    return outcome::done;
  }
  // The client sends a non-synchronizing literal without waiting: refusing
  // it means skipping its octets too, which is only sensible up to max_literal.
  if (size > limits_.max_literal) {
    result_ = fatal(consumed, parse_error::literal_too_large, "Literal too large");
    return outcome::done;
  }
  std::optional<std::pair<parse_error, std::string_view>> refuse;
  if (limits_.non_sync == literal_mode::synchronizing_only)
    refuse.emplace(parse_error::non_sync_not_allowed, "Non-synchronizing literals not supported");
  else if (limits_.non_sync == literal_mode::literal_minus && size > literal_minus_max)
    refuse.emplace(parse_error::non_sync_too_large, "[TOOBIG] Non-synchronizing literal too large");
  else if (command_octets_ + size > limits_.max_command)
    refuse.emplace(parse_error::command_too_large, "Command too large");
  if (refuse) {
    begin_skip(refuse->first, refuse->second);
    literal_left_ = size;
    state_ = state::skip_literal;
    if (size == 0) state_ = state::skip;
    return outcome::go_on;
  }
  start_literal_data(size);
  return outcome::go_on;
}

void command_parser::start_literal_data(std::uint64_t size) {
  literal_left_ = size;
  token_.clear();
  // Announcing a size costs the client nothing: memory grows with the
  // octets that actually arrive, not with the promise.
  token_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(size, initial_literal_reserve)));
  state_ = state::literal_data;
}

bool command_parser::end_literal() {
  if (!literal8_ && std::memchr(token_.data(), '\0', token_.size()) != nullptr) {
    begin_skip(parse_error::nul_in_literal, "NUL in literal");
    return false;
  }
  value v;
  v.kind = value_kind::literal;
  v.literal8 = literal8_;
  v.text = std::move(token_);
  token_.clear();
  place(std::move(v));
  line_octets_ = 0;  // the line limit applies to each line segment
  state_ = state::after_value;
  return true;
}

parse_step command_parser::feed(std::string_view input) {
  const std::size_t n = input.size();
  std::size_t i = 0;
  while (i < n) {
    if (state_ == state::literal_data || state_ == state::skip_literal) {
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(literal_left_, n - i));
      if (state_ == state::literal_data) {
        token_.append(input.substr(i, take));
        command_octets_ += take;
      }
      i += take;
      literal_left_ -= take;
      if (literal_left_ == 0) {
        if (state_ == state::skip_literal)
          state_ = state::skip;
        else
          end_literal();
      }
      continue;
    }
    const auto c = static_cast<unsigned char>(input[i++]);

    if (state_ != state::skip) {
      ++line_octets_;
      ++command_octets_;
      if (line_octets_ > limits_.max_line)
        begin_skip(parse_error::line_too_long, "Line too long");
      else if (command_octets_ > limits_.max_command)
        begin_skip(parse_error::command_too_large, "Command too large");
    }

    for (;;) {
      outcome o = outcome::go_on;
      switch (state_) {
        case state::skip:
          if (c == '\n') {
            if (skip_brace_ == 4) {
              // a "{n+}" ended the skipped line: its octets follow at once
              if (skip_size_ > limits_.max_literal)
                return fatal(i, parse_error::literal_too_large, "Literal too large");
              skip_brace_ = 0;
              literal_left_ = skip_size_;
              if (literal_left_ > 0) state_ = state::skip_literal;
              break;
            }
            return report(i);
          }
          if (c == '{') {
            skip_brace_ = 1;
            skip_size_ = 0;
            literal_digits_ = 0;
          } else if (skip_brace_ == 1 && is_digit(c)) {
            skip_size_ = std::min(skip_size_ * 10 + (c - '0'), size_cap);
            ++literal_digits_;
          } else if (skip_brace_ == 1 && c == '+' && literal_digits_ > 0) {
            skip_brace_ = 2;
          } else if (skip_brace_ == 1 && c == '}' && literal_digits_ > 0) {
            skip_brace_ = 3;
          } else if (skip_brace_ == 2 && c == '}') {
            skip_brace_ = 4;
          } else if (c == '\r' && skip_brace_ >= 3) {
            // keep: CR before the LF that ends the header
          } else {
            skip_brace_ = 0;
          }
          break;

        case state::line:
          if (c == '\n') {
            if (!token_.empty() && token_.back() == '\r') token_.pop_back();
            parse_step step;
            step.consumed = i;
            step.status = parse_status::complete;
            step.line = std::move(token_);
            line_mode_ = false;
            start_command();
            return step;
          }
          token_.push_back(static_cast<char>(c));
          break;

        case state::tag:
          if (c == ' ' && !cmd_.tag.empty()) {
            tag_known_ = true;
            state_ = state::name;
          } else if (is_tag_octet(c)) {
            cmd_.tag.push_back(static_cast<char>(c));
          } else if ((c == '\n' || c == '\r') && cmd_.tag.empty() && line_octets_ <= 2) {
            if (c == '\r') break;  // a CRLF-only line; the LF reports it
            begin_skip(parse_error::empty_line, "Empty command line");
            o = outcome::redo;
          } else if ((c == '\n' || c == '\r') && !cmd_.tag.empty()) {
            tag_known_ = true;
            begin_skip(parse_error::syntax, "Missing command");
            o = outcome::redo;
          } else {
            begin_skip(parse_error::bad_tag, cmd_.tag.empty() ? "Missing tag" : "Invalid tag");
            o = outcome::redo;
          }
          break;

        case state::name:
          if (c == ' ' && !cmd_.name.empty()) {
            name_done_ = true;
            state_ = state::args;
          } else if (c == '\r' || c == '\n') {
            o = boundary(c, i);
          } else if (c < 0x80 && is_atom_octet(c) && c != '[' && c != ']' &&
                     cmd_.name.size() < max_name) {
            cmd_.name.push_back(to_upper(static_cast<char>(c)));
          } else {
            begin_skip(parse_error::syntax, "Invalid command name");
            o = outcome::redo;
          }
          break;

        case state::args:
        case state::after_value:
          o = boundary(c, i);
          break;

        case state::atom:
          if (c == '[' && takes_section(token_)) {
            value v;
            v.has_section = true;
            v.text = std::move(token_);
            token_.clear();
            if (open_frame(std::move(v))) {
              state_ = state::args;
            } else {
              o = outcome::redo;
            }
            break;
          }
          if (c == ']' && !frames_.empty() && frames_.back().has_section &&
              frames_.back().kind == value_kind::atom) {
            o = end_atom() ? outcome::redo_at_boundary : outcome::redo;
            break;
          }
          if (c >= 0x80) {
            token_eight_bit_ = true;
            token_.push_back(static_cast<char>(c));
          } else if (is_atom_octet(c)) {
            token_.push_back(static_cast<char>(c));
          } else if (c == ' ' || c == '\r' || c == '\n' || c == ')') {
            o = end_atom() ? outcome::redo_at_boundary : outcome::redo;
          } else {
            begin_skip(parse_error::syntax, "Unexpected character in atom");
            o = outcome::redo;
          }
          break;

        case state::tilde:
          if (c == '{') {
            literal8_ = true;
            start_literal();
          } else {
            token_.push_back('~');
            state_ = state::atom;
            o = outcome::redo;
          }
          break;

        case state::quoted:
          if (c == '"') {
            if (!check_text()) {
              o = outcome::redo;
              break;
            }
            value v;
            v.kind = value_kind::quoted;
            v.text = std::move(token_);
            token_.clear();
            token_eight_bit_ = false;
            place(std::move(v));
            state_ = state::after_value;
          } else if (c == '\\') {
            state_ = state::quoted_escape;
          } else if (c == '\r' || c == '\n' || c == 0) {
            begin_skip(parse_error::syntax, "Unterminated quoted string");
            o = outcome::redo;
          } else {
            if (c >= 0x80) token_eight_bit_ = true;
            token_.push_back(static_cast<char>(c));
          }
          break;

        case state::quoted_escape:
          if (c == '"' || c == '\\') {
            token_.push_back(static_cast<char>(c));
            state_ = state::quoted;
          } else {
            begin_skip(parse_error::syntax, "Invalid escape in quoted string");
            o = outcome::redo;
          }
          break;

        case state::literal_size:
          if (is_digit(c)) {
            literal_size_ = std::min(literal_size_ * 10 + (c - '0'), size_cap);
            ++literal_digits_;
          } else if (c == '+' && literal_digits_ > 0) {
            literal_plus_ = true;
            state_ = state::literal_plus;
          } else if (c == '}' && literal_digits_ > 0) {
            state_ = state::literal_end;
          } else {
            begin_skip(parse_error::syntax, "Invalid literal");
            o = outcome::redo;
          }
          break;

        case state::literal_plus:
          if (c == '}') {
            state_ = state::literal_end;
          } else {
            begin_skip(parse_error::syntax, "Invalid literal");
            o = outcome::redo;
          }
          break;

        case state::literal_end:
          if (c == '\r') {
            state_ = state::literal_lf;
            break;
          }
          [[fallthrough]];
        case state::literal_lf:
          if (c == '\n') {
            if (!count_value()) {
              o = outcome::redo;
              break;
            }
            o = end_literal_header(i);
          } else {
            begin_skip(parse_error::syntax, "Literal not at the end of the line");
            o = outcome::redo;
          }
          break;

        case state::literal_data:
        case state::skip_literal:
          break;  // handled above

        case state::section_end:
          if (c == '<') {
            partial_offset_ = 0;
            partial_digits_ = 0;
            state_ = state::partial_offset;
            break;
          }
          place(std::move(*held_));
          held_.reset();
          state_ = state::after_value;
          o = outcome::redo;
          break;

        case state::partial_offset:
        case state::partial_count:
          if (is_digit(c) && partial_digits_ < 19) {
            partial_offset_ = partial_offset_ * 10 + (c - '0');
            ++partial_digits_;
          } else if (state_ == state::partial_offset && c == '.' && partial_digits_ > 0) {
            held_->partial = partial_range{partial_offset_, 0};
            partial_offset_ = 0;
            partial_digits_ = 0;
            state_ = state::partial_count;
          } else if (state_ == state::partial_count && c == '>' && partial_digits_ > 0 &&
                     partial_offset_ > 0) {
            held_->partial->count = partial_offset_;
            place(std::move(*held_));
            held_.reset();
            state_ = state::after_value;
          } else {
            begin_skip(parse_error::syntax, "Invalid <offset.count>");
            o = outcome::redo;
          }
          break;

        case state::line_cr:
          if (c == '\n') {
            o = end_line(i);
          } else {
            begin_skip(parse_error::syntax, "CR without LF");
            o = outcome::redo;
          }
          break;
      }
      if (o == outcome::go_on) break;
      if (o == outcome::done) return std::move(result_);
      if (o == outcome::redo_at_boundary) state_ = state::args;
      // redo: handle the same octet in the new state
    }
  }
  parse_step step;
  step.consumed = n;
  return step;
}

}  // namespace hamail::imap

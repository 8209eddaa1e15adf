#include <cppunit/extensions/HelperMacros.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/protocol/pop3/dot_stuffer.hpp"

namespace hamail::pop3 {
namespace {

// The whole-message, non-streaming definition of the wire form: lines end at
// LF (one CR before it dropped), a last line without LF counts, lines starting
// with "." get another, every line gets CRLF, then ".\r\n". TOP: the lines up
// to and including the first empty one, then `top` more.
std::string reference(std::string_view msg, std::optional<std::uint32_t> top) {
  std::vector<std::string_view> lines;
  while (!msg.empty()) {
    const auto lf = msg.find('\n');
    auto line = msg.substr(0, lf);
    if (lf != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    msg.remove_prefix(lf == std::string_view::npos ? msg.size() : lf + 1);
  }
  std::string out;
  bool in_body = false;
  std::uint32_t body = 0;
  for (auto line : lines) {
    if (top && in_body && body >= *top) break;
    if (!line.empty() && line.front() == '.') out.push_back('.');
    out.append(line).append("\r\n");
    if (in_body)
      ++body;
    else if (line.empty())
      in_body = true;
  }
  return out + ".\r\n";
}

dot_stuffer make(std::optional<std::uint32_t> top) {
  return top ? dot_stuffer::top(*top) : dot_stuffer();
}

// Streams pieces through an encoder the way a session does, checking the feed
// contract; stops reading once done.
std::string stream(const std::vector<std::string_view>& pieces, std::optional<std::uint32_t> top) {
  auto enc = make(top);
  std::string out;
  for (auto piece : pieces) {
    const auto before = out.size();
    const auto step = enc.feed(piece, out);
    CPPUNIT_ASSERT(step.consumed <= piece.size());
    CPPUNIT_ASSERT(out.size() - before <= 2 * piece.size() + 5);
    CPPUNIT_ASSERT_EQUAL(enc.done(), step.done);
    if (step.done) return out;
    CPPUNIT_ASSERT_EQUAL(piece.size(), step.consumed);
  }
  enc.finish(out);
  CPPUNIT_ASSERT(enc.done());
  const auto size = out.size();
  enc.finish(out);  // a second finish adds nothing
  CPPUNIT_ASSERT_EQUAL(size, out.size());
  return out;
}

std::string show(std::string_view s) {
  std::string r;
  for (char c : s) {
    if (c == '\r')
      r += "\\r";
    else if (c == '\n')
      r += "\\n";
    else
      r.push_back(c);
  }
  return r;
}

const std::vector<std::optional<std::uint32_t>> modes = {std::nullopt, 0u, 1u, 2u, 5u, 1000u};

// Messages written by hand for the awkward cases.
const std::vector<std::string> samples = {
    "",
    "\n",
    "\r\n",
    "\r",
    ".",
    "..",
    ".\r\n",
    ".\n.\n",
    "a",
    "a\r",
    "a\rb\r\n",
    "\r\r\n",
    "Subject: x\r\n\r\nbody\r\n.\r\n..\r\n.x\r\nlast",
    "Subject: x\n\n.\n\nline\nline2\n",
    "H: 1\r\nH: 2\r\n\r\n\r\n\r\n",
    "H: 1\r\n.H: 2\r\n",
    "no header end\r\nstill header",
    "\r\n.\r\n",
    "A: b\r\n\r\n.\r.\n.\r\r\n",
};

std::string random_message(std::mt19937& rng) {
  static const char* const tokens[] = {"a",    "bc", ".",     "..",       "\r",  "\n",
                                       "\r\n", " ",  ".\r\n", "\r\n\r\n", "xyz", "\n."};
  std::uniform_int_distribution<int> len(0, 40);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(tokens) - 1);
  std::string m;
  for (int n = len(rng); n > 0; --n) m += tokens[pick(rng)];
  if (rng() % 8 == 0) m += std::string(rng() % 3000, 'L');  // a long line
  return m;
}

class pop3_dot_stuffer_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(pop3_dot_stuffer_test);
  CPPUNIT_TEST(exact_wire_forms);
  CPPUNIT_TEST(top_exact_wire_forms);
  CPPUNIT_TEST(samples_at_every_two_and_three_way_split);
  CPPUNIT_TEST(generated_messages_random_chunks);
  CPPUNIT_TEST(top_stops_consuming_when_done);
  CPPUNIT_TEST(ten_mib_line_streams_in_constant_memory);
  CPPUNIT_TEST_SUITE_END();

 public:
  void exact_wire_forms() {
    CPPUNIT_ASSERT_EQUAL(std::string(".\r\n"), stream({""}, std::nullopt));
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n.\r\n"), stream({"a\nb"}, std::nullopt));
    CPPUNIT_ASSERT_EQUAL(std::string("..\r\n...\r\nx\r\n.\r\n"),
                         stream({".\r\n..\n", "x"}, std::nullopt));
    CPPUNIT_ASSERT_EQUAL(std::string("a\rb\r\n.\r\n"), stream({"a\r", "b"}, std::nullopt));
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\r\n.\r\n"), stream({"a\r"}, std::nullopt));
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n..\r\n.\r\n"),
                         stream({"a\r", "\n.", "\n"}, std::nullopt));
    CPPUNIT_ASSERT_EQUAL(std::string("\r.\r\n.\r\n"), stream({"\r", ".\n"}, std::nullopt));
  }
  void top_exact_wire_forms() {
    const std::string msg = "A: 1\r\nB: 2\n\r\nl1\r\n.l2\nl3";
    CPPUNIT_ASSERT_EQUAL(std::string("A: 1\r\nB: 2\r\n\r\n.\r\n"), stream({msg}, 0u));
    CPPUNIT_ASSERT_EQUAL(std::string("A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n"), stream({msg}, 1u));
    CPPUNIT_ASSERT_EQUAL(std::string("A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"), stream({msg}, 2u));
    CPPUNIT_ASSERT_EQUAL(std::string("A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"),
                         stream({msg}, 3u));
    CPPUNIT_ASSERT_EQUAL(stream({msg}, std::nullopt), stream({msg}, 99u));
  }
  void samples_at_every_two_and_three_way_split() {
    for (const auto& m : samples) {
      for (const auto& top : modes) {
        const auto want = reference(m, top);
        const std::string_view v = m;
        for (std::size_t a = 0; a <= m.size(); ++a) {
          for (std::size_t b = a; b <= m.size(); ++b) {
            const auto got = stream({v.substr(0, a), v.substr(a, b - a), v.substr(b)}, top);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(
                show(m) + " at " + std::to_string(a) + "," + std::to_string(b), show(want),
                show(got));
          }
        }
        std::vector<std::string_view> bytes;
        for (std::size_t i = 0; i < m.size(); ++i) bytes.push_back(v.substr(i, 1));
        CPPUNIT_ASSERT_EQUAL_MESSAGE(show(m) + " byte by byte", show(want),
                                     show(stream(bytes, top)));
      }
    }
  }
  void generated_messages_random_chunks() {
    std::mt19937 rng(12345);
    for (int round = 0; round < 800; ++round) {
      const auto m = random_message(rng);
      const std::string_view v = m;
      for (const auto& top : modes) {
        const auto want = reference(m, top);
        if (m.size() < 200) {
          for (std::size_t a = 0; a <= m.size(); ++a)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(show(m), show(want),
                                         show(stream({v.substr(0, a), v.substr(a)}, top)));
        }
        for (int k = 0; k < 3; ++k) {
          std::vector<std::string_view> pieces;
          std::size_t from = 0;
          while (from < m.size()) {
            const std::size_t n = std::min<std::size_t>(rng() % 9, m.size() - from);
            pieces.push_back(v.substr(from, n));
            from += n;
          }
          CPPUNIT_ASSERT_EQUAL_MESSAGE(show(m), show(want), show(stream(pieces, top)));
        }
      }
    }
  }
  void top_stops_consuming_when_done() {
    auto enc = dot_stuffer::top(1);
    std::string out;
    const std::string msg = "H: v\r\n\r\nbody 1\r\nbody 2\r\n";
    auto step = enc.feed(msg, out);
    CPPUNIT_ASSERT(step.done);
    CPPUNIT_ASSERT_EQUAL(std::string("H: v\r\n\r\nbody 1\r\n").size(), step.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string("H: v\r\n\r\nbody 1\r\n.\r\n"), out);
    step = enc.feed("more", out);  // nothing more is taken once done
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), step.consumed);
    CPPUNIT_ASSERT(step.done);
    enc.finish(out);
    CPPUNIT_ASSERT_EQUAL(std::string("H: v\r\n\r\nbody 1\r\n.\r\n"), out);
    // TOP 0 stops right after the blank line, even when the CRLF is split
    auto zero = dot_stuffer::top(0);
    std::string z;
    CPPUNIT_ASSERT(!zero.feed("H: v\r\n\r", z).done);
    step = zero.feed("\nbody\r\n", z);
    CPPUNIT_ASSERT(step.done);
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), step.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string("H: v\r\n\r\n.\r\n"), z);
  }
  void ten_mib_line_streams_in_constant_memory() {
    static_assert(sizeof(dot_stuffer) <= 32, "no buffer inside the encoder");
    constexpr std::size_t total = 10u << 20;
    constexpr std::size_t chunk_size = 64u << 10;
    std::string chunk(chunk_size, 'x');
    dot_stuffer enc;
    std::string out;
    out.reserve(2 * chunk_size + 5);
    const auto capacity = out.capacity();
    std::size_t written = 0;
    for (std::size_t sent = 0; sent < total; sent += chunk_size) {
      chunk[0] = sent == 0 ? '.' : 'x';
      const auto step = enc.feed(chunk, out);
      CPPUNIT_ASSERT_EQUAL(chunk_size, step.consumed);
      CPPUNIT_ASSERT(out.size() <= chunk_size + 1);
      written += out.size();
      out.clear();
    }
    enc.finish(out);
    written += out.size();
    CPPUNIT_ASSERT_EQUAL(std::string("\r\n.\r\n"), out);
    CPPUNIT_ASSERT_EQUAL(total + 1 + 5, written);    // the stuffed dot, CRLF, terminator
    CPPUNIT_ASSERT_EQUAL(capacity, out.capacity());  // the output never outgrew one chunk
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(pop3_dot_stuffer_test);

}  // namespace
}  // namespace hamail::pop3

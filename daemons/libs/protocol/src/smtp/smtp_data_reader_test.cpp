#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "hamail/protocol/smtp/data_reader.hpp"
#include "smtp_test_support.hpp"

// Counts heap allocations, to show the reader streams without allocating.
namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace hamail::smtp {
namespace {

using test::cut;
using test::data_outcome;
using test::read_data;
using test::string_sink;

constexpr data_limits reject_limits{};
constexpr data_limits normalize_limits{.bare_newlines = bare_newline_policy::normalize};

data_outcome whole(std::string_view in, data_limits limits = reject_limits) {
  return read_data({in}, limits);
}

// Asserts that every 2-way split and the byte-by-byte feed give the same outcome as one feed.
void check_every_split(std::string_view in, data_limits limits) {
  const auto expected = whole(in, limits);
  for (std::size_t c = 0; c <= in.size(); ++c) {
    CPPUNIT_ASSERT_MESSAGE("split at " + std::to_string(c),
                           read_data(cut(in, {c}), limits) == expected);
  }
  std::vector<std::size_t> every;
  for (std::size_t c = 1; c < in.size(); ++c) every.push_back(c);
  CPPUNIT_ASSERT_MESSAGE("byte by byte", read_data(cut(in, every), limits) == expected);
}

// A sink that only counts, so 50 MiB can pass through without being kept.
struct counting_sink final : output_sink {
  std::uint64_t bytes = 0;
  std::size_t largest = 0;
  void write(std::string_view chunk) override {
    bytes += chunk.size();
    largest = std::max(largest, chunk.size());
  }
};

class data_reader_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(data_reader_test);
  CPPUNIT_TEST(dot_stuffed_lines_are_unstuffed);
  CPPUNIT_TEST(lone_dot_right_after_data_is_empty_body);
  CPPUNIT_TEST(crlf_before_end_marker_belongs_to_content);
  CPPUNIT_TEST(bytes_after_end_of_data_are_not_consumed);
  CPPUNIT_TEST(end_of_data_same_at_every_split_point);
  CPPUNIT_TEST(bare_lf_dot_lf_is_not_end_of_data);
  CPPUNIT_TEST(bare_lf_dot_crlf_is_not_end_of_data);
  CPPUNIT_TEST(crlf_dot_lf_is_not_end_of_data);
  CPPUNIT_TEST(bare_cr_dot_cr_is_not_end_of_data);
  CPPUNIT_TEST(crlf_dot_bare_cr_is_not_end_of_data);
  CPPUNIT_TEST(smuggling_cases_same_at_every_split_point);
  CPPUNIT_TEST(normalize_turns_bare_newlines_into_crlf);
  CPPUNIT_TEST(rejected_body_writes_nothing_after_the_bare_lf);
  CPPUNIT_TEST(data_line_ended_by_bare_lf_gives_no_immediate_end);
  CPPUNIT_TEST(line_over_limit_is_reported_and_read_to_end);
  CPPUNIT_TEST(size_at_limit_passes_one_more_is_too_big);
  CPPUNIT_TEST(oversize_body_is_discarded_with_bounded_memory);
  CPPUNIT_TEST(several_failures_report_the_most_serious);
  CPPUNIT_TEST(counts_octets_and_lines);
  CPPUNIT_TEST(reset_reads_the_next_body);
  CPPUNIT_TEST(bdat_crlf_split_across_chunks_is_one_newline);
  CPPUNIT_TEST(bdat_bare_cr_at_message_end_is_bare_cr);
  CPPUNIT_TEST(bdat_bare_lf_rejected_or_normalized);
  CPPUNIT_TEST(bdat_does_no_dot_unstuffing);
  CPPUNIT_TEST(bdat_binary_passes_newlines_untouched);
  CPPUNIT_TEST(bdat_same_at_every_chunk_split);
  CPPUNIT_TEST(bdat_line_length_counts_across_chunks);
  CPPUNIT_TEST(bdat_size_limit_counts_across_chunks);
  CPPUNIT_TEST_SUITE_END();

 public:
  void dot_stuffed_lines_are_unstuffed() {
    auto o = whole("..foo\r\n..\r\n.x\r\n...\r\n.\r\n");
    CPPUNIT_ASSERT(o.complete);
    CPPUNIT_ASSERT_EQUAL(std::string(".foo\r\n.\r\nx\r\n..\r\n"), o.output);
    CPPUNIT_ASSERT(o.result.status == data_status::ok);
  }
  void lone_dot_right_after_data_is_empty_body() {
    auto o = whole(".\r\n");
    CPPUNIT_ASSERT(o.complete);
    CPPUNIT_ASSERT_EQUAL(std::size_t(3), o.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string(), o.output);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), o.result.octets);
  }
  void crlf_before_end_marker_belongs_to_content() {
    auto o = whole("abc\r\n.\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("abc\r\n"), o.output);
    o = whole("abc\r\n\r\n.\r\n");
    CPPUNIT_ASSERT_EQUAL(std::string("abc\r\n\r\n"), o.output);
  }
  void bytes_after_end_of_data_are_not_consumed() {
    const std::string body = "Subject: x\r\n\r\nhi\r\n.\r\n";
    auto o = whole(body + "QUIT\r\n");
    CPPUNIT_ASSERT(o.complete);
    CPPUNIT_ASSERT_EQUAL(body.size(), o.consumed);
    data_reader r;
    string_sink sink;
    CPPUNIT_ASSERT(r.feed(body, sink).complete);
    const auto again = r.feed("more", sink);
    CPPUNIT_ASSERT(again.complete);
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), again.consumed);
  }
  void end_of_data_same_at_every_split_point() {
    const std::string in = "From: a@b\r\n\r\n..dot\r\n.\r\r\nx.\r\n.y\r\n\r\n.\r\nQUIT\r\n";
    const auto o = whole(in);
    CPPUNIT_ASSERT(o.complete);
    CPPUNIT_ASSERT_EQUAL(in.size() - 6, o.consumed);
    check_every_split(in, reject_limits);
    check_every_split(in, normalize_limits);
  }

  // Each smuggling case: the fake marker must not end the body in either
  // mode; reject refuses the body, normalize keeps the fake marker as content.
  void bare_lf_dot_lf_is_not_end_of_data() {
    const std::string in = "a\n.\nMAIL FROM:<x@y>\r\n.\r\n";
    auto o = whole(in);
    CPPUNIT_ASSERT(o.complete);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT(o.result.status == data_status::bare_lf);
    o = whole(in, normalize_limits);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT(o.result.status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), o.output);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), o.result.normalized);
  }
  void bare_lf_dot_crlf_is_not_end_of_data() {
    const std::string in = "a\n.\r\nRCPT\r\n.\r\n";
    auto o = whole(in);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT(o.result.status == data_status::bare_lf);
    o = whole(in, normalize_limits);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\nRCPT\r\n"), o.output);
  }
  void crlf_dot_lf_is_not_end_of_data() {
    const std::string in = "a\r\n.\nRCPT\r\n.\r\n";
    auto o = whole(in);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT(o.result.status == data_status::bare_lf);
    o = whole(in, normalize_limits);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\nRCPT\r\n"), o.output);
    // also straight after the DATA line
    o = whole(".\nRCPT\r\n.\r\n", normalize_limits);
    CPPUNIT_ASSERT_EQUAL(std::string(".\r\nRCPT\r\n"), o.output);
  }
  void bare_cr_dot_cr_is_not_end_of_data() {
    const std::string in = "a\r.\rRCPT\r\n.\r\n";
    auto o = whole(in);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT(o.result.status == data_status::bare_cr);
    o = whole(in, normalize_limits);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\nRCPT\r\n"), o.output);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), o.result.normalized);
  }
  void crlf_dot_bare_cr_is_not_end_of_data() {
    const std::string in = "a\r\n.\rX\r\n.\r\n";
    auto o = whole(in);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT(o.result.status == data_status::bare_cr);
    o = whole(in, normalize_limits);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\nX\r\n"), o.output);
  }
  void smuggling_cases_same_at_every_split_point() {
    for (const char* in : {"a\n.\nb\r\n.\r\n", "a\n.\r\nb\r\n.\r\n", "a\r\n.\nb\r\n.\r\n",
                           "a\r.\rb\r\n.\r\n", "a\r\n.\rb\r\n.\r\n", "\n.\n\r\n.\r\n"}) {
      check_every_split(in, reject_limits);
      check_every_split(in, normalize_limits);
    }
  }
  void normalize_turns_bare_newlines_into_crlf() {
    auto o = whole("a\nb\rc\r\r\nd\r\n.\r\n", normalize_limits);
    CPPUNIT_ASSERT(o.result.status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\nc\r\n\r\nd\r\n"), o.output);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), o.result.normalized);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(5), o.result.lines);
    CPPUNIT_ASSERT(o.result.saw_bare_lf && o.result.saw_bare_cr);
  }
  void rejected_body_writes_nothing_after_the_bare_lf() {
    const std::string in = "first\r\nsmuggle\n.\nMAIL FROM:<x@y>\r\n.\r\n";
    for (std::size_t c = 0; c <= in.size(); ++c) {
      auto o = read_data(cut(in, {c}));
      CPPUNIT_ASSERT(o.result.status == data_status::bare_lf);
      CPPUNIT_ASSERT(o.output.find("MAIL") == std::string::npos);
      CPPUNIT_ASSERT(o.output.size() <= 7 + 7);
    }
  }
  void data_line_ended_by_bare_lf_gives_no_immediate_end() {
    data_reader r;
    r.reset(false);
    string_sink sink;
    const std::string in = ".\r\n.\r\n";
    const auto step = r.feed(in, sink);
    CPPUNIT_ASSERT(step.complete);
    CPPUNIT_ASSERT_EQUAL(in.size(), step.consumed);
    CPPUNIT_ASSERT_EQUAL(std::string(".\r\n"), sink.data);
  }
  void line_over_limit_is_reported_and_read_to_end() {
    data_limits limits{.max_line_length = 100};
    const std::string fits = std::string(98, 'x') + "\r\n";
    auto o = whole(fits + ".\r\n", limits);
    CPPUNIT_ASSERT(o.result.status == data_status::ok);
    const std::string in = std::string(99, 'x') + "\r\nmore\r\n.\r\n";
    o = whole(in, limits);
    CPPUNIT_ASSERT(o.complete);
    CPPUNIT_ASSERT_EQUAL(in.size(), o.consumed);
    CPPUNIT_ASSERT(o.result.status == data_status::line_too_long);
    check_every_split(in, limits);
    // the stuffing dot is part of the line as sent
    o = whole("." + std::string(98, 'x') + "\r\n.\r\n", limits);
    CPPUNIT_ASSERT(o.result.status == data_status::line_too_long);
  }
  void size_at_limit_passes_one_more_is_too_big() {
    data_limits limits{.max_message_size = 10};
    auto o = whole("12345678\r\n.\r\n", limits);
    CPPUNIT_ASSERT(o.result.status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("12345678\r\n"), o.output);
    o = whole("123456789\r\n.\r\n", limits);
    CPPUNIT_ASSERT(o.complete);
    CPPUNIT_ASSERT(o.result.status == data_status::too_big);
    CPPUNIT_ASSERT(o.output.size() <= 10);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(11), o.result.octets);
  }
  void oversize_body_is_discarded_with_bounded_memory() {
    data_limits limits{.max_message_size = 1024 * 1024};
    data_reader reader(limits);
    counting_sink sink;
    std::string line(62, 'x');
    line += "\r\n";
    std::string chunk;
    while (chunk.size() < 64 * 1024) chunk += line;
    const std::size_t chunks = 50 * 16;  // 50 MiB
    // No assertion inside the measured loop: CppUnit's macros allocate.
    bool all_consumed = true;
    const std::size_t before = allocations.load();
    for (std::size_t i = 0; i < chunks; ++i) {
      const auto step = reader.feed(chunk, sink);
      all_consumed = all_consumed && !step.complete && step.consumed == chunk.size();
    }
    const auto step = reader.feed(".\r\nQUIT\r\n", sink);
    const std::size_t allocated = allocations.load() - before;
    CPPUNIT_ASSERT(all_consumed);
    CPPUNIT_ASSERT_EQUAL(std::size_t(0), allocated);  // streaming, no heap use
    CPPUNIT_ASSERT(step.complete);
    CPPUNIT_ASSERT_EQUAL(std::size_t(3), step.consumed);
    const auto result = reader.result();
    CPPUNIT_ASSERT(result.status == data_status::too_big);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(chunks * chunk.size()), result.octets);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(chunks * 1024), result.lines);
    CPPUNIT_ASSERT(sink.bytes <= limits.max_message_size);
    CPPUNIT_ASSERT(sizeof(data_reader) < 8192);  // all of the reader's memory
  }
  void several_failures_report_the_most_serious() {
    data_limits limits{.max_message_size = 4, .max_line_length = 5};
    auto o = whole("toolongline\r\nx\ny\r\n.\r\n", limits);
    CPPUNIT_ASSERT(o.result.status == data_status::bare_lf);
    CPPUNIT_ASSERT(o.result.over_size && o.result.over_line_length);
    o = whole("toolongline\r\n.\r\n", limits);
    CPPUNIT_ASSERT(o.result.status == data_status::too_big);
  }
  void counts_octets_and_lines() {
    auto o = whole("a\r\nbb\r\n\r\n..c\r\n.\r\n");
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(4), o.result.lines);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(o.output.size()), o.result.octets);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(13), o.result.octets);
  }
  void reset_reads_the_next_body() {
    data_reader r;
    string_sink sink;
    CPPUNIT_ASSERT(r.feed("a\nb\r\n.\r\n", sink).complete);
    CPPUNIT_ASSERT(r.result().status == data_status::bare_lf);
    r.reset();
    sink.data.clear();
    CPPUNIT_ASSERT(r.feed("c\r\n.\r\n", sink).complete);
    CPPUNIT_ASSERT(r.result().status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("c\r\n"), sink.data);
  }

  void bdat_crlf_split_across_chunks_is_one_newline() {
    bdat_filter f;
    string_sink sink;
    f.feed("a\r", sink);
    f.feed("\nb", sink);
    const auto r = f.finish(sink);
    CPPUNIT_ASSERT(r.status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb"), sink.data);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), r.lines);
  }
  void bdat_bare_cr_at_message_end_is_bare_cr() {
    bdat_filter f;
    string_sink sink;
    f.feed("a\r", sink);
    f.feed("", sink);
    CPPUNIT_ASSERT(f.finish(sink).status == data_status::bare_cr);
    bdat_filter n(normalize_limits);
    string_sink nsink;
    n.feed("a\r", nsink);
    CPPUNIT_ASSERT(n.finish(nsink).status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n"), nsink.data);
  }
  void bdat_bare_lf_rejected_or_normalized() {
    bdat_filter f;
    string_sink sink;
    f.feed("a\n.\nb\r\n", sink);
    CPPUNIT_ASSERT(f.finish(sink).status == data_status::bare_lf);
    bdat_filter n(normalize_limits);
    string_sink nsink;
    n.feed("a\n.\nb\r\n", nsink);
    CPPUNIT_ASSERT(n.finish(nsink).status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("a\r\n.\r\nb\r\n"), nsink.data);
  }
  void bdat_does_no_dot_unstuffing() {
    bdat_filter f;
    string_sink sink;
    f.feed("..x\r\n.\r\n", sink);
    CPPUNIT_ASSERT(f.finish(sink).status == data_status::ok);
    CPPUNIT_ASSERT_EQUAL(std::string("..x\r\n.\r\n"), sink.data);
  }
  void bdat_binary_passes_newlines_untouched() {
    bdat_filter f(data_limits{.max_line_length = 2}, true);
    string_sink sink;
    const char raw[] = "\x00\r\n\n\r\xff long line without end";
    const std::string bytes(raw, sizeof raw - 1);
    f.feed(bytes, sink);
    const auto r = f.finish(sink);
    CPPUNIT_ASSERT(r.status == data_status::ok);
    CPPUNIT_ASSERT(sink.data == bytes);
  }
  void bdat_same_at_every_chunk_split() {
    const std::string in = "a\r\nb\rc\nd\r\r\n\n\re\r";
    for (auto limits : {reject_limits, normalize_limits}) {
      bdat_filter whole_filter(limits);
      string_sink whole_sink;
      whole_filter.feed(in, whole_sink);
      const auto expected = whole_filter.finish(whole_sink);
      for (std::size_t c = 0; c <= in.size(); ++c) {
        bdat_filter f(limits);
        string_sink sink;
        for (auto piece : cut(in, {c})) f.feed(piece, sink);
        const auto r = f.finish(sink);
        CPPUNIT_ASSERT(r.status == expected.status);
        CPPUNIT_ASSERT_EQUAL(expected.lines, r.lines);
        CPPUNIT_ASSERT_EQUAL(expected.octets, r.octets);
        if (r.status == data_status::ok) CPPUNIT_ASSERT_EQUAL(whole_sink.data, sink.data);
      }
    }
  }
  void bdat_line_length_counts_across_chunks() {
    bdat_filter f(data_limits{.max_line_length = 10});
    string_sink sink;
    f.feed("12345", sink);
    f.feed("6789\r", sink);
    f.feed("\n", sink);
    CPPUNIT_ASSERT(f.finish(sink).status == data_status::line_too_long);
    bdat_filter g(data_limits{.max_line_length = 10});
    g.feed("12345", sink);
    g.feed("678\r", sink);
    g.feed("\n", sink);
    CPPUNIT_ASSERT(g.finish(sink).status == data_status::ok);
  }
  void bdat_size_limit_counts_across_chunks() {
    bdat_filter f(data_limits{.max_message_size = 8});
    counting_sink sink;
    f.feed("1234", sink);
    f.feed("5678", sink);
    CPPUNIT_ASSERT(f.result().status == data_status::ok);
    f.feed("9", sink);
    const auto r = f.finish(sink);
    CPPUNIT_ASSERT(r.status == data_status::too_big);
    CPPUNIT_ASSERT(sink.bytes <= 8);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(9), r.octets);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(data_reader_test);

}  // namespace
}  // namespace hamail::smtp

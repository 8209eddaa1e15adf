// A whole pipelined SMTP conversation (commands, DATA and BDAT bodies) driven
// through the parsers the way a session drives them, at every split point.

#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <string>
#include <vector>

#include "hamail/protocol/smtp/command_parser.hpp"
#include "hamail/protocol/smtp/data_reader.hpp"
#include "smtp_test_support.hpp"

namespace hamail::smtp {
namespace {

// The input side of a session: switches between command lines, DATA bodies
// and BDAT chunks, keeping unconsumed octets as a session's buffer would.
class mini_session {
 public:
  explicit mini_session(data_limits limits) : data_(limits), bdat_(limits) {}

  void feed(std::string_view piece) {
    pending_.append(piece);
    std::string_view view = pending_;
    while (!view.empty()) {
      if (mode_ == mode::commands) {
        const auto step = parser_.feed(view);
        CPPUNIT_ASSERT(step.consumed <= view.size());
        view.remove_prefix(step.consumed);
        if (step.status == parse_status::need_more) break;
        transcript_.push_back(test::render(step));
        if (step.cmd) on_command(*step.cmd);
      } else if (mode_ == mode::data) {
        const auto step = data_.feed(view, sink_);
        CPPUNIT_ASSERT(step.consumed <= view.size());
        view.remove_prefix(step.consumed);
        if (!step.complete) break;
        const auto r = data_.result();
        transcript_.push_back("data:" + std::string(to_string(r.status)) + ":" +
                              std::to_string(r.octets) + ":" +
                              (r.status == data_status::ok ? sink_.data : std::string("-")));
        sink_.data.clear();
        mode_ = mode::commands;
      } else {
        const auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, view.size()));
        bdat_.feed(view.substr(0, take), sink_);
        view.remove_prefix(take);
        chunk_left_ -= take;
        if (chunk_left_ == 0) end_chunk();
      }
    }
    pending_.assign(view);
  }

  const std::vector<std::string>& transcript() const { return transcript_; }

 private:
  enum class mode { commands, data, bdat };

  void on_command(const command& cmd) {
    if (std::holds_alternative<data_command>(cmd)) {
      data_.reset();
      sink_.data.clear();
      mode_ = mode::data;
    } else if (const auto* b = std::get_if<bdat_command>(&cmd)) {
      chunk_left_ = b->size;
      last_ = b->last;
      mode_ = mode::bdat;
      if (chunk_left_ == 0) end_chunk();
    }
  }

  void end_chunk() {
    mode_ = mode::commands;
    if (!last_) {
      transcript_.push_back("chunk");
      return;
    }
    const auto r = bdat_.finish(sink_);
    transcript_.push_back("bdat:" + std::string(to_string(r.status)) + ":" +
                          std::to_string(r.octets) + ":" +
                          (r.status == data_status::ok ? sink_.data : std::string("-")));
    bdat_.reset();
    sink_.data.clear();
  }

  command_parser parser_;
  data_reader data_;
  bdat_filter bdat_;
  test::string_sink sink_;
  mode mode_ = mode::commands;
  std::uint64_t chunk_left_ = 0;
  bool last_ = false;
  std::string pending_;
  std::vector<std::string> transcript_;
};

std::vector<std::string> run(const std::vector<std::string_view>& pieces, data_limits limits) {
  mini_session s(limits);
  for (auto p : pieces) s.feed(p);
  return s.transcript();
}

const std::string conversation =
    "EHLO client.example\r\n"
    "MAIL FROM:<a@example.org> BODY=8BITMIME\r\n"
    "RCPT TO:<b@example.net>\r\n"
    "DATA\r\n"
    "Subject: test\r\n"
    "\r\n"
    "..leading dot\r\n"
    "QUIT\r\n"
    ".\r\n"
    "MAIL FROM:<a@example.org>\r\n"
    "RCPT TO:<b@example.net>\r\n"
    "DATA\r\n"
    "x\n.\nRSET\r\n"
    ".\r\n"
    "MAIL FROM:<a@example.org>\r\n"
    "RCPT TO:<b@example.net>\r\n"
    "BDAT 12\r\n"
    "ab\r\n.\r\nQUIT\r"
    "BDAT 3 LAST\r\n"
    "\nz\n"
    "BDAT 0 LAST\r\n"
    "QUIT\r\n";

class pipeline_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(pipeline_test);
  CPPUNIT_TEST(conversation_gives_expected_transcript);
  CPPUNIT_TEST(conversation_same_at_every_split_point);
  CPPUNIT_TEST(conversation_same_fed_byte_by_byte);
  CPPUNIT_TEST_SUITE_END();

 public:
  void conversation_gives_expected_transcript() {
    const std::vector<std::string> reject = {
        "cmd:EHLO client.example",
        "cmd:MAIL FROM:<a@example.org> BODY=8BITMIME",
        "cmd:RCPT TO:<b@example.net>",
        "cmd:DATA",
        "data:ok:37:Subject: test\r\n\r\n.leading dot\r\nQUIT\r\n",
        "cmd:MAIL FROM:<a@example.org>",
        "cmd:RCPT TO:<b@example.net>",
        "cmd:DATA",
        "data:bare_lf:10:-",
        "cmd:MAIL FROM:<a@example.org>",
        "cmd:RCPT TO:<b@example.net>",
        "cmd:BDAT 12",
        "chunk",
        "cmd:BDAT 3 LAST",
        "bdat:bare_lf:15:-",
        "cmd:BDAT 0 LAST",
        "bdat:ok:0:",
        "cmd:QUIT",
    };
    const auto got = run({conversation}, {});
    for (std::size_t i = 0; i < std::max(got.size(), reject.size()); ++i) {
      CPPUNIT_ASSERT_EQUAL_MESSAGE("line " + std::to_string(i), i < reject.size() ? reject[i] : "",
                                   i < got.size() ? got[i] : "");
    }

    auto normalized = reject;
    normalized[8] = "data:ok:12:x\r\n.\r\nRSET\r\n";
    // The CR ending chunk one and the LF opening chunk two are one CRLF.
    normalized[14] = "bdat:ok:16:ab\r\n.\r\nQUIT\r\nz\r\n";
    const auto got_normalized =
        run({conversation}, data_limits{.bare_newlines = bare_newline_policy::normalize});
    CPPUNIT_ASSERT_EQUAL(normalized.size(), got_normalized.size());
    for (std::size_t i = 0; i < normalized.size(); ++i) {
      CPPUNIT_ASSERT_EQUAL_MESSAGE("line " + std::to_string(i), normalized[i], got_normalized[i]);
    }
  }
  void conversation_same_at_every_split_point() {
    for (auto limits :
         {data_limits{}, data_limits{.bare_newlines = bare_newline_policy::normalize}}) {
      const auto expected = run({conversation}, limits);
      for (std::size_t c = 0; c <= conversation.size(); ++c) {
        CPPUNIT_ASSERT_MESSAGE("split at " + std::to_string(c),
                               run(test::cut(conversation, {c}), limits) == expected);
      }
    }
  }
  void conversation_same_fed_byte_by_byte() {
    std::vector<std::size_t> every;
    for (std::size_t c = 1; c < conversation.size(); ++c) every.push_back(c);
    for (auto limits :
         {data_limits{}, data_limits{.bare_newlines = bare_newline_policy::normalize}}) {
      CPPUNIT_ASSERT(run(test::cut(conversation, every), limits) == run({conversation}, limits));
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(pipeline_test);

}  // namespace
}  // namespace hamail::smtp

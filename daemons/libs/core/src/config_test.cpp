#include "hamail/core/config.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using namespace std::chrono_literals;
using hamail::config::document;
using hamail::config::problem;
using hamail::config::section;

/// A fresh directory under /tmp, removed with its contents on destruction.
class scratch_dir {
 public:
  scratch_dir() {
    char name[] = "/tmp/hamail-config-test-XXXXXX";
    if (::mkdtemp(name) == nullptr) std::abort();
    path_ = name;
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    std::ofstream(p) << text;
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

document parsed(const std::string& text, const std::string& file = "test.toml") {
  auto doc = document::parse(text, file);
  if (!doc) CPPUNIT_FAIL("unexpected parse failure: " + doc.err().detail);
  return std::move(doc).value();
}

/// The only problem recorded for `key`; fails the test unless there is exactly one.
const problem& only_problem(const document& doc, const std::string& key) {
  const problem* found = nullptr;
  for (const auto& p : doc.problems()) {
    if (p.key == key) {
      if (found != nullptr) CPPUNIT_FAIL("two problems for " + key + ":\n" + doc.report());
      found = &p;
    }
  }
  if (found == nullptr) CPPUNIT_FAIL("no problem for " + key + "; got:\n" + doc.report());
  return *found;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class config_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(config_test);
  CPPUNIT_TEST(well_typed_values_are_read_without_problems);
  CPPUNIT_TEST(absent_keys_give_defaults_without_problems);
  CPPUNIT_TEST(bad_type_names_file_key_and_line);
  CPPUNIT_TEST(bad_type_for_every_getter_gives_default);
  CPPUNIT_TEST(unknown_key_names_file_and_line);
  CPPUNIT_TEST(unknown_key_close_to_a_known_key_gets_a_hint);
  CPPUNIT_TEST(unknown_key_far_from_every_known_key_has_no_hint);
  CPPUNIT_TEST(unknown_table_reported_once_with_hint);
  CPPUNIT_TEST(unknown_key_inside_array_of_tables_names_index);
  CPPUNIT_TEST(finish_twice_reports_each_unknown_key_once);
  CPPUNIT_TEST(has_does_not_mark_a_key_read);
  CPPUNIT_TEST(missing_file_is_config_error_naming_path);
  CPPUNIT_TEST(directory_instead_of_file_is_config_error);
  CPPUNIT_TEST(load_file_reads_file_and_names_it_in_problems);
  CPPUNIT_TEST(syntax_error_reports_file_and_line);
  CPPUNIT_TEST(syntax_error_detail_stays_on_one_line);
  CPPUNIT_TEST(duplicate_key_is_a_syntax_error);
  CPPUNIT_TEST(missing_required_key_names_section_line);
  CPPUNIT_TEST(empty_required_string_rejected);
  CPPUNIT_TEST(integer_out_of_range_names_bounds);
  CPPUNIT_TEST(durations_accept_every_unit_and_bare_seconds);
  CPPUNIT_TEST(bad_duration_rejected_with_expected_form);
  CPPUNIT_TEST(negative_duration_rejected);
  CPPUNIT_TEST(overflowing_duration_rejected);
  CPPUNIT_TEST(sizes_accept_binary_multiples);
  CPPUNIT_TEST(bad_size_rejected_with_expected_form);
  CPPUNIT_TEST(bad_enum_lists_allowed_values);
  CPPUNIT_TEST(string_list_reports_bad_element_by_index);
  CPPUNIT_TEST(nested_table_paths_are_dotted);
  CPPUNIT_TEST(array_of_tables_paths_are_indexed);
  CPPUNIT_TEST(single_table_where_array_of_tables_expected_rejected);
  CPPUNIT_TEST(scalar_where_table_expected_rejected);
  CPPUNIT_TEST(add_problem_locates_key_line);
  CPPUNIT_TEST(quoted_keys_keep_their_quotes_in_paths);
  CPPUNIT_TEST(control_characters_in_values_are_escaped_in_reasons);
  CPPUNIT_TEST(problem_text_is_file_line_key_reason);
  CPPUNIT_TEST(report_lists_every_problem_by_line);
  CPPUNIT_TEST(sections_stay_valid_after_document_moves);
  CPPUNIT_TEST_SUITE_END();

 public:
  void well_typed_values_are_read_without_problems() {
    auto doc = parsed(R"(
name = "x"
count = 7
on = true
wait = "250ms"
size = "4k"
list = ["a", "b"]
mode = "fast"
)");
    auto root = doc.root();
    CPPUNIT_ASSERT_EQUAL(std::string("x"), root.get_string("name"));
    CPPUNIT_ASSERT_EQUAL(std::int64_t{7}, root.get_integer("count", 0, 0, 10));
    CPPUNIT_ASSERT(root.get_bool("on", false));
    CPPUNIT_ASSERT(root.get_duration("wait", 0ms) == 250ms);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4096}, root.get_size("size", 0));
    CPPUNIT_ASSERT(root.get_string_list("list") == (std::vector<std::string>{"a", "b"}));
    CPPUNIT_ASSERT_EQUAL(std::string("fast"), root.get_enum("mode", {"slow", "fast"}, "slow"));
    doc.finish();
    CPPUNIT_ASSERT_MESSAGE(doc.report(), doc.ok());
  }

  void absent_keys_give_defaults_without_problems() {
    auto doc = parsed("");
    auto root = doc.root();
    CPPUNIT_ASSERT_EQUAL(std::string("d"), root.get_string("name", "d"));
    CPPUNIT_ASSERT_EQUAL(std::int64_t{-3}, root.get_integer("count", -3, 0, 10));
    CPPUNIT_ASSERT(root.get_bool("on", true));
    CPPUNIT_ASSERT(root.get_duration("wait", 5s) == 5s);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{9}, root.get_size("size", 9));
    CPPUNIT_ASSERT(root.get_string_list("list").empty());
    CPPUNIT_ASSERT_EQUAL(std::string("slow"), root.get_enum("mode", {"slow", "fast"}, "slow"));
    CPPUNIT_ASSERT(!root.table("t").has_value());
    CPPUNIT_ASSERT(root.tables("ts").empty());
    doc.finish();
    CPPUNIT_ASSERT_MESSAGE(doc.report(), doc.ok());
  }

  void bad_type_names_file_key_and_line() {
    auto doc = parsed(
        "[limits]\n"
        "\n"
        "max_connections = \"many\"\n",
        "/etc/hamail/backend.toml");
    auto limits = doc.root().table("limits");
    CPPUNIT_ASSERT(limits);
    CPPUNIT_ASSERT_EQUAL(std::int64_t{5000},
                         limits->get_integer("max_connections", 5000, 1, 100000));
    const auto& p = only_problem(doc, "limits.max_connections");
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/hamail/backend.toml"), p.file);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{3}, p.line);
    CPPUNIT_ASSERT_EQUAL(std::string("expected an integer, found a string"), p.reason);
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/hamail/backend.toml:3: limits.max_connections: expected "
                                     "an integer, found a string"),
                         p.to_string());
  }

  void bad_type_for_every_getter_gives_default() {
    auto doc = parsed(R"(
s = 1
i = 1.5
b = "yes"
d = true
z = [1]
l = "a"
e = 3
t = 4
ts = 5
)");
    auto root = doc.root();
    CPPUNIT_ASSERT_EQUAL(std::string("def"), root.get_string("s", "def"));
    CPPUNIT_ASSERT_EQUAL(std::int64_t{2}, root.get_integer("i", 2));
    CPPUNIT_ASSERT(!root.get_bool("b", false));
    CPPUNIT_ASSERT(root.get_duration("d", 1s) == 1s);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1}, root.get_size("z", 1));
    CPPUNIT_ASSERT(root.get_string_list("l").empty());
    CPPUNIT_ASSERT_EQUAL(std::string("x"), root.get_enum("e", {"x", "y"}, "x"));
    CPPUNIT_ASSERT(!root.table("t"));
    CPPUNIT_ASSERT(root.tables("ts").empty());
    CPPUNIT_ASSERT_EQUAL(std::size_t{9}, doc.problems().size());
    CPPUNIT_ASSERT(contains(only_problem(doc, "s").reason, "expected a string, found an integer"));
    CPPUNIT_ASSERT(contains(only_problem(doc, "i").reason,
                            "expected an integer, found a floating-point number"));
    CPPUNIT_ASSERT(contains(only_problem(doc, "b").reason, "expected a boolean"));
    CPPUNIT_ASSERT(contains(only_problem(doc, "d").reason, "expected a duration, found a boolean"));
    CPPUNIT_ASSERT(contains(only_problem(doc, "z").reason, "expected a size, found an array"));
    CPPUNIT_ASSERT(
        contains(only_problem(doc, "l").reason, "expected an array of strings, found a string"));
    CPPUNIT_ASSERT(
        contains(only_problem(doc, "e").reason, "expected one of x, y, found an integer"));
    CPPUNIT_ASSERT(contains(only_problem(doc, "t").reason, "expected a table"));
    CPPUNIT_ASSERT(contains(only_problem(doc, "ts").reason, "expected an array of tables"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{10}, only_problem(doc, "ts").line);
    doc.finish();  // wrong-typed keys were read: no extra "unknown key"
    CPPUNIT_ASSERT_EQUAL(std::size_t{9}, doc.problems().size());
  }

  void unknown_key_names_file_and_line() {
    auto doc = parsed(
        "[log]\n"
        "level = \"info\"\n"
        "colour = true\n",
        "proxy.toml");
    auto log = doc.root().table("log");
    CPPUNIT_ASSERT_EQUAL(std::string("info"), log->get_string("level"));
    CPPUNIT_ASSERT(doc.ok());
    doc.finish();
    const auto& p = only_problem(doc, "log.colour");
    CPPUNIT_ASSERT_EQUAL(std::string("proxy.toml"), p.file);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{3}, p.line);
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key"), p.reason);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, doc.problems().size());
  }

  void unknown_key_close_to_a_known_key_gets_a_hint() {
    auto doc = parsed(
        "[limits]\n"
        "idle_timout = \"5m\"\n"
        "max_conections = 10\n"
        "drian_timeout = \"1s\"\n");
    auto limits = doc.root().table("limits");
    CPPUNIT_ASSERT(limits->get_duration("idle_timeout", 30min) == 30min);
    (void)limits->get_integer("max_connections", 5000);
    (void)limits->get_duration("drain_timeout", 30s);
    doc.finish();
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, doc.problems().size());
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key; did you mean 'idle_timeout'?"),
                         only_problem(doc, "limits.idle_timout").reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, only_problem(doc, "limits.idle_timout").line);
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key; did you mean 'max_connections'?"),
                         only_problem(doc, "limits.max_conections").reason);
    // An adjacent swap counts as one edit.
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key; did you mean 'drain_timeout'?"),
                         only_problem(doc, "limits.drian_timeout").reason);
  }

  void unknown_key_far_from_every_known_key_has_no_hint() {
    auto doc = parsed("port = 1\nbanner = \"hi\"\nab = 2\n");
    auto root = doc.root();
    (void)root.get_integer("port", 0);
    (void)root.get_string("hostname");
    (void)root.get_string("xy");
    doc.finish();
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key"), only_problem(doc, "banner").reason);
    // Two edits turn "ab" into "xy", but that is the whole key: no hint.
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key"), only_problem(doc, "ab").reason);
  }

  void unknown_table_reported_once_with_hint() {
    auto doc = parsed(
        "[tsl]\n"
        "cert = \"/x\"\n"
        "key = \"/y\"\n");
    CPPUNIT_ASSERT(!doc.root().table("tls"));
    doc.finish();
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, doc.problems().size());
    const auto& p = only_problem(doc, "tsl");
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, p.line);
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key; did you mean 'tls'?"), p.reason);
  }

  void unknown_key_inside_array_of_tables_names_index() {
    auto doc = parsed(
        "[[listener]]\n"
        "port = 25\n"
        "[[listener]]\n"
        "port = 587\n"
        "prot = 1\n");
    for (auto& l : doc.root().tables("listener")) (void)l.get_integer("port", 0, 0, 65535);
    doc.finish();
    const auto& p = only_problem(doc, "listener[1].prot");
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{5}, p.line);
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, doc.problems().size());
  }

  void finish_twice_reports_each_unknown_key_once() {
    auto doc = parsed("a = 1\nb = 2\n");
    (void)doc.root().get_integer("a", 0);
    doc.finish();
    doc.finish();
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, doc.problems().size());
    CPPUNIT_ASSERT_EQUAL(std::string("b"), doc.problems()[0].key);
  }

  void has_does_not_mark_a_key_read() {
    auto doc = parsed("a = 1\n");
    CPPUNIT_ASSERT(doc.root().has("a"));
    CPPUNIT_ASSERT(!doc.root().has("b"));
    doc.finish();
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key"), only_problem(doc, "a").reason);
  }

  void missing_file_is_config_error_naming_path() {
    scratch_dir dir;
    const auto path = dir.path() / "absent.toml";
    auto doc = document::load_file(path);
    CPPUNIT_ASSERT(!doc);
    CPPUNIT_ASSERT(doc.err().code == hamail::errc::config_error);
    CPPUNIT_ASSERT(doc.err().is_permanent());
    CPPUNIT_ASSERT_EQUAL(path.string() + ": cannot open: No such file or directory",
                         doc.err().detail);
  }

  void directory_instead_of_file_is_config_error() {
    scratch_dir dir;
    auto doc = document::load_file(dir.path());
    CPPUNIT_ASSERT(!doc);
    CPPUNIT_ASSERT(doc.err().code == hamail::errc::config_error);
    CPPUNIT_ASSERT_EQUAL(dir.path().string() + ": is a directory, not a file", doc.err().detail);
  }

  void load_file_reads_file_and_names_it_in_problems() {
    scratch_dir dir;
    const auto path = dir.write("backend.toml", "# hamail\n[limits]\nmax_connections = 0\n");
    auto doc = document::load_file(path);
    CPPUNIT_ASSERT_MESSAGE(doc ? "" : doc.err().detail, doc.has_value());
    (void)doc->root().table("limits")->get_integer("max_connections", 5000, 1, 100);
    CPPUNIT_ASSERT_EQUAL(
        path.string() + ":3: limits.max_connections: 0 is out of range: must be between 1 and 100",
        only_problem(*doc, "limits.max_connections").to_string());
  }

  void syntax_error_reports_file_and_line() {
    auto doc = document::parse("[log]\nlevel = \"info\"\nstderr = tru\n", "backend.toml");
    CPPUNIT_ASSERT(!doc);
    CPPUNIT_ASSERT(doc.err().code == hamail::errc::config_error);
    const auto& detail = doc.err().detail;
    CPPUNIT_ASSERT_MESSAGE(detail, detail.rfind("backend.toml:3: TOML syntax error", 0) == 0);

    scratch_dir dir;
    const auto path = dir.write("broken.toml", "a = 1\n\n[[listener]\n");
    auto from_file = document::load_file(path);
    CPPUNIT_ASSERT(!from_file);
    CPPUNIT_ASSERT_MESSAGE(
        from_file.err().detail,
        from_file.err().detail.rfind(path.string() + ":3: TOML syntax error", 0) == 0);
  }

  void syntax_error_detail_stays_on_one_line() {
    // toml++ quotes the offending text, newline included.
    auto doc = document::parse("stderr = tru\n", "backend.toml");
    CPPUNIT_ASSERT(!doc);
    const auto& detail = doc.err().detail;
    CPPUNIT_ASSERT_MESSAGE(detail, detail.find('\n') == std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(detail, contains(detail, "\\n"));
  }

  void duplicate_key_is_a_syntax_error() {
    auto doc = document::parse("a = 1\na = 2\n", "dup.toml");
    CPPUNIT_ASSERT(!doc);
    CPPUNIT_ASSERT_MESSAGE(doc.err().detail, doc.err().detail.rfind("dup.toml:2: ", 0) == 0);
  }

  void missing_required_key_names_section_line() {
    auto doc = parsed(
        "# comment\n"
        "[tls]\n"
        "chain = \"\"\n");
    auto tls = doc.root().table("tls");
    CPPUNIT_ASSERT_EQUAL(std::string(), tls->require_string("cert"));
    const auto& p = only_problem(doc, "tls.cert");
    CPPUNIT_ASSERT_EQUAL(std::string("missing required key"), p.reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, p.line);

    auto top = parsed("");
    (void)top.root().require_string("store");
    CPPUNIT_ASSERT_EQUAL(std::string("test.toml: store: missing required key"),
                         only_problem(top, "store").to_string());
  }

  void empty_required_string_rejected() {
    auto doc = parsed("address = \"\"\n");
    CPPUNIT_ASSERT_EQUAL(std::string(), doc.root().require_string("address"));
    CPPUNIT_ASSERT_EQUAL(std::string("must not be empty"), only_problem(doc, "address").reason);
  }

  void integer_out_of_range_names_bounds() {
    auto doc = parsed("port = 70000\nlow = -1\nhigh = 11\n");
    auto root = doc.root();
    CPPUNIT_ASSERT_EQUAL(std::int64_t{25}, root.get_integer("port", 25, 0, 65535));
    CPPUNIT_ASSERT_EQUAL(std::int64_t{1}, root.get_integer("low", 1, 0));
    CPPUNIT_ASSERT_EQUAL(std::int64_t{1},
                         root.get_integer("high", 1, std::numeric_limits<std::int64_t>::min(), 10));
    CPPUNIT_ASSERT_EQUAL(std::string("70000 is out of range: must be between 0 and 65535"),
                         only_problem(doc, "port").reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, only_problem(doc, "port").line);
    CPPUNIT_ASSERT_EQUAL(std::string("-1 is out of range: must be at least 0"),
                         only_problem(doc, "low").reason);
    CPPUNIT_ASSERT_EQUAL(std::string("11 is out of range: must be at most 10"),
                         only_problem(doc, "high").reason);
  }

  void durations_accept_every_unit_and_bare_seconds() {
    auto doc = parsed(R"(
a = "250ms"
b = "30s"
c = "5m"
d = "2h"
e = "1d"
f = 45
g = "12"
h = 0
)");
    auto root = doc.root();
    CPPUNIT_ASSERT(root.get_duration("a", 0ms) == 250ms);
    CPPUNIT_ASSERT(root.get_duration("b", 0ms) == 30s);
    CPPUNIT_ASSERT(root.get_duration("c", 0ms) == 5min);
    CPPUNIT_ASSERT(root.get_duration("d", 0ms) == 2h);
    CPPUNIT_ASSERT(root.get_duration("e", 0ms) == 24h);
    CPPUNIT_ASSERT(root.get_duration("f", 0ms) == 45s);
    CPPUNIT_ASSERT(root.get_duration("g", 0ms) == 12s);
    CPPUNIT_ASSERT(root.get_duration("h", 7ms) == 0ms);
    CPPUNIT_ASSERT_MESSAGE(doc.report(), doc.ok());
  }

  void bad_duration_rejected_with_expected_form() {
    auto doc = parsed(R"(
a = "30x"
b = "1.5h"
c = ""
d = "s"
e = "30 s"
f = "5M"
)");
    auto root = doc.root();
    for (const char* key : {"a", "b", "c", "d", "e", "f"}) {
      CPPUNIT_ASSERT(root.get_duration(key, 9s) == 9s);
      const auto& p = only_problem(doc, key);
      CPPUNIT_ASSERT_MESSAGE(p.reason, p.reason.rfind("bad duration \"", 0) == 0);
      CPPUNIT_ASSERT_MESSAGE(p.reason, contains(p.reason, "ms, s, m, h or d"));
    }
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, only_problem(doc, "a").line);
    CPPUNIT_ASSERT_EQUAL(std::size_t{6}, doc.problems().size());
  }

  void negative_duration_rejected() {
    auto doc = parsed("a = \"-5s\"\nb = -5\n");
    auto root = doc.root();
    CPPUNIT_ASSERT(root.get_duration("a", 1s) == 1s);
    CPPUNIT_ASSERT(root.get_duration("b", 1s) == 1s);
    CPPUNIT_ASSERT_EQUAL(std::string("negative duration \"-5s\" is not allowed"),
                         only_problem(doc, "a").reason);
    CPPUNIT_ASSERT_EQUAL(std::string("negative duration -5 is not allowed"),
                         only_problem(doc, "b").reason);
  }

  void overflowing_duration_rejected() {
    auto doc = parsed(
        "a = \"99999999999999999999d\"\nb = \"9999999999999999d\"\nc = 9223372036854775807\n");
    auto root = doc.root();
    CPPUNIT_ASSERT(root.get_duration("a", 1s) == 1s);
    CPPUNIT_ASSERT(root.get_duration("b", 1s) == 1s);
    CPPUNIT_ASSERT(root.get_duration("c", 1s) == 1s);
    CPPUNIT_ASSERT_EQUAL(std::size_t{3}, doc.problems().size());
    CPPUNIT_ASSERT(contains(only_problem(doc, "b").reason, "too large"));
    CPPUNIT_ASSERT(contains(only_problem(doc, "c").reason, "too large"));
  }

  void sizes_accept_binary_multiples() {
    auto doc = parsed(R"(
a = "512"
b = "4k"
c = "4KiB"
d = "10M"
e = "10MiB"
f = "1G"
g = "1GiB"
h = 12345
i = "2T"
j = "7B"
k = "4K"
)");
    auto root = doc.root();
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{512}, root.get_size("a", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4096}, root.get_size("b", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4096}, root.get_size("c", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{10} << 20, root.get_size("d", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{10} << 20, root.get_size("e", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1} << 30, root.get_size("f", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1} << 30, root.get_size("g", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{12345}, root.get_size("h", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2} << 40, root.get_size("i", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{7}, root.get_size("j", 0));
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{4096}, root.get_size("k", 0));
    CPPUNIT_ASSERT_MESSAGE(doc.report(), doc.ok());
  }

  void bad_size_rejected_with_expected_form() {
    auto doc = parsed(R"(
a = "10X"
b = "1.5G"
c = "KiB"
d = "-4k"
e = -1
f = "99999999999G"
g = "10KB"
)");
    auto root = doc.root();
    for (const char* key : {"a", "b", "c", "d", "e", "f", "g"})
      CPPUNIT_ASSERT_EQUAL(std::uint64_t{77}, root.get_size(key, 77));
    CPPUNIT_ASSERT_EQUAL(std::size_t{7}, doc.problems().size());
    for (const char* key : {"a", "b", "c", "g"}) {
      const auto& p = only_problem(doc, key);
      CPPUNIT_ASSERT_MESSAGE(p.reason, p.reason.rfind("bad size \"", 0) == 0);
      CPPUNIT_ASSERT_MESSAGE(p.reason, contains(p.reason, "k/KiB, M/MiB, G/GiB"));
    }
    CPPUNIT_ASSERT_EQUAL(std::string("negative size \"-4k\" is not allowed"),
                         only_problem(doc, "d").reason);
    CPPUNIT_ASSERT_EQUAL(std::string("negative size -1 is not allowed"),
                         only_problem(doc, "e").reason);
    CPPUNIT_ASSERT(contains(only_problem(doc, "f").reason, "too large"));
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, only_problem(doc, "a").line);
  }

  void bad_enum_lists_allowed_values() {
    auto doc = parsed("[log]\nlevel = \"verbose\"\n");
    auto log = doc.root().table("log");
    CPPUNIT_ASSERT_EQUAL(
        std::string("info"),
        log->get_enum("level", {"debug", "info", "notice", "warning", "error", "critical"},
                      "info"));
    const auto& p = only_problem(doc, "log.level");
    CPPUNIT_ASSERT_EQUAL(
        std::string("\"verbose\" is not one of: debug, info, notice, warning, error, critical"),
        p.reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, p.line);
  }

  void string_list_reports_bad_element_by_index() {
    auto doc = parsed("[auth]\nmechanisms = [\"PLAIN\",\n  2,\n  \"LOGIN\"]\n");
    auto auth = doc.root().table("auth");
    CPPUNIT_ASSERT(auth->get_string_list("mechanisms") ==
                   (std::vector<std::string>{"PLAIN", "LOGIN"}));
    const auto& p = only_problem(doc, "auth.mechanisms[1]");
    CPPUNIT_ASSERT_EQUAL(std::string("expected a string, found an integer"), p.reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{3}, p.line);
  }

  void nested_table_paths_are_dotted() {
    auto doc = parsed(
        "[store.index]\n"
        "cache = \"lots\"\n"
        "stray = 1\n");
    auto store = doc.root().table("store");
    CPPUNIT_ASSERT(store);
    CPPUNIT_ASSERT_EQUAL(std::string("store"), store->path());
    auto index = store->table("index");
    CPPUNIT_ASSERT(index);
    CPPUNIT_ASSERT_EQUAL(std::string("store.index"), index->path());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1}, index->get_size("cache", 1));
    doc.finish();
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, only_problem(doc, "store.index.cache").line);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{3}, only_problem(doc, "store.index.stray").line);
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, doc.problems().size());
  }

  void array_of_tables_paths_are_indexed() {
    auto doc = parsed(
        "[[listener]]\n"
        "port = 143\n"
        "\n"
        "[[listener]]\n"
        "port = 99999\n");
    auto listeners = doc.root().tables("listener");
    CPPUNIT_ASSERT_EQUAL(std::size_t{2}, listeners.size());
    CPPUNIT_ASSERT_EQUAL(std::string("listener[0]"), listeners[0].path());
    CPPUNIT_ASSERT_EQUAL(std::string("listener[1]"), listeners[1].path());
    CPPUNIT_ASSERT_EQUAL(std::int64_t{143}, listeners[0].get_integer("port", 0, 0, 65535));
    CPPUNIT_ASSERT_EQUAL(std::int64_t{0}, listeners[1].get_integer("port", 0, 0, 65535));
    const auto& p = only_problem(doc, "listener[1].port");
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{5}, p.line);
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "test.toml:5: listener[1].port: 99999 is out of range: must be between 0 and 65535"),
        p.to_string());
    (void)listeners[1].require_string("address");
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, only_problem(doc, "listener[1].address").line);
  }

  void single_table_where_array_of_tables_expected_rejected() {
    auto doc = parsed("[listener]\nport = 25\n");
    CPPUNIT_ASSERT(doc.root().tables("listener").empty());
    CPPUNIT_ASSERT_EQUAL(
        std::string("expected an array of tables ([[listener]]), found a table ([listener])"),
        only_problem(doc, "listener").reason);
    doc.finish();  // already reported; its keys are not reported again
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, doc.problems().size());

    auto mixed = parsed("listener = [{port = 1}, 2]\n");
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, mixed.root().tables("listener").size());
    CPPUNIT_ASSERT_EQUAL(std::string("expected a table, found an integer"),
                         only_problem(mixed, "listener[1]").reason);
  }

  void scalar_where_table_expected_rejected() {
    auto doc = parsed("log = \"debug\"\n");
    CPPUNIT_ASSERT(!doc.root().table("log"));
    CPPUNIT_ASSERT_EQUAL(std::string("expected a table ([log]), found a string"),
                         only_problem(doc, "log").reason);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, only_problem(doc, "log").line);
  }

  void add_problem_locates_key_line() {
    auto doc = parsed("[limits]\nmax_connections = 10\n\nmax_connections_per_ip = 20\n");
    auto limits = doc.root().table("limits");
    limits->add_problem("max_connections_per_ip", "larger than max_connections");
    limits->add_problem("", "section-wide");
    limits->add_problem("absent", "not there");
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, only_problem(doc, "limits.max_connections_per_ip").line);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, only_problem(doc, "limits").line);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, only_problem(doc, "limits.absent").line);
  }

  void quoted_keys_keep_their_quotes_in_paths() {
    auto doc = parsed("[aliases]\n\"a.b\" = 1\n");
    (void)doc.root().table("aliases");
    doc.finish();
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, only_problem(doc, "aliases.\"a.b\"").line);
  }

  void control_characters_in_values_are_escaped_in_reasons() {
    auto doc = parsed("mode = \"a\\r\\nb\\u001b\\\"\"\n");
    (void)doc.root().get_enum("mode", {"x"}, "x");
    CPPUNIT_ASSERT_EQUAL(std::string("\"a\\r\\nb\\x1b\\\"\" is not one of: x"),
                         only_problem(doc, "mode").reason);
    CPPUNIT_ASSERT_EQUAL(std::string("\"tab\\there\""), hamail::config::quote("tab\there"));
  }

  void problem_text_is_file_line_key_reason() {
    CPPUNIT_ASSERT_EQUAL(std::string("f.toml:7: a.b: bad"),
                         (problem{"f.toml", "a.b", "bad", 7}).to_string());
    CPPUNIT_ASSERT_EQUAL(std::string("f.toml: a.b: bad"),
                         (problem{"f.toml", "a.b", "bad", 0}).to_string());
    CPPUNIT_ASSERT_EQUAL(std::string("f.toml:7: bad"),
                         (problem{"f.toml", "", "bad", 7}).to_string());
  }

  void report_lists_every_problem_by_line() {
    auto doc = parsed("b = 1\na = \"x\"\n");
    auto root = doc.root();
    (void)root.get_string("a");
    (void)root.require_string("missing");
    (void)root.get_string("b");
    doc.finish();
    CPPUNIT_ASSERT(!doc.ok());
    CPPUNIT_ASSERT_EQUAL(std::string("test.toml:1: b: expected a string, found an integer\n"
                                     "test.toml: missing: missing required key\n"),
                         doc.report());
  }

  void sections_stay_valid_after_document_moves() {
    auto doc = parsed("[a]\nx = 1\ny = 2\n");
    auto a = doc.root().table("a");
    document moved = std::move(doc);
    CPPUNIT_ASSERT_EQUAL(std::int64_t{1}, a->get_integer("x", 0));
    CPPUNIT_ASSERT_EQUAL(std::string("a"), a->path());
    moved.finish();
    // The read through the old section counted: only y is unknown.
    CPPUNIT_ASSERT_EQUAL(std::size_t{1}, moved.problems().size());
    CPPUNIT_ASSERT_EQUAL(std::string("unknown key"), only_problem(moved, "a.y").reason);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(config_test);

}  // namespace

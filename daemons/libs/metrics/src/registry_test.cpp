#include "hamail/metrics/registry.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hamail::metrics {
namespace {

using namespace std::chrono_literals;

class registry_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(registry_test);
  CPPUNIT_TEST(openmetrics_text_is_exact);
  CPPUNIT_TEST(prometheus_text_is_exact);
  CPPUNIT_TEST(empty_registry_renders_only_eof);
  CPPUNIT_TEST(label_values_and_help_are_escaped);
  CPPUNIT_TEST(label_values_are_kept_utf8);
  CPPUNIT_TEST(numbers_render_in_prometheus_client_form);
  CPPUNIT_TEST(histogram_buckets_are_cumulative_with_inclusive_bounds);
  CPPUNIT_TEST(histogram_ignores_nan_and_clamps_negative);
  CPPUNIT_TEST(default_buckets_span_100us_to_30s);
  CPPUNIT_TEST(callback_metrics_are_read_at_render);
  CPPUNIT_TEST(invalid_names_are_refused);
  CPPUNIT_TEST(reserved_suffixes_and_clashes_are_refused);
  CPPUNIT_TEST(unit_must_end_the_name);
  CPPUNIT_TEST(bad_bounds_are_refused);
  CPPUNIT_TEST(wrong_label_count_is_refused);
  CPPUNIT_TEST(series_limit_bounds_memory);
  CPPUNIT_TEST(same_labels_give_the_same_series);
  CPPUNIT_TEST(concurrent_updates_are_all_counted);
  CPPUNIT_TEST(accept_header_negotiation);
  CPPUNIT_TEST_SUITE_END();

  // The registry every rendering test uses: one of each kind.
  static void fill(registry& r) {
    auto& logins = r.counters("hamail_proxy_logins", "Logins by result.", {"result"});
    logins.with({"ok"}).inc(3);
    logins.with({"failed"}).inc();
    r.add_gauge("hamail_proxy_sessions", "Open sessions.").set(2);
    auto& h =
        r.add_histogram("hamail_backend_latency_seconds", "Backend latency.", {0.001, 0.01, 0.1});
    h.observe(0.0005);
    h.observe(0.01);
    h.observe(0.5);
  }

 public:
  void openmetrics_text_is_exact() {
    registry r;
    fill(r);
    CPPUNIT_ASSERT_EQUAL(std::string("# HELP hamail_backend_latency_seconds Backend latency.\n"
                                     "# TYPE hamail_backend_latency_seconds histogram\n"
                                     "# UNIT hamail_backend_latency_seconds seconds\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"0.001\"} 1\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"0.01\"} 2\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"0.1\"} 2\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"+Inf\"} 3\n"
                                     "hamail_backend_latency_seconds_count 3\n"
                                     "hamail_backend_latency_seconds_sum 0.5105\n"
                                     "# HELP hamail_proxy_logins Logins by result.\n"
                                     "# TYPE hamail_proxy_logins counter\n"
                                     "hamail_proxy_logins_total{result=\"failed\"} 1\n"
                                     "hamail_proxy_logins_total{result=\"ok\"} 3\n"
                                     "# HELP hamail_proxy_sessions Open sessions.\n"
                                     "# TYPE hamail_proxy_sessions gauge\n"
                                     "hamail_proxy_sessions 2.0\n"
                                     "# EOF\n"),
                         r.render(format::openmetrics));
  }

  void prometheus_text_is_exact() {
    registry r;
    fill(r);
    CPPUNIT_ASSERT_EQUAL(std::string("# HELP hamail_backend_latency_seconds Backend latency.\n"
                                     "# TYPE hamail_backend_latency_seconds histogram\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"0.001\"} 1\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"0.01\"} 2\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"0.1\"} 2\n"
                                     "hamail_backend_latency_seconds_bucket{le=\"+Inf\"} 3\n"
                                     "hamail_backend_latency_seconds_count 3\n"
                                     "hamail_backend_latency_seconds_sum 0.5105\n"
                                     "# HELP hamail_proxy_logins_total Logins by result.\n"
                                     "# TYPE hamail_proxy_logins_total counter\n"
                                     "hamail_proxy_logins_total{result=\"failed\"} 1\n"
                                     "hamail_proxy_logins_total{result=\"ok\"} 3\n"
                                     "# HELP hamail_proxy_sessions Open sessions.\n"
                                     "# TYPE hamail_proxy_sessions gauge\n"
                                     "hamail_proxy_sessions 2.0\n"),
                         r.render(format::prometheus));
  }

  void empty_registry_renders_only_eof() {
    registry r;
    CPPUNIT_ASSERT_EQUAL(std::string("# EOF\n"), r.render(format::openmetrics));
    CPPUNIT_ASSERT_EQUAL(std::string(), r.render(format::prometheus));
    // A labelled family with no series yet still says what it is.
    r.counters("x_failures", "Failures.", {"kind"});
    CPPUNIT_ASSERT_EQUAL(
        std::string("# HELP x_failures Failures.\n# TYPE x_failures counter\n# EOF\n"),
        r.render(format::openmetrics));
  }

  void label_values_and_help_are_escaped() {
    registry r;
    auto& f = r.counters("x_failures", "Back\\slash, \"quoted\"\nsecond line.", {"kind", "peer"});
    f.with({"a\"b", "c\\d\ne"}).inc();
    CPPUNIT_ASSERT_EQUAL(
        std::string("# HELP x_failures Back\\\\slash, \\\"quoted\\\"\\nsecond line.\n"
                    "# TYPE x_failures counter\n"
                    "x_failures_total{kind=\"a\\\"b\",peer=\"c\\\\d\\ne\"} 1\n"
                    "# EOF\n"),
        r.render(format::openmetrics));
    // Prometheus 0.0.4 escapes only backslash and line feed in HELP.
    CPPUNIT_ASSERT_EQUAL(
        std::string("# HELP x_failures_total Back\\\\slash, \"quoted\"\\nsecond line.\n"
                    "# TYPE x_failures_total counter\n"
                    "x_failures_total{kind=\"a\\\"b\",peer=\"c\\\\d\\ne\"} 1\n"),
        r.render(format::prometheus));
  }

  void label_values_are_kept_utf8() {
    registry r;
    auto& f = r.counters("x_failures", "X.", {"kind"});
    f.with({"caf\xc3\xa9"}).inc();
    f.with({"bad\xff\xc3"}).inc();
    CPPUNIT_ASSERT(&f.with({"bad\xff\xc3"}) == &f.with({"bad??"}));
    f.with({"bad??"}).inc(2);
    CPPUNIT_ASSERT_EQUAL(std::string("# HELP x_failures X.\n# TYPE x_failures counter\n"
                                     "x_failures_total{kind=\"bad??\"} 3\n"
                                     "x_failures_total{kind=\"caf\xc3\xa9\"} 1\n# EOF\n"),
                         r.render(format::openmetrics));
    CPPUNIT_ASSERT_THROW(r.add_counter("y", "bad \xff help"), std::invalid_argument);
  }

  void numbers_render_in_prometheus_client_form() {
    registry r;
    auto& g = r.gauges("g", "G.", {"case"});
    g.with({"a_int"}).set(42);
    g.with({"b_frac"}).set(0.25);
    g.with({"c_neg"}).set(-1.5);
    g.with({"d_tiny"}).set(1e-9);
    g.with({"e_huge"}).set(1e20);
    g.with({"f_nan"}).set(std::numeric_limits<double>::quiet_NaN());
    g.with({"g_inf"}).set(std::numeric_limits<double>::infinity());
    g.with({"h_minf"}).set(-std::numeric_limits<double>::infinity());
    g.with({"i_zero"}).set(-0.0);
    CPPUNIT_ASSERT_EQUAL(std::string("# HELP g G.\n# TYPE g gauge\n"
                                     "g{case=\"a_int\"} 42.0\n"
                                     "g{case=\"b_frac\"} 0.25\n"
                                     "g{case=\"c_neg\"} -1.5\n"
                                     "g{case=\"d_tiny\"} 1e-09\n"
                                     "g{case=\"e_huge\"} 1e+20\n"
                                     "g{case=\"f_nan\"} NaN\n"
                                     "g{case=\"g_inf\"} +Inf\n"
                                     "g{case=\"h_minf\"} -Inf\n"
                                     "g{case=\"i_zero\"} 0.0\n"
                                     "# EOF\n"),
                         r.render(format::openmetrics));
  }

  void histogram_buckets_are_cumulative_with_inclusive_bounds() {
    histogram h({1, 2, 3});
    for (double v : {0.0, 1.0, 1.5, 2.0, 3.0, 3.5, 100.0}) h.observe(v);
    const auto s = h.read();
    const std::vector<std::uint64_t> expected{2, 4, 5, 7};  // le=1: 0 and 1; le=2: 1.5, 2; ...
    CPPUNIT_ASSERT(expected == s.cumulative);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(7), s.count);
    CPPUNIT_ASSERT_DOUBLES_EQUAL(111.0, s.sum, 1e-9);
    histogram d({0.1});
    d.observe(std::chrono::milliseconds(50));
    d.observe(2s);
    CPPUNIT_ASSERT(std::vector<std::uint64_t>({1, 2}) == d.read().cumulative);
    CPPUNIT_ASSERT_DOUBLES_EQUAL(2.05, d.read().sum, 1e-9);
  }

  void histogram_ignores_nan_and_clamps_negative() {
    histogram h({1});
    h.observe(std::numeric_limits<double>::quiet_NaN());
    h.observe(-5.0);
    const auto s = h.read();
    CPPUNIT_ASSERT(std::vector<std::uint64_t>({1, 1}) == s.cumulative);
    CPPUNIT_ASSERT_EQUAL(0.0, s.sum);
  }

  void default_buckets_span_100us_to_30s() {
    const auto& b = default_latency_buckets();
    CPPUNIT_ASSERT_EQUAL(0.0001, b.front());
    CPPUNIT_ASSERT_EQUAL(30.0, b.back());
    registry r;
    auto& h = r.add_histogram("l_seconds", "L.");
    h.observe(0.00005);
    h.observe(20.0);
    h.observe(31.0);
    const std::string text = r.render(format::openmetrics);
    CPPUNIT_ASSERT(text.find("l_seconds_bucket{le=\"0.0001\"} 1\n") != std::string::npos);
    CPPUNIT_ASSERT(text.find("l_seconds_bucket{le=\"0.00025\"} 1\n") != std::string::npos);
    CPPUNIT_ASSERT(text.find("l_seconds_bucket{le=\"10.0\"} 1\n") != std::string::npos);
    CPPUNIT_ASSERT(text.find("l_seconds_bucket{le=\"30.0\"} 2\n") != std::string::npos);
    CPPUNIT_ASSERT(text.find("l_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
    CPPUNIT_ASSERT(text.find("l_seconds_count 3\n") != std::string::npos);
  }

  void callback_metrics_are_read_at_render() {
    registry r;
    double active = 1;
    std::uint64_t accepted = 10;
    r.add_callback_gauge("net_active_connections", "Active.", [&] { return active; });
    r.add_callback_counter("net_accepted_connections", "Accepted.", [&] { return accepted; });
    const std::string before = r.render(format::openmetrics);
    CPPUNIT_ASSERT_EQUAL(std::string("# HELP net_accepted_connections Accepted.\n"
                                     "# TYPE net_accepted_connections counter\n"
                                     "net_accepted_connections_total 10\n"
                                     "# HELP net_active_connections Active.\n"
                                     "# TYPE net_active_connections gauge\n"
                                     "net_active_connections 1.0\n"
                                     "# EOF\n"),
                         before);
    active = 7;
    accepted = 12;
    const std::string after = r.render(format::openmetrics);
    CPPUNIT_ASSERT(after.find("net_accepted_connections_total 12\n") != std::string::npos);
    CPPUNIT_ASSERT(after.find("net_active_connections 7.0\n") != std::string::npos);
    CPPUNIT_ASSERT_THROW(r.add_callback_gauge("no_cb", "X.", {}), std::invalid_argument);
  }

  void invalid_names_are_refused() {
    CPPUNIT_ASSERT(valid_metric_name("a"));
    CPPUNIT_ASSERT(valid_metric_name("_a:b_9"));
    CPPUNIT_ASSERT(valid_metric_name(":x"));
    CPPUNIT_ASSERT(!valid_metric_name(""));
    CPPUNIT_ASSERT(!valid_metric_name("9a"));
    CPPUNIT_ASSERT(!valid_metric_name("a-b"));
    CPPUNIT_ASSERT(!valid_metric_name("a b"));
    CPPUNIT_ASSERT(!valid_metric_name("a\xc3\xa9"));
    CPPUNIT_ASSERT(valid_label_name("kind"));
    CPPUNIT_ASSERT(valid_label_name("_k9"));
    CPPUNIT_ASSERT(!valid_label_name("__reserved"));
    CPPUNIT_ASSERT(!valid_label_name("a:b"));
    CPPUNIT_ASSERT(!valid_label_name("9"));
    CPPUNIT_ASSERT(!valid_label_name(""));
    registry r;
    CPPUNIT_ASSERT_THROW(r.add_counter("bad-name", "X."), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.counters("ok", "X.", {"bad-label"}), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.counters("ok", "X.", {"k", "k"}), std::invalid_argument);
    CPPUNIT_ASSERT_EQUAL(std::string("# EOF\n"), r.render(format::openmetrics));
  }

  void reserved_suffixes_and_clashes_are_refused() {
    registry r;
    CPPUNIT_ASSERT_THROW(r.add_counter("x_total", "X."), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_histogram("h_count", "X.", {1}, {}), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_histogram("h_sum", "X.", {1}, {}), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_histogram("h_bucket", "X.", {1}, {}), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.histograms("h_seconds", "X.", {"le"}), std::invalid_argument);
    r.add_counter("events", "X.");
    CPPUNIT_ASSERT_THROW(r.add_counter("events", "X."), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_gauge("events", "X."), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_gauge("events_total", "X."), std::invalid_argument);
    r.add_histogram("rtt_seconds", "X.");
    CPPUNIT_ASSERT_THROW(r.add_gauge("rtt_seconds_count", "X."), std::invalid_argument);
    r.add_gauge("depth", "X.");
    CPPUNIT_ASSERT_THROW(r.add_histogram("depth", "X.", {1}, {}), std::invalid_argument);
  }

  void unit_must_end_the_name() {
    registry r;
    CPPUNIT_ASSERT_THROW(r.add_histogram("latency", "X."), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_counter("sent", "X.", "bytes"), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_counter("sent_by-tes", "X.", "by-tes"), std::invalid_argument);
    r.add_counter("sent_bytes", "Bytes sent.", "bytes").inc(5);
    r.add_histogram("queue_depth", "Depth.", {1, 10}, {}).observe(3);
    const std::string om = r.render(format::openmetrics);
    CPPUNIT_ASSERT(om.find("# UNIT sent_bytes bytes\nsent_bytes_total 5\n") != std::string::npos);
    CPPUNIT_ASSERT(om.find("# UNIT queue_depth") == std::string::npos);
    CPPUNIT_ASSERT(r.render(format::prometheus).find("# UNIT") == std::string::npos);
  }

  void bad_bounds_are_refused() {
    registry r;
    CPPUNIT_ASSERT_THROW(r.add_histogram("a_seconds", "X.", {1, 1}), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(r.add_histogram("b_seconds", "X.", {2, 1}), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(
        r.add_histogram("c_seconds", "X.", {1, std::numeric_limits<double>::infinity()}),
        std::invalid_argument);
    CPPUNIT_ASSERT_THROW(
        r.add_histogram("d_seconds", "X.", {std::numeric_limits<double>::quiet_NaN()}),
        std::invalid_argument);
    auto& only_inf = r.add_histogram("e_seconds", "X.", {});
    only_inf.observe(1.0);
    CPPUNIT_ASSERT(r.render(format::openmetrics).find("e_seconds_bucket{le=\"+Inf\"} 1\n") !=
                   std::string::npos);
  }

  void wrong_label_count_is_refused() {
    registry r;
    auto& f = r.counters("failures", "X.", {"kind"});
    CPPUNIT_ASSERT_THROW(f.with({}), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(f.with({"a", "b"}), std::invalid_argument);
  }

  void series_limit_bounds_memory() {
    registry r;
    r.set_max_series(3);
    auto& f = r.counters("failures", "X.", {"kind"});
    for (int i = 0; i < 100; ++i) f.with({std::to_string(i)}).inc();
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(97), f.dropped());
    const std::string text = r.render(format::prometheus);
    CPPUNIT_ASSERT(text.find("failures_total{kind=\"0\"} 1\n") != std::string::npos);
    CPPUNIT_ASSERT(text.find("failures_total{kind=\"2\"} 1\n") != std::string::npos);
    CPPUNIT_ASSERT(text.find("kind=\"3\"") == std::string::npos);
    // Existing series are still found after the limit.
    f.with({"1"}).inc();
    CPPUNIT_ASSERT(r.render(format::prometheus).find("failures_total{kind=\"1\"} 2\n") !=
                   std::string::npos);
  }

  void same_labels_give_the_same_series() {
    registry r;
    auto& f = r.histograms("rtt_seconds", "X.", {"backend"});
    CPPUNIT_ASSERT(&f.with({"a"}) == &f.with({"a"}));
    CPPUNIT_ASSERT(&f.with({"a"}) != &f.with({"b"}));
    const std::vector<std::string> v{"a"};
    CPPUNIT_ASSERT(&f.with(v) == &f.with({"a"}));
  }

  void concurrent_updates_are_all_counted() {
    registry r;
    auto& c = r.add_counter("events", "X.");
    auto& g = r.add_gauge("level", "X.");
    auto& h = r.add_histogram("rtt_seconds", "X.", {0.5});
    auto& f = r.counters("failures", "X.", {"kind"});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 10000; ++i) {
          c.inc();
          g.inc();
          h.observe(i % 2 ? 1.0 : 0.25);
          f.with({t % 2 ? "odd" : "even"}).inc();
          if (i % 1000 == 0) (void)r.render(format::openmetrics);
        }
      });
    }
    for (auto& t : threads) t.join();
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(40000), c.value());
    CPPUNIT_ASSERT_EQUAL(40000.0, g.value());
    const auto s = h.read();
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(40000), s.count);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(20000), s.cumulative[0]);
    CPPUNIT_ASSERT_DOUBLES_EQUAL(25000.0, s.sum, 1e-6);
    CPPUNIT_ASSERT_EQUAL(std::uint64_t(20000), f.with({"odd"}).value());
  }

  void accept_header_negotiation() {
    CPPUNIT_ASSERT(negotiate("") == format::prometheus);
    CPPUNIT_ASSERT(negotiate("*/*") == format::prometheus);
    CPPUNIT_ASSERT(negotiate("text/plain;version=0.0.4") == format::prometheus);
    // What Prometheus 2.x sends.
    CPPUNIT_ASSERT(negotiate("application/openmetrics-text;version=1.0.0,application/"
                             "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
                             "*/*;q=0.1") == format::openmetrics);
    CPPUNIT_ASSERT(negotiate("text/plain, Application/OpenMetrics-Text ; q=0.5") ==
                   format::openmetrics);
    CPPUNIT_ASSERT(negotiate("application/openmetrics-text;q=0") == format::prometheus);
    CPPUNIT_ASSERT(negotiate("application/openmetrics-text; q=0.000") == format::prometheus);
    CPPUNIT_ASSERT(negotiate("application/openmetrics-textx") == format::prometheus);
    CPPUNIT_ASSERT_EQUAL(std::string("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                         std::string(content_type(format::openmetrics)));
    CPPUNIT_ASSERT_EQUAL(std::string("text/plain; version=0.0.4; charset=utf-8"),
                         std::string(content_type(format::prometheus)));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(registry_test);

}  // namespace
}  // namespace hamail::metrics

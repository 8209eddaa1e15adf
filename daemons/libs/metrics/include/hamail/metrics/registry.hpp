#pragma once

// Process metrics for Prometheus: counters, gauges and histograms held in a
// registry and rendered in the OpenMetrics 1.0 or Prometheus 0.0.4 text format.
//
// Updating a metric (counter::inc, gauge::set, histogram::observe) is one or a
// few relaxed atomic operations on an object whose address never changes, so
// hot paths keep a reference and update it from any thread. Registering
// families and creating labelled series takes a mutex; do it at start-up or
// keep the reference. Registration mistakes (a bad name, a name used twice,
// the wrong number of label values) are programming errors found at start-up:
// they throw std::invalid_argument, never on the data path.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hamail::metrics {

/// True when `name` is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool valid_metric_name(std::string_view name) noexcept;
/// True when `name` is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__".
bool valid_label_name(std::string_view name) noexcept;

/// A monotonically increasing count (events, bytes). Rendered as <name>_total.
class counter {
 public:
  /// Adds `n`; safe from any thread.
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  /// The current count.
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down (queue depth, open connections).
class gauge {
 public:
  /// Replaces the value; safe from any thread.
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  /// Adds `d` (may be negative); safe from any thread.
  void inc(double d = 1) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  /// Subtracts `d`; safe from any thread.
  void dec(double d = 1) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
  /// The current value.
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Upper bounds (seconds) suited to latencies from 100 µs to 30 s: 0.0001 …
/// 0.0025, 0.005 … 30, each step about x2–x2.5; +Inf is implicit.
const std::vector<double>& default_latency_buckets();

/// A distribution of observations (latencies in seconds) over fixed buckets.
class histogram {
 public:
  /// `bounds` are the finite upper bounds, strictly increasing; throws
  /// std::invalid_argument otherwise (empty is allowed: only +Inf).
  explicit histogram(std::vector<double> bounds);

  /// Counts one observation in the first bucket whose bound is >= v (the +Inf
  /// bucket when none is) and adds it to the sum. NaN is ignored; negative
  /// values count as 0 (a latency cannot be negative; a clock step can make it so).
  void observe(double v) noexcept;
  /// Observes a duration, in seconds.
  template <class Rep, class Period>
  void observe(std::chrono::duration<Rep, Period> d) noexcept {
    observe(std::chrono::duration<double>(d).count());
  }

  /// A consistent-enough copy for rendering and tests.
  struct snapshot {
    std::vector<std::uint64_t> cumulative;  ///< per bound, then +Inf (== count)
    std::uint64_t count = 0;
    double sum = 0;
  };
  /// Reads the buckets (relaxed: concurrent observations may be half in).
  snapshot read() const;
  /// The finite upper bounds.
  const std::vector<double>& bounds() const noexcept { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, +Inf last; not cumulative
  std::atomic<double> sum_{0};
};

/// The text formats the registry renders.
enum class format {
  openmetrics,  ///< application/openmetrics-text; version=1.0.0
  prometheus,   ///< text/plain; version=0.0.4
};

/// The Content-Type header value of a format.
std::string_view content_type(format f) noexcept;
/// Picks the format for an HTTP Accept header value: OpenMetrics when the
/// client lists application/openmetrics-text (with q > 0), otherwise Prometheus 0.0.4.
format negotiate(std::string_view accept) noexcept;

namespace detail {
struct family_base;
}

/// The series of one metric, one per combination of label values. `M` is
/// counter, gauge or histogram.
template <class M>
class family {
 public:
  /// The series for these label values (one per label name, in order),
  /// created on first use. The reference stays valid for the registry's
  /// life. Throws std::invalid_argument when the count is wrong. Beyond the
  /// family's series limit new combinations all share one series that is not
  /// rendered (so a runaway label cannot exhaust memory); see dropped().
  M& with(std::initializer_list<std::string_view> values);
  /// with() from a vector.
  M& with(const std::vector<std::string>& values);
  /// Label combinations refused by the series limit since start.
  std::uint64_t dropped() const noexcept;

  explicit family(detail::family_base* base) : base_(base) {}

 private:
  detail::family_base* base_;
};

/// The metrics of one process, rendered in family-name order.
///
/// Thread safety: every member may be called from any thread. render() runs
/// the callbacks of callback metrics on the calling thread while holding the
/// registry's lock: a callback reading a daemon's state must be rendered on
/// that daemon's thread (the HTTP endpoint renders on the io_context), and it
/// must not call back into the registry.
class registry {
 public:
  /// At most this many series per family by default.
  static constexpr std::size_t default_max_series = 1000;

  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// A counter family. `name` without the _total suffix (it is added when
  /// rendering; a name ending in _total is refused). `unit` (e.g. "bytes"),
  /// when given, must end the name as "_<unit>".
  family<counter>& counters(std::string_view name, std::string_view help,
                            std::vector<std::string> label_names, std::string_view unit = {});
  /// An unlabelled counter.
  counter& add_counter(std::string_view name, std::string_view help, std::string_view unit = {});

  /// A gauge family.
  family<gauge>& gauges(std::string_view name, std::string_view help,
                        std::vector<std::string> label_names, std::string_view unit = {});
  /// An unlabelled gauge.
  gauge& add_gauge(std::string_view name, std::string_view help, std::string_view unit = {});

  /// A histogram family over `bounds` (seconds by default: the name must then
  /// end in _seconds). Names ending in _bucket, _count or _sum are refused, and
  /// "le" as a label name.
  family<histogram>& histograms(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names,
                                std::vector<double> bounds = default_latency_buckets(),
                                std::string_view unit = "seconds");
  /// An unlabelled histogram.
  histogram& add_histogram(std::string_view name, std::string_view help,
                           std::vector<double> bounds = default_latency_buckets(),
                           std::string_view unit = "seconds");

  /// A gauge whose value is `read()` at each scrape (e.g. active connections
  /// read from the server). See the class comment for threading.
  void add_callback_gauge(std::string_view name, std::string_view help,
                          std::function<double()> read, std::string_view unit = {});
  /// A counter whose value is `read()` at each scrape (a count the daemon
  /// keeps itself, e.g. net::server::accepted_connections()).
  void add_callback_counter(std::string_view name, std::string_view help,
                            std::function<std::uint64_t()> read, std::string_view unit = {});

  /// Changes the series limit of families registered later.
  void set_max_series(std::size_t n) noexcept;

  /// The whole registry in `f`, ending with "# EOF\n" for OpenMetrics.
  std::string render(format f) const;

 private:
  detail::family_base& add(std::string_view name, std::string_view help, std::string_view unit,
                           int type, std::vector<std::string> label_names,
                           std::vector<double> bounds);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<detail::family_base>, std::less<>> families_;
  std::size_t max_series_ = default_max_series;
};

}  // namespace hamail::metrics

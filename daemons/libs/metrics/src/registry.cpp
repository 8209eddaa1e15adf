#include "hamail/metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <system_error>

#include "hamail/core/utf8.hpp"

namespace hamail::metrics {

namespace detail {

enum family_type { counter_type = 0, gauge_type = 1, histogram_type = 2 };

/// One metric family: its metadata, its series by label values and, for
/// callback metrics, the callback.
struct family_base {
  std::string name;
  std::string help;
  std::string unit;
  int type = counter_type;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  std::size_t max_series = 0;
  std::function<double()> read_gauge;           // callback gauge
  std::function<std::uint64_t()> read_counter;  // callback counter

  std::mutex mutex;  // guards the maps; the series themselves are atomics
  std::map<std::vector<std::string>, std::unique_ptr<counter>> counters;
  std::map<std::vector<std::string>, std::unique_ptr<gauge>> gauges;
  std::map<std::vector<std::string>, std::unique_ptr<histogram>> histograms;
  // Series over the limit land here and are never rendered.
  counter counter_sink;
  gauge gauge_sink;
  std::unique_ptr<histogram> histogram_sink;
  std::atomic<std::uint64_t> dropped{0};

  family<counter> counter_handle{this};
  family<gauge> gauge_handle{this};
  family<histogram> histogram_handle{this};

  auto& series(counter*) { return counters; }
  auto& series(gauge*) { return gauges; }
  auto& series(histogram*) { return histograms; }
  counter& sink(counter*) { return counter_sink; }
  gauge& sink(gauge*) { return gauge_sink; }
  histogram& sink(histogram*) { return *histogram_sink; }
  std::unique_ptr<counter> make(counter*) { return std::make_unique<counter>(); }
  std::unique_ptr<gauge> make(gauge*) { return std::make_unique<gauge>(); }
  std::unique_ptr<histogram> make(histogram*) { return std::make_unique<histogram>(bounds); }
};

}  // namespace detail

namespace {

using detail::family_base;

bool name_start(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool name_char(char c) noexcept { return name_start(c) || (c >= '0' && c <= '9'); }

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

[[noreturn]] void refuse(std::string_view name, std::string_view why) {
  throw std::invalid_argument("metric " + std::string(name) + ": " + std::string(why));
}

// Shortest text that reads back as `v`, in the form Prometheus clients use:
// "NaN", "+Inf", "-Inf"; fixed notation with a ".0" on integral values
// ("1.0", "0.0001", "2.5") in the ordinary range, the shortest exponent form
// outside it.
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  const double a = std::fabs(v);
  const bool fixed = a == 0 || (a >= 1e-6 && a < 1e15);
  const auto r = fixed ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                       : std::to_chars(buf, buf + sizeof buf, v);
  std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  if (text == "-0") text = "0";
  out += text;
  if (fixed && text.find('.') == std::string_view::npos) out += ".0";
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Label values: backslash, double quote and line feed escaped (both formats).
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text: backslash and line feed escaped; OpenMetrics also escapes '"'.
void append_help(std::string& out, std::string_view help, format f) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && f == format::openmetrics) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// {a="x",b="y"} (with le="..." last when `le` is set); nothing when there are no labels.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, const double* le = nullptr) {
  if (names.empty() && le == nullptr) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    append_label_value(out, values[i]);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty()) out += ',';
    out += "le=\"";
    append_double(out, *le);
    out += '"';
  }
  out += '}';
}

void append_sample_name(std::string& out, const family_base& fam, std::string_view suffix) {
  out += fam.name;
  out += suffix;
}

void render_family(std::string& out, const family_base& fam, format f) {
  static constexpr std::string_view type_names[] = {"counter", "gauge", "histogram"};
  // Prometheus 0.0.4 names a counter family by its sample name (with _total).
  const std::string meta_name =
      fam.type == detail::counter_type && f == format::prometheus ? fam.name + "_total" : fam.name;
  out += "# HELP ";
  out += meta_name;
  out += ' ';
  append_help(out, fam.help, f);
  out += "\n# TYPE ";
  out += meta_name;
  out += ' ';
  out += type_names[fam.type];
  out += '\n';
  if (f == format::openmetrics && !fam.unit.empty()) {
    out += "# UNIT ";
    out += fam.name;
    out += ' ';
    out += fam.unit;
    out += '\n';
  }
  static const std::vector<std::string> no_values;
  if (fam.read_counter) {
    append_sample_name(out, fam, "_total ");
    append_uint(out, fam.read_counter());
    out += '\n';
    return;
  }
  if (fam.read_gauge) {
    append_sample_name(out, fam, " ");
    append_double(out, fam.read_gauge());
    out += '\n';
    return;
  }
  for (const auto& [values, c] : fam.counters) {
    append_sample_name(out, fam, "_total");
    append_labels(out, fam.label_names, values);
    out += ' ';
    append_uint(out, c->value());
    out += '\n';
  }
  for (const auto& [values, g] : fam.gauges) {
    out += fam.name;
    append_labels(out, fam.label_names, values);
    out += ' ';
    append_double(out, g->value());
    out += '\n';
  }
  for (const auto& [values, h] : fam.histograms) {
    const auto snap = h->read();
    const auto& bounds = h->bounds();
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
      const double le = i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity();
      append_sample_name(out, fam, "_bucket");
      append_labels(out, fam.label_names, values, &le);
      out += ' ';
      append_uint(out, snap.cumulative[i]);
      out += '\n';
    }
    append_sample_name(out, fam, "_count");
    append_labels(out, fam.label_names, values);
    out += ' ';
    append_uint(out, snap.count);
    out += '\n';
    append_sample_name(out, fam, "_sum");
    append_labels(out, fam.label_names, values);
    out += ' ';
    append_double(out, snap.sum);
    out += '\n';
  }
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// True when an Accept parameter list (after the media type) gives q=0.
bool q_is_zero(std::string_view params) noexcept {
  while (!params.empty()) {
    const auto semi = params.find(';');
    const auto param = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
    if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
    const auto q = trim(param.substr(2));
    // q = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ): zero when only zeros.
    return !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
  }
  return false;
}

}  // namespace

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty() || !(name_start(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return name_char(c) || c == ':'; });
}

bool valid_label_name(std::string_view name) noexcept {
  if (name.empty() || !name_start(name[0]) || name.substr(0, 2) == "__") return false;
  return std::all_of(name.begin(), name.end(), name_char);
}

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10,    30};
  return bounds;
}

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) throw std::invalid_argument("histogram bound is not finite");
    if (i > 0 && !(bounds_[i] > bounds_[i - 1]))
      throw std::invalid_argument("histogram bounds are not strictly increasing");
  }
}

void histogram::observe(double v) noexcept {
  if (std::isnan(v)) return;
  if (v < 0) v = 0;
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                          bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  // The count is the +Inf bucket by construction, so the two never disagree.
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::string_view content_type(format f) noexcept {
  return f == format::openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                  : "text/plain; version=0.0.4; charset=utf-8";
}

format negotiate(std::string_view accept) noexcept {
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    const auto element = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    const auto semi = element.find(';');
    const auto type = trim(element.substr(0, semi));
    const auto params =
        semi == std::string_view::npos ? std::string_view{} : element.substr(semi + 1);
    if (iequals(type, "application/openmetrics-text") && !q_is_zero(params))
      return format::openmetrics;
  }
  return format::prometheus;
}

// OpenMetrics text is UTF-8: a label value that is not (bytes from a peer)
// has its non-ASCII octets replaced by '?', so the exposition stays valid.
std::vector<std::string> valid_values(const std::vector<std::string>& values) {
  std::vector<std::string> out = values;
  for (auto& v : out) {
    if (is_valid_utf8(v)) continue;
    for (auto& c : v)
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return out;
}

template <class M>
M& family<M>::with(const std::vector<std::string>& raw_values) {
  auto& base = *base_;
  if (raw_values.size() != base.label_names.size())
    refuse(base.name, "wrong number of label values");
  const auto values = valid_values(raw_values);
  std::lock_guard lock(base.mutex);
  auto& series = base.series(static_cast<M*>(nullptr));
  if (auto it = series.find(values); it != series.end()) return *it->second;
  if (series.size() >= base.max_series) {
    base.dropped.fetch_add(1, std::memory_order_relaxed);
    return base.sink(static_cast<M*>(nullptr));
  }
  auto& slot = series[values];
  slot = base.make(static_cast<M*>(nullptr));
  return *slot;
}

template <class M>
M& family<M>::with(std::initializer_list<std::string_view> values) {
  return with(std::vector<std::string>(values.begin(), values.end()));
}

template <class M>
std::uint64_t family<M>::dropped() const noexcept {
  return base_->dropped.load(std::memory_order_relaxed);
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

registry::registry() = default;
registry::~registry() = default;

void registry::set_max_series(std::size_t n) noexcept {
  std::lock_guard lock(mutex_);
  max_series_ = n;
}

family_base& registry::add(std::string_view name, std::string_view help, std::string_view unit,
                           int type, std::vector<std::string> label_names,
                           std::vector<double> bounds) {
  if (!valid_metric_name(name)) refuse(name, "invalid name");
  if (!is_valid_utf8(help)) refuse(name, "help text is not UTF-8");
  if (!unit.empty()) {
    if (!std::all_of(unit.begin(), unit.end(), name_char))
      refuse(name, "invalid unit " + std::string(unit));
    if (!ends_with(name, "_" + std::string(unit))) refuse(name, "name must end in _<unit>");
  }
  if (type == detail::counter_type && ends_with(name, "_total"))
    refuse(name, "counter names are given without _total");
  if (type == detail::histogram_type &&
      (ends_with(name, "_bucket") || ends_with(name, "_count") || ends_with(name, "_sum")))
    refuse(name, "histogram names may not end in _bucket, _count or _sum");
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    const auto& l = label_names[i];
    if (!valid_label_name(l)) refuse(name, "invalid label name " + l);
    if (type == detail::histogram_type && l == "le") refuse(name, "le is reserved");
    if (std::find(label_names.begin(), label_names.begin() + static_cast<std::ptrdiff_t>(i), l) !=
        label_names.begin() + static_cast<std::ptrdiff_t>(i))
      refuse(name, "label name used twice: " + l);
  }
  auto fam = std::make_unique<family_base>();
  fam->name = std::string(name);
  fam->help = std::string(help);
  fam->unit = std::string(unit);
  fam->type = type;
  fam->label_names = std::move(label_names);
  if (type == detail::histogram_type) {
    fam->histogram_sink = std::make_unique<histogram>(bounds);  // validates the bounds
    fam->bounds = std::move(bounds);
  }
  std::lock_guard lock(mutex_);
  fam->max_series = max_series_;
  // A family's name must not collide with another family's samples either
  // (a gauge "x_total" beside a counter "x").
  for (const auto& [other, f] : families_) {
    const auto clash = [&](std::string_view a, const family_base& fa, std::string_view b) {
      if (a == b) return true;
      if (fa.type == detail::counter_type && std::string(a) + "_total" == b) return true;
      if (fa.type == detail::histogram_type)
        for (const char* s : {"_bucket", "_count", "_sum"})
          if (std::string(a) + s == b) return true;
      return false;
    };
    if (clash(other, *f, name) || clash(name, *fam, other))
      refuse(name, "clashes with metric " + other);
  }
  auto& slot = families_[fam->name];
  slot = std::move(fam);
  return *slot;
}

family<counter>& registry::counters(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names, std::string_view unit) {
  return add(name, help, unit, detail::counter_type, std::move(label_names), {}).counter_handle;
}

counter& registry::add_counter(std::string_view name, std::string_view help,
                               std::string_view unit) {
  return counters(name, help, {}, unit).with({});
}

family<gauge>& registry::gauges(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names, std::string_view unit) {
  return add(name, help, unit, detail::gauge_type, std::move(label_names), {}).gauge_handle;
}

gauge& registry::add_gauge(std::string_view name, std::string_view help, std::string_view unit) {
  return gauges(name, help, {}, unit).with({});
}

family<histogram>& registry::histograms(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds, std::string_view unit) {
  return add(name, help, unit, detail::histogram_type, std::move(label_names), std::move(bounds))
      .histogram_handle;
}

histogram& registry::add_histogram(std::string_view name, std::string_view help,
                                   std::vector<double> bounds, std::string_view unit) {
  return histograms(name, help, {}, std::move(bounds), unit).with({});
}

void registry::add_callback_gauge(std::string_view name, std::string_view help,
                                  std::function<double()> read, std::string_view unit) {
  if (!read) refuse(name, "no callback");
  auto& fam = add(name, help, unit, detail::gauge_type, {}, {});
  std::lock_guard lock(mutex_);
  fam.read_gauge = std::move(read);
}

void registry::add_callback_counter(std::string_view name, std::string_view help,
                                    std::function<std::uint64_t()> read, std::string_view unit) {
  if (!read) refuse(name, "no callback");
  auto& fam = add(name, help, unit, detail::counter_type, {}, {});
  std::lock_guard lock(mutex_);
  fam.read_counter = std::move(read);
}

std::string registry::render(format f) const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, fam] : families_) {
    std::lock_guard series_lock(fam->mutex);
    render_family(out, *fam, f);
  }
  if (f == format::openmetrics) out += "# EOF\n";
  return out;
}

}  // namespace hamail::metrics

#include <algorithm>

#include "hamail/protocol/imap/sequence_set.hpp"

namespace hamail::imap {

namespace {

// Parses nz-number or '*' from the front of s; false on any other form.
bool take_number(std::string_view& s, std::uint32_t& out) {
  if (!s.empty() && s.front() == '*') {
    out = sequence_set::star;
    s.remove_prefix(1);
    return true;
  }
  std::uint64_t v = 0;
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
    if (v > UINT32_MAX) return false;
    ++i;
  }
  if (i == 0 || v == 0 || s[0] == '0') return false;  // nz-number: no 0, no leading zero
  out = static_cast<std::uint32_t>(v);
  s.remove_prefix(i);
  return true;
}

// The range within 1..max, '*' standing for max; false when it holds nothing
// there. A range with '*' always holds max: "559:*" names the last message
// even when max is 500 (RFC 3501 §6.4.8).
bool clip(sequence_range r, std::uint32_t max, sequence_range& out) {
  if (max == 0) return false;
  const bool has_star = r.first == sequence_set::star || r.last == sequence_set::star;
  const std::uint32_t a = r.first == sequence_set::star ? max : r.first;
  const std::uint32_t b = r.last == sequence_set::star ? max : r.last;
  out = {std::min(a, b), std::max(a, b)};
  if (out.first > max) {
    if (!has_star) return false;
    out.first = max;
  }
  out.last = std::min(out.last, max);
  return true;
}

}  // namespace

std::optional<sequence_set> sequence_set::parse(std::string_view text, std::size_t max_ranges,
                                                sequence_error* error) {
  auto fail = [&](sequence_error e) {
    if (error != nullptr) *error = e;
    return std::optional<sequence_set>();
  };
  sequence_set set;
  if (text == "$") {
    set.saved_ = true;
    return set;
  }
  for (;;) {
    if (set.ranges_.size() >= max_ranges) return fail(sequence_error::too_many_ranges);
    sequence_range r;
    if (!take_number(text, r.first)) return fail(sequence_error::syntax);
    r.last = r.first;
    if (!text.empty() && text.front() == ':') {
      text.remove_prefix(1);
      if (!take_number(text, r.last)) return fail(sequence_error::syntax);
    }
    set.ranges_.push_back(r);
    if (text.empty()) return set;
    if (text.front() != ',') return fail(sequence_error::syntax);
    text.remove_prefix(1);
  }
}

std::uint32_t sequence_set::highest_explicit() const noexcept {
  std::uint32_t high = 0;
  for (const auto& r : ranges_) high = std::max({high, r.first, r.last});
  return high;
}

std::vector<sequence_range> sequence_set::resolve(std::uint32_t max) const {
  std::vector<sequence_range> out;
  out.reserve(ranges_.size());
  for (const auto& r : ranges_) {
    sequence_range n;
    if (clip(r, max, n)) out.push_back(n);
  }
  if (out.empty()) return out;
  std::sort(out.begin(), out.end(),
            [](const sequence_range& a, const sequence_range& b) { return a.first < b.first; });
  std::size_t w = 0;
  for (std::size_t i = 1; i < out.size(); ++i) {
    if (static_cast<std::uint64_t>(out[i].first) <= std::uint64_t(out[w].last) + 1)
      out[w].last = std::max(out[w].last, out[i].last);
    else
      out[++w] = out[i];
  }
  out.resize(w + 1);
  return out;
}

bool sequence_set::contains(std::uint32_t n, std::uint32_t max) const noexcept {
  if (n == 0 || n > max) return false;
  for (const auto& r : ranges_) {
    sequence_range x;
    if (clip(r, max, x) && n >= x.first && n <= x.last) return true;
  }
  return false;
}

std::uint64_t sequence_set::count(std::uint32_t max) const {
  std::uint64_t total = 0;
  for (const auto& r : resolve(max)) total += std::uint64_t(r.last) - r.first + 1;
  return total;
}

}  // namespace hamail::imap

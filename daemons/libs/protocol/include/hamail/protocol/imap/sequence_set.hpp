#pragma once

// IMAP sequence sets (RFC 3501 §9 sequence-set, RFC 5182 "$"): "1,3:5,7:*".

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace hamail::imap {

/// One range of a sequence set as written; sequence_set::star stands for '*'.
struct sequence_range {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  friend bool operator==(const sequence_range&, const sequence_range&) = default;
};

/// Why a sequence set was refused.
enum class sequence_error {
  syntax,           ///< not a sequence set (includes the number 0 and overflow)
  too_many_ranges,  ///< more comma-separated parts than the limit
};

/// A parsed sequence set or UID set. Numbers are kept as written; they are
/// resolved against the mailbox's highest number ("*") when used.
class sequence_set {
 public:
  /// The value standing for '*' in ranges().
  static constexpr std::uint32_t star = 0;

  /// Parses `text` with at most `max_ranges` parts; returns the set, or nullopt
  /// with *error set.
  static std::optional<sequence_set> parse(std::string_view text, std::size_t max_ranges,
                                           sequence_error* error = nullptr);

  /// True for "$", the saved result of the last SEARCH (RFC 5182); ranges() is then empty.
  bool is_saved_result() const noexcept { return saved_; }
  /// The ranges as written, '*' as star.
  const std::vector<sequence_range>& ranges() const noexcept { return ranges_; }
  /// The highest number written out (not '*'); 0 when there is none. A session
  /// compares it with EXISTS to refuse sequence numbers past the end.
  std::uint32_t highest_explicit() const noexcept;

  /// Returns the set as sorted, merged, non-overlapping ranges within 1..max,
  /// '*' standing for max. A range reaching past max is cut at max, so "559:*"
  /// with max 500 gives 500:500, as RFC 3501 §6.4.8 wants for UIDs; a range
  /// without "*" wholly past max gives nothing.
  std::vector<sequence_range> resolve(std::uint32_t max) const;
  /// True when n is in the set resolved against max.
  bool contains(std::uint32_t n, std::uint32_t max) const noexcept;
  /// Number of distinct members resolved against max.
  std::uint64_t count(std::uint32_t max) const;
  /// Calls f(n) for every member resolved against max, ascending, each once.
  template <class F>
  void for_each(std::uint32_t max, F&& f) const {
    for (const auto& r : resolve(max)) {
      for (std::uint64_t n = r.first; n <= r.last; ++n) f(static_cast<std::uint32_t>(n));
    }
  }

 private:
  std::vector<sequence_range> ranges_;
  bool saved_ = false;
};

}  // namespace hamail::imap

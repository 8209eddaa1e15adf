#include <array>

#include "hamail/core/ascii.hpp"
#include "hamail/protocol/imap/arguments.hpp"

namespace hamail::imap {

namespace {

constexpr bool digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool digits(std::string_view s, unsigned& out) {
  if (s.empty()) return false;
  unsigned v = 0;
  for (char c : s) {
    if (!digit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  out = v;
  return true;
}

constexpr std::array<std::string_view, 12> months = {"jan", "feb", "mar", "apr", "may", "jun",
                                                     "jul", "aug", "sep", "oct", "nov", "dec"};

bool leap(int y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in(int y, unsigned m) noexcept {
  static constexpr unsigned d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[m - 1];
}

// "d-Mon-yyyy" with the day already extracted as day_text.
std::optional<date> finish_date(std::string_view day_text, std::string_view rest) {
  // rest: "Mon-yyyy"
  if (rest.size() != 8 || rest[3] != '-') return std::nullopt;
  date d;
  unsigned year = 0;
  if (!digits(day_text, d.day) || !digits(rest.substr(4), year)) return std::nullopt;
  d.year = static_cast<int>(year);
  for (unsigned m = 0; m < 12; ++m) {
    if (ascii_iequals(rest.substr(0, 3), months[m])) d.month = m + 1;
  }
  if (d.month == 0 || d.day == 0 || d.day > days_in(d.year, d.month)) return std::nullopt;
  return d;
}

}  // namespace

std::int64_t days_since_epoch(const date& d) noexcept {
  // Howard Hinnant's days_from_civil.
  const int y = d.year - (d.month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned mp = d.month > 2 ? d.month - 3 : d.month + 9;
  const unsigned doy = (153 * mp + 2) / 5 + d.day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::int64_t date_time::unix_seconds() const noexcept {
  return days_since_epoch(day) * 86400 + hour * 3600 + minute * 60 + second -
         std::int64_t(zone_minutes) * 60;
}

std::optional<date> parse_date(std::string_view text) {
  const auto dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 2) return std::nullopt;
  return finish_date(text.substr(0, dash), text.substr(dash + 1));
}

std::optional<date_time> parse_date_time(std::string_view text) {
  // "dd-Mon-yyyy hh:mm:ss +zzzz": 26 octets; date-day-fixed is " d" or "dd".
  if (text.size() != 26 || text[2] != '-' || text[11] != ' ' || text[14] != ':' ||
      text[17] != ':' || text[20] != ' ')
    return std::nullopt;
  std::string_view day = text.substr(0, 2);
  if (day[0] == ' ') day.remove_prefix(1);
  const auto d = finish_date(day, text.substr(3, 8));
  if (!d) return std::nullopt;
  date_time t;
  t.day = *d;
  unsigned zone = 0;
  if (!digits(text.substr(12, 2), t.hour) || !digits(text.substr(15, 2), t.minute) ||
      !digits(text.substr(18, 2), t.second) || !digits(text.substr(22, 4), zone))
    return std::nullopt;
  const char sign = text[21];
  if ((sign != '+' && sign != '-') || t.hour > 23 || t.minute > 59 || t.second > 60 ||
      zone % 100 > 59)
    return std::nullopt;
  t.zone_minutes = static_cast<int>(zone / 100 * 60 + zone % 100) * (sign == '-' ? -1 : 1);
  return t;
}

std::optional<std::vector<std::string>> parse_flag_list(const value& v,
                                                        const flag_options& options) {
  static constexpr std::string_view system[] = {"\\Seen",    "\\Answered", "\\Flagged",
                                                "\\Deleted", "\\Draft",    "\\Recent"};
  auto one = [&](const value& f) -> std::optional<std::string> {
    if (f.kind != value_kind::atom || f.has_section || f.text.empty()) return std::nullopt;
    std::string_view name = f.text;
    const bool is_system = name.front() == '\\';
    if (is_system) {
      if (name == "\\*") {
        if (!options.allow_wildcard) return std::nullopt;
        return std::string(name);
      }
      name.remove_prefix(1);
      if (name.empty()) return std::nullopt;
    }
    // The rest is an RFC 3501 atom: the parser's atoms may also hold these.
    for (char c : name) {
      if (c == '\\' || c == ']' || c == '%' || c == '*' || static_cast<unsigned char>(c) >= 0x80)
        return std::nullopt;
    }
    if (!is_system) return std::string(name);
    for (auto s : system) {
      if (ascii_iequals(f.text, s)) {
        if (s == "\\Recent" && !options.allow_recent) return std::nullopt;
        return std::string(s);
      }
    }
    return f.text;  // a flag-extension: kept as sent
  };
  std::vector<std::string> out;
  if (v.kind != value_kind::list) {
    if (!options.allow_single) return std::nullopt;
    auto f = one(v);
    if (!f) return std::nullopt;
    out.push_back(std::move(*f));
    return out;
  }
  out.reserve(v.items.size());
  for (const auto& item : v.items) {
    auto f = one(item);
    if (!f) return std::nullopt;
    out.push_back(std::move(*f));
  }
  return out;
}

std::optional<std::string> mailbox_name(const value& v) {
  if (!v.is_astring()) return std::nullopt;
  if (v.text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) return std::nullopt;
  if (ascii_iequals(v.text, "INBOX")) return std::string("INBOX");
  return v.text;
}

}  // namespace hamail::imap

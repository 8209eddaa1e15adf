#include "imap/flags_text.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

constexpr std::pair<store::system_flag, const char*> system_flags[] = {
    {store::system_flag::answered, "\\Answered"}, {store::system_flag::flagged, "\\Flagged"},
    {store::system_flag::deleted, "\\Deleted"},   {store::system_flag::seen, "\\Seen"},
    {store::system_flag::draft, "\\Draft"},
};

}  // namespace

std::string flag_list_text(const store::message_flags& flags, bool recent) {
  std::string out = "(";
  auto add = [&out](std::string_view f) {
    if (out.size() > 1) out += ' ';
    out += f;
  };
  if (recent) add("\\Recent");
  for (const auto& [bit, name] : system_flags) {
    if (flags.has(bit)) add(name);
  }
  for (const auto& k : flags.keywords) add(k);
  out += ')';
  return out;
}

std::string mailbox_flags_text(std::span<const std::string> keywords) {
  std::string out = "(\\Answered \\Flagged \\Deleted \\Seen \\Draft";
  for (const auto& k : keywords) {
    out += ' ';
    out += k;
  }
  out += ')';
  return out;
}

std::string uid_set_text(std::span<const std::uint32_t> numbers) {
  std::string out;
  for (std::size_t i = 0; i < numbers.size();) {
    std::size_t j = i;
    while (j + 1 < numbers.size() && numbers[j + 1] == numbers[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(numbers[i]);
    if (j > i) {
      out += ':';
      out += std::to_string(numbers[j]);
    }
    i = j + 1;
  }
  return out;
}

std::optional<store::message_flags> to_message_flags(const std::vector<std::string>& names) {
  store::message_flags out;
  for (const auto& n : names) {
    bool system = false;
    for (const auto& [bit, name] : system_flags) {
      if (n == name) {
        out.set(bit);
        system = true;
      }
    }
    if (system) continue;
    if (!store::validate_keyword(n)) return std::nullopt;
    if (!out.has_keyword(n)) out.keywords.push_back(n);
  }
  return out;
}

}  // namespace hamail::backend::imap_session_detail

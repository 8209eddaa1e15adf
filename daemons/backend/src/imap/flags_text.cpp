#include "imap/flags_text.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

constexpr std::pair<store::system_flag, const char*> system_flags[] = {
    {store::system_flag::answered, "\\Answered"}, {store::system_flag::flagged, "\\Flagged"},
    {store::system_flag::deleted, "\\Deleted"},   {store::system_flag::seen, "\\Seen"},
    {store::system_flag::draft, "\\Draft"},
};

}  // namespace

std::string mailbox_flags_text(std::span<const std::string> keywords) {
  std::string out = "(\\Answered \\Flagged \\Deleted \\Seen \\Draft";
  for (const auto& k : keywords) {
    out += ' ';
    out += k;
  }
  out += ')';
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

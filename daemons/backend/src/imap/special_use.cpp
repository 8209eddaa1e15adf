#include "imap/special_use.hpp"

#include <array>
#include <utility>

namespace hamail::backend::imap_session_detail {

namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 5> special{{
    {"Drafts", "\\Drafts"},
    {"Sent", "\\Sent"},
    {"Trash", "\\Trash"},
    {"Junk", "\\Junk"},
    {"Archive", "\\Archive"},
}};

}  // namespace

std::string_view special_use_of(std::string_view name) noexcept {
  for (const auto& [n, attr] : special) {
    if (n == name) return attr;
  }
  return {};
}

result<void> create_special_use_mailboxes(store::mail_store& st, std::string_view account) {
  auto list = st.list_mailboxes(account);
  if (!list) return std::move(list).err();
  for (const auto& [n, attr] : special) {
    bool found = false;
    for (const auto& e : *list) found = found || (e.name == n && e.selectable);
    if (found) continue;
    auto r = st.create_mailbox(account, n);
    if (!r && r.err().code != errc::already_exists) return r;
  }
  return {};
}

}  // namespace hamail::backend::imap_session_detail

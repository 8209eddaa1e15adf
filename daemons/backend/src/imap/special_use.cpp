#include "imap/special_use.hpp"

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "imap/subscriptions.hpp"

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

result<void> create_special_use_mailboxes(store::mail_store& st, std::string_view account,
                                          bool fsync) {
  auto list = st.list_mailboxes(account);
  if (!list) return std::move(list).err();
  std::vector<std::string> created;
  for (const auto& [n, attr] : special) {
    bool found = false;
    for (const auto& e : *list) found = found || (e.name == n && e.selectable);
    if (found) continue;
    auto r = st.create_mailbox(account, n);
    if (!r && r.err().code != errc::already_exists) return r;
    if (r) created.emplace_back(n);
  }
  if (created.empty()) return {};
  // New mailboxes a client did not ask for: subscribe them (and INBOX) so that
  // clients showing only subscribed mailboxes find them.
  auto subs = subscriptions::of(st, {}, account, fsync);
  if (!subs) return {};  // a store without a data directory keeps no subscriptions
  created.emplace_back("INBOX");
  if (auto r = subs->add(created); !r) return std::move(r).err();
  return {};
}

}  // namespace hamail::backend::imap_session_detail

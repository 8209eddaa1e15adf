#include "pop3/maildrop.hpp"

#include <cstdio>

namespace hamail::backend::pop3_session_detail {

std::string uidl_of(std::uint32_t uid_validity, store::imap_uid uid) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08X%08X", static_cast<unsigned>(uid),
                static_cast<unsigned>(uid_validity));
  return buf;
}

maildrop::maildrop(const store::mailbox_snapshot& snapshot) : uid_validity_(snapshot.uid_validity) {
  messages_.reserve(snapshot.messages.size());
  for (const auto& m : snapshot.messages) {
    messages_.push_back(maildrop_message{m.uid, m.wire_size, false, false});
    live_octets_ += m.wire_size;
  }
  live_count_ = static_cast<std::uint32_t>(messages_.size());
}

const maildrop_message* maildrop::find(std::uint32_t n) const noexcept {
  if (n == 0 || n > messages_.size() || messages_[n - 1].deleted) return nullptr;
  return &messages_[n - 1];
}

bool maildrop::remove(std::uint32_t n) noexcept {
  if (find(n) == nullptr) return false;
  auto& m = messages_[n - 1];
  m.deleted = true;
  --live_count_;
  live_octets_ -= m.size;
  return true;
}

void maildrop::mark_retrieved(std::uint32_t n) noexcept {
  if (find(n) != nullptr) messages_[n - 1].retrieved = true;
}

void maildrop::undelete_all() noexcept {
  for (auto& m : messages_) {
    if (!m.deleted) continue;
    m.deleted = false;
    ++live_count_;
    live_octets_ += m.size;
  }
}

std::vector<store::imap_uid> maildrop::deleted_uids() const {
  std::vector<store::imap_uid> out;
  for (const auto& m : messages_)
    if (m.deleted) out.push_back(m.uid);
  return out;
}

std::vector<store::imap_uid> maildrop::retrieved_uids() const {
  std::vector<store::imap_uid> out;
  for (const auto& m : messages_)
    if (m.retrieved && !m.deleted) out.push_back(m.uid);
  return out;
}

}  // namespace hamail::backend::pop3_session_detail

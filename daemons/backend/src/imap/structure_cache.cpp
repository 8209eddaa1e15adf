#include "imap/structure_cache.hpp"

#include <utility>

namespace hamail::backend::imap_fetch {

namespace {

std::size_t string_bytes(const std::string& s) noexcept {
  // Short strings live inside the object (counted with it).
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

std::size_t optional_bytes(const std::optional<std::string>& s) noexcept {
  return s ? string_bytes(*s) : 0;
}

std::size_t params_bytes(const std::vector<mime::param>& v) noexcept {
  std::size_t n = v.capacity() * sizeof(mime::param);
  for (const auto& p : v) n += string_bytes(p.name) + string_bytes(p.value);
  return n;
}

std::size_t addresses_bytes(const std::vector<mime::address>& v) noexcept {
  std::size_t n = v.capacity() * sizeof(mime::address);
  for (const auto& a : v) {
    n += optional_bytes(a.name) + optional_bytes(a.adl) + optional_bytes(a.mailbox) +
         optional_bytes(a.host);
  }
  return n;
}

std::size_t envelope_bytes(const mime::envelope& e) noexcept {
  return optional_bytes(e.date) + optional_bytes(e.subject) + addresses_bytes(e.from) +
         addresses_bytes(e.sender) + addresses_bytes(e.reply_to) + addresses_bytes(e.to) +
         addresses_bytes(e.cc) + addresses_bytes(e.bcc) + optional_bytes(e.in_reply_to) +
         optional_bytes(e.message_id);
}

// The bytes a part owns outside its own object.
std::size_t part_bytes(const mime::part& p) noexcept {
  std::size_t n = string_bytes(p.type) + string_bytes(p.subtype) + params_bytes(p.params) +
                  optional_bytes(p.id) + optional_bytes(p.description) + string_bytes(p.encoding) +
                  optional_bytes(p.md5) + optional_bytes(p.disposition) +
                  params_bytes(p.disposition_params) + optional_bytes(p.location);
  n += p.language.capacity() * sizeof(std::string);
  for (const auto& l : p.language) n += string_bytes(l);
  if (p.message_envelope) n += envelope_bytes(*p.message_envelope);
  n += p.children.capacity() * sizeof(mime::part);
  for (const auto& c : p.children) n += part_bytes(c);
  return n;
}

// What an entry costs besides its structure: the list node, the index slot
// and the shared_ptr control block, roughly.
constexpr std::size_t entry_overhead = 160;

}  // namespace

std::size_t estimated_size(const mime::message_structure& structure) noexcept {
  return sizeof(mime::message_structure) + part_bytes(structure.root) +
         envelope_bytes(structure.env) + structure.header_text.capacity();
}

structure_cache::structure_cache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

std::string structure_cache::key(std::string_view account, std::string_view mailbox,
                                 std::uint32_t uid_validity, std::uint32_t uid) {
  // Account ids and mailbox names hold no NUL, so NUL separates them unambiguously.
  std::string k;
  k.reserve(account.size() + mailbox.size() + 24);
  k.append(account).push_back('\0');
  k.append(mailbox).push_back('\0');
  k.append(std::to_string(uid_validity)).push_back('\0');
  k.append(std::to_string(uid));
  return k;
}

std::shared_ptr<const mime::message_structure> structure_cache::find(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(std::string_view(key));
  if (it == index_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  ++stats_.hits;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->structure;
}

void structure_cache::insert(std::string key,
                             std::shared_ptr<const mime::message_structure> structure) {
  if (!structure) return;
  const std::size_t bytes = estimated_size(*structure) + key.size() + entry_overhead;
  std::lock_guard lock(mutex_);
  if (const auto it = index_.find(std::string_view(key)); it != index_.end()) {
    stats_.bytes -= it->second->bytes;
    --stats_.entries;
    const auto node = it->second;
    index_.erase(it);
    lru_.erase(node);
  }
  if (bytes > max_bytes_) return;
  evict_to(max_bytes_ - bytes);
  lru_.push_front(entry{std::move(key), std::move(structure), bytes});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  stats_.bytes += bytes;
  ++stats_.entries;
}

std::shared_ptr<const mime::message_structure> structure_cache::parse_and_insert(
    std::string key, std::string_view raw) {
  auto structure = std::make_shared<const mime::message_structure>(mime::parse(raw));
  insert(std::move(key), structure);
  return structure;
}

void structure_cache::erase(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(std::string_view(key));
  if (it == index_.end()) return;
  stats_.bytes -= it->second->bytes;
  --stats_.entries;
  const auto node = it->second;
  index_.erase(it);
  lru_.erase(node);
}

void structure_cache::clear() {
  std::lock_guard lock(mutex_);
  index_.clear();
  lru_.clear();
  stats_.bytes = 0;
  stats_.entries = 0;
}

void structure_cache::set_max_bytes(std::size_t max_bytes) {
  std::lock_guard lock(mutex_);
  max_bytes_ = max_bytes;
  evict_to(max_bytes);
}

std::size_t structure_cache::max_bytes() const {
  std::lock_guard lock(mutex_);
  return max_bytes_;
}

structure_cache::stats structure_cache::counters() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

structure_cache& structure_cache::process_wide() {
  static structure_cache cache(64u << 20);
  return cache;
}

void structure_cache::evict_to(std::size_t budget) {
  while (!lru_.empty() && stats_.bytes > budget) {
    const entry& victim = lru_.back();
    stats_.bytes -= victim.bytes;
    --stats_.entries;
    ++stats_.evictions;
    index_.erase(std::string_view(victim.key));
    lru_.pop_back();
  }
}

}  // namespace hamail::backend::imap_fetch

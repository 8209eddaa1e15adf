#include "common.hpp"

#include <algorithm>
#include <charconv>
#include <exception>

#include "hamail/core/log.hpp"

namespace hamail::store {

namespace detail {

subscription subscriber_list::add(change_callback callback) {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    callbacks_.emplace(id, std::move(callback));
  }
  std::weak_ptr<subscriber_list> weak = weak_from_this();
  return subscription([weak, id] {
    if (auto self = weak.lock()) {
      // Taking the mutex waits for a notification in progress on another thread.
      std::lock_guard lock(self->mutex_);
      self->callbacks_.erase(id);
    }
  });
}

void subscriber_list::notify(std::span<const mailbox_change> changes) {
  if (changes.empty()) return;
  std::lock_guard lock(mutex_);
  for (auto& [id, cb] : callbacks_) {
    // The change is durable and done: a failing subscriber must not undo it,
    // skip the others or unwind a group-commit leader.
    try {
      cb(changes);
    } catch (const std::exception& e) {
      log::error("store: a change subscriber failed: {}", e.what());
    } catch (...) {
      log::error("store: a change subscriber failed");
    }
  }
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

result<void> validate_flags(const message_flags& flags) {
  for (const auto& k : flags.keywords) {
    auto r = validate_keyword(k);
    if (!r) return r;
  }
  return ok();
}

message_flags apply_flag_mode(const message_flags& current, flag_mode mode,
                              const message_flags& given) {
  message_flags out;
  switch (mode) {
    case flag_mode::replace:
      out.system = given.system;
      for (const auto& k : given.keywords) {
        if (out.has_keyword(k)) continue;
        // Keep the spelling the message already had.
        auto it = std::find_if(current.keywords.begin(), current.keywords.end(),
                               [&](const std::string& c) { return iequals(c, k); });
        out.keywords.push_back(it != current.keywords.end() ? *it : k);
      }
      return out;
    case flag_mode::add:
      out = current;
      out.system |= given.system;
      for (const auto& k : given.keywords)
        if (!out.has_keyword(k)) out.keywords.push_back(k);
      return out;
    case flag_mode::remove:
      out.system = static_cast<std::uint8_t>(current.system & ~given.system);
      for (const auto& k : current.keywords)
        if (!given.has_keyword(k)) out.keywords.push_back(k);
      return out;
  }
  return current;
}

keyword_table keyword_table::parse(std::string_view content) {
  keyword_table t;
  while (!content.empty()) {
    const auto nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content = nl == std::string_view::npos ? std::string_view() : content.substr(nl + 1);
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    std::size_t idx = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + sp, idx);
    if (ec != std::errc() || p != line.data() + sp || idx >= max_keywords) continue;
    const std::string_view name = line.substr(sp + 1);
    if (!validate_keyword(name) || iequals(name, forwarded_keyword)) continue;
    if (t.names_.size() <= idx) t.names_.resize(idx + 1);
    t.names_[idx] = std::string(name);
  }
  return t;
}

std::string keyword_table::serialize() const {
  std::string out;
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (!names_[i].empty()) out += std::to_string(i) + " " + names_[i] + "\n";
  return out;
}

std::optional<std::size_t> keyword_table::find(std::string_view name) const {
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (!names_[i].empty() && iequals(names_[i], name)) return i;
  return std::nullopt;
}

std::optional<std::size_t> keyword_table::add(std::string_view name) {
  if (auto i = find(name)) return i;
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (names_[i].empty()) {
      names_[i] = std::string(name);
      return i;
    }
  if (names_.size() >= max_keywords) return std::nullopt;
  names_.emplace_back(name);
  return names_.size() - 1;
}

std::string_view keyword_table::name(std::size_t i) const {
  return i < names_.size() ? std::string_view(names_[i]) : std::string_view();
}

result<stored_flags> to_stored(const message_flags& flags, keyword_table& table, bool add_missing,
                               bool& table_changed) {
  stored_flags out;
  out.system = static_cast<std::uint8_t>(flags.system & 0x1F);
  for (const auto& k : flags.keywords) {
    if (iequals(k, forwarded_keyword)) {
      out.system |= flag_passed;
      continue;
    }
    auto idx = table.find(k);
    if (!idx && add_missing) {
      idx = table.add(k);
      if (!idx)
        return error::permanent(errc::limit_exceeded, "too many keywords in this mailbox",
                                "all 26 keyword letters are in use");
      table_changed = true;
    }
    if (idx) out.keywords |= 1u << *idx;
  }
  return out;
}

message_flags to_message_flags(stored_flags flags, const keyword_table& table) {
  message_flags out;
  out.system = static_cast<std::uint8_t>(flags.system & 0x1F);
  if ((flags.system & flag_passed) != 0) out.keywords.emplace_back(forwarded_keyword);
  for (std::size_t i = 0; i < max_keywords; ++i) {
    if ((flags.keywords & (1u << i)) == 0) continue;
    const auto n = table.name(i);
    if (!n.empty()) out.keywords.emplace_back(n);
  }
  return out;
}

internal_date now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace detail

bool message_flags::has_keyword(std::string_view keyword) const noexcept {
  return std::any_of(keywords.begin(), keywords.end(),
                     [&](const std::string& k) { return detail::iequals(k, keyword); });
}

bool message_flags::same_as(const message_flags& other) const noexcept {
  if (system != other.system) return false;
  for (const auto& k : keywords)
    if (!other.has_keyword(k)) return false;
  for (const auto& k : other.keywords)
    if (!has_keyword(k)) return false;
  return true;
}

result<void> validate_keyword(std::string_view keyword) {
  if (keyword.empty() || keyword.size() > 128)
    return error::permanent(errc::invalid_input, "invalid keyword", "keyword length");
  if (keyword.front() == '\\')
    return error::permanent(errc::invalid_input, "invalid keyword", "system flag name");
  for (char ch : keyword) {
    const auto c = static_cast<unsigned char>(ch);
    // atom-specials (RFC 3501): ( ) { SP CTL % * " \ ] and non-ASCII.
    if (c <= 0x20 || c >= 0x7F || ch == '(' || ch == ')' || ch == '{' || ch == '%' || ch == '*' ||
        ch == '"' || ch == '\\' || ch == ']')
      return error::permanent(errc::invalid_input, "invalid keyword", "keyword character");
  }
  return ok();
}

result<sealed_message> incoming_message::finish(std::optional<internal_date> date) {
  auto body = sink_->finish(date.value_or(detail::now_seconds()));
  if (!body) return std::move(body).err();
  return sealed_message(std::move(*body));
}

}  // namespace hamail::store

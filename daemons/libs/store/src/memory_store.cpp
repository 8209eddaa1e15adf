// The in-memory store for protocol tests: maildir_store's semantics without files.

#include "hamail/store/memory_store.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>
#include <mutex>
#include <set>

#include "common.hpp"
#include "hamail/store/mailbox_name.hpp"
#include "wire_size.hpp"

namespace hamail::store {

namespace {

using detail::subscriber_list;

struct memory_body final : detail::sealed_body {
  memory_body(std::shared_ptr<const std::string> d, std::uint64_t w, internal_date t)
      : data(std::move(d)), wire(w), when(t) {}
  std::uint64_t size() const noexcept override { return data->size(); }
  std::uint64_t wire_size() const noexcept override { return wire; }
  internal_date date() const noexcept override { return when; }
  std::shared_ptr<const std::string> data;
  std::uint64_t wire;
  internal_date when;
};

class memory_sink final : public detail::message_sink {
 public:
  result<void> write(std::span<const char> bytes) override {
    if (finished_)
      return error::temporary(errc::io_error, "mail storage error", "write after finish");
    buf_.append(bytes.data(), bytes.size());
    wire_.add(std::string_view(bytes.data(), bytes.size()));
    return ok();
  }
  std::uint64_t size() const noexcept override { return buf_.size(); }
  result<std::shared_ptr<detail::sealed_body>> finish(internal_date date) override {
    if (finished_) return error::temporary(errc::io_error, "mail storage error", "finish twice");
    finished_ = true;
    const std::uint64_t wire = wire_.wire_size(buf_.size());
    return std::shared_ptr<detail::sealed_body>(std::make_shared<memory_body>(
        std::make_shared<const std::string>(std::move(buf_)), wire, date));
  }

 private:
  std::string buf_;
  detail::wire_counter wire_;
  bool finished_ = false;
};

struct memory_message {
  imap_uid uid = 0;
  mod_seq modseq = 0;
  message_flags flags;
  internal_date date{};
  std::shared_ptr<const std::string> body;
  std::uint64_t wire_size = 0;  ///< message_info::wire_size of body
  bool recent = false;
};

struct box_data {
  std::string name;
  std::uint32_t uid_validity = 0;
  imap_uid uid_next = 1;
  mod_seq highest_modseq = 0;
  std::vector<memory_message> messages;  // ascending uid
  bool deleted = false;
  std::mutex write_mutex;  // held across a change and its notification
  std::shared_ptr<subscriber_list> subscribers = std::make_shared<subscriber_list>();

  memory_message* find(imap_uid uid) {
    auto it = std::lower_bound(messages.begin(), messages.end(), uid,
                               [](const memory_message& m, imap_uid u) { return m.uid < u; });
    return (it != messages.end() && it->uid == uid) ? &*it : nullptr;
  }
};

error no_mailbox() { return error::permanent(errc::not_found, "no such mailbox"); }

std::vector<imap_uid> sorted_unique(std::span<const imap_uid> uids) {
  std::vector<imap_uid> v(uids.begin(), uids.end());
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

/// The spelling a mailbox already uses for each keyword, like maildir's keyword table.
message_flags canonical_keywords(const box_data& box, message_flags flags) {
  for (auto& k : flags.keywords) {
    for (const auto& m : box.messages)
      for (const auto& existing : m.flags.keywords)
        if (detail::iequals(existing, k)) {
          k = existing;
          goto next;
        }
  next:;
  }
  return flags;
}

std::size_t distinct_keywords(const box_data& box, const message_flags& extra) {
  std::vector<std::string> seen;
  auto note = [&](const std::string& k) {
    if (detail::iequals(k, detail::forwarded_keyword)) return;
    for (const auto& s : seen)
      if (detail::iequals(s, k)) return;
    seen.push_back(k);
  };
  for (const auto& m : box.messages)
    for (const auto& k : m.flags.keywords) note(k);
  for (const auto& k : extra.keywords) note(k);
  return seen.size();
}

}  // namespace

struct memory_store::impl : std::enable_shared_from_this<memory_store::impl> {
  quota_limits default_quota;
  std::mutex mutex;  // guards accounts and every box_data field but write_mutex/subscribers
  std::map<std::string, std::map<std::string, std::shared_ptr<box_data>>> accounts;
  std::uint32_t last_uid_validity = 0;

  std::uint32_t new_uid_validity() {
    last_uid_validity =
        std::max(static_cast<std::uint32_t>(std::time(nullptr)), last_uid_validity + 1);
    return last_uid_validity;
  }
  std::shared_ptr<box_data> make_box(const std::string& name) {
    auto b = std::make_shared<box_data>();
    b->name = name;
    b->uid_validity = new_uid_validity();
    return b;
  }
  // Caller holds mutex.
  std::map<std::string, std::shared_ptr<box_data>>& account_locked(const std::string& account) {
    auto& boxes = accounts[account];
    if (!boxes.count("INBOX")) boxes["INBOX"] = make_box("INBOX");
    return boxes;
  }
  result<std::shared_ptr<box_data>> find_box(std::string_view account, std::string_view name) {
    if (auto v = validate_account_id(account); !v) return std::move(v).err();
    auto canonical = validate_mailbox_name(name);
    if (!canonical) return std::move(canonical).err();
    std::lock_guard lock(mutex);
    auto& boxes = account_locked(std::string(account));
    auto it = boxes.find(*canonical);
    if (it == boxes.end()) return no_mailbox();
    return it->second;
  }
  // Caller holds mutex.
  std::uint64_t usage_bytes_locked(const std::string& account, std::uint64_t& count) {
    std::uint64_t bytes = 0;
    count = 0;
    for (const auto& [n, b] : accounts[account])
      for (const auto& m : b->messages) bytes += m.body->size(), ++count;
    return bytes;
  }

  /// Adds messages to `box` (whose write_mutex the caller holds), checking quota.
  result<std::vector<delivered>> add_locked_box(const std::string& account, box_data& box,
                                                std::vector<memory_message> incoming,
                                                const quota_limits& q,
                                                std::vector<mailbox_change>& changes) {
    std::lock_guard lock(mutex);
    if (box.deleted) return no_mailbox();
    std::uint64_t count = 0;
    std::uint64_t bytes = usage_bytes_locked(account, count);
    std::uint64_t add_bytes = 0;
    message_flags all_flags;
    for (const auto& m : incoming) {
      add_bytes += m.body->size();
      if (q.bytes != 0 && m.body->size() > q.bytes)
        return error::permanent(errc::quota_exceeded, "message too large for mailbox quota");
      all_flags.keywords.insert(all_flags.keywords.end(), m.flags.keywords.begin(),
                                m.flags.keywords.end());
    }
    if ((q.bytes != 0 && bytes + add_bytes > q.bytes) ||
        (q.messages != 0 && count + incoming.size() > q.messages))
      return error::temporary(errc::quota_exceeded, "mailbox is over quota");
    if (distinct_keywords(box, all_flags) > detail::max_keywords)
      return error::permanent(errc::limit_exceeded, "too many keywords in this mailbox");
    std::vector<delivered> out;
    for (auto& m : incoming) {
      m.flags = canonical_keywords(box, std::move(m.flags));
      m.uid = box.uid_next++;
      m.modseq = ++box.highest_modseq;
      m.recent = m.flags.system == 0 &&
                 m.flags.keywords.empty();  // as maildir: flagged arrivals skip new/
      out.push_back({m.uid, box.uid_validity, m.modseq});
      changes.push_back({mailbox_change::kind_t::exists, m.uid, m.modseq, m.flags});
      box.messages.push_back(std::move(m));
    }
    return out;
  }
};

namespace {

class memory_mailbox final : public mailbox {
 public:
  memory_mailbox(std::shared_ptr<memory_store::impl> store, std::string account,
                 std::shared_ptr<box_data> box)
      : store_(std::move(store)), account_(std::move(account)), box_(std::move(box)) {}

  std::string account() const override { return account_; }
  std::string name() const override {
    std::lock_guard lock(store_->mutex);
    return box_->name;
  }
  result<mailbox_snapshot> snapshot() const override {
    std::lock_guard lock(store_->mutex);
    if (box_->deleted) return no_mailbox();
    mailbox_snapshot s;
    s.uid_validity = box_->uid_validity;
    s.uid_next = box_->uid_next;
    s.highest_modseq = box_->highest_modseq;
    for (const auto& m : box_->messages)
      s.messages.push_back({.uid = m.uid,
                            .modseq = m.modseq,
                            .flags = m.flags,
                            .date = m.date,
                            .size = m.body->size(),
                            .wire_size = m.wire_size,
                            .recent = m.recent});
    return s;
  }
  result<mailbox_status> status() const override {
    std::lock_guard lock(store_->mutex);
    if (box_->deleted) return no_mailbox();
    mailbox_status s;
    s.uid_next = box_->uid_next;
    s.uid_validity = box_->uid_validity;
    s.highest_modseq = box_->highest_modseq;
    s.messages = static_cast<std::uint32_t>(box_->messages.size());
    for (const auto& m : box_->messages) {
      if (m.recent) ++s.recent;
      if (!m.flags.has(system_flag::seen)) ++s.unseen;
      s.size += m.body->size();
    }
    return s;
  }
  result<message_file> read_message(imap_uid uid) override {
    std::shared_ptr<const std::string> body;
    {
      std::lock_guard lock(store_->mutex);
      if (box_->deleted) return no_mailbox();
      auto* m = box_->find(uid);
      if (m == nullptr) return error::permanent(errc::not_found, "no such message");
      body = m->body;
    }
    const int fd = ::memfd_create("hamail-message", MFD_CLOEXEC);
    if (fd < 0)
      return error::temporary(errc::io_error, "mail storage error", "memfd_create failed");
    message_file out;
    out.fd = unique_fd(fd);
    std::size_t off = 0;
    while (off < body->size()) {
      const ssize_t n = ::write(fd, body->data() + off, body->size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return error::temporary(errc::io_error, "mail storage error", "memfd write failed");
      }
      off += static_cast<std::size_t>(n);
    }
    ::lseek(fd, 0, SEEK_SET);
    out.size = body->size();
    return out;
  }
  result<store_outcome> set_flags(std::span<const imap_uid> uids, flag_mode mode,
                                  const message_flags& flags,
                                  std::optional<mod_seq> unchanged_since) override {
    if (auto v = detail::validate_flags(flags); !v) return std::move(v).err();
    std::lock_guard w(box_->write_mutex);
    store_outcome out;
    std::vector<mailbox_change> changes;
    {
      std::lock_guard lock(store_->mutex);
      if (box_->deleted) return no_mailbox();
      if (mode != flag_mode::remove && distinct_keywords(*box_, flags) > detail::max_keywords)
        return error::permanent(errc::limit_exceeded, "too many keywords in this mailbox");
      const message_flags given = canonical_keywords(*box_, flags);
      for (imap_uid uid : sorted_unique(uids)) {
        auto* m = box_->find(uid);
        if (m == nullptr) continue;
        if (unchanged_since && m->modseq > *unchanged_since) {
          out.modified.push_back(uid);
          continue;
        }
        message_flags nf = detail::apply_flag_mode(m->flags, mode, given);
        if (nf.same_as(m->flags)) continue;
        m->flags = std::move(nf);
        m->modseq = ++box_->highest_modseq;
        out.changed.push_back({uid, m->modseq, m->flags});
        changes.push_back({mailbox_change::kind_t::flags, uid, m->modseq, m->flags});
      }
    }
    box_->subscribers->notify(changes);
    return out;
  }
  result<std::vector<imap_uid>> expunge(std::span<const imap_uid> uids) override {
    std::lock_guard w(box_->write_mutex);
    std::vector<imap_uid> out;
    std::vector<mailbox_change> changes;
    {
      std::lock_guard lock(store_->mutex);
      if (box_->deleted) return no_mailbox();
      for (imap_uid uid : sorted_unique(uids)) {
        auto* m = box_->find(uid);
        if (m == nullptr) continue;
        box_->messages.erase(box_->messages.begin() + (m - box_->messages.data()));
        out.push_back(uid);
        changes.push_back({mailbox_change::kind_t::expunge, uid, ++box_->highest_modseq, {}});
      }
    }
    box_->subscribers->notify(changes);
    return out;
  }
  result<delivered> append(const sealed_message& message, const message_flags& flags,
                           std::optional<internal_date> date,
                           std::optional<quota_limits> quota) override {
    const auto* body = dynamic_cast<const memory_body*>(message.body().get());
    if (body == nullptr) return error::internal_error("sealed message belongs to another store");
    if (auto v = detail::validate_flags(flags); !v) return std::move(v).err();
    std::vector<memory_message> in(1);
    in[0].flags = flags;
    in[0].date = date.value_or(body->when);
    in[0].body = body->data;
    in[0].wire_size = body->wire;
    std::lock_guard w(box_->write_mutex);
    std::vector<mailbox_change> changes;
    auto r = store_->add_locked_box(account_, *box_, std::move(in),
                                    quota.value_or(store_->default_quota), changes);
    if (!r) return std::move(r).err();
    box_->subscribers->notify(changes);
    return r->front();
  }
  result<copy_result> copy(std::span<const imap_uid> uids, std::string_view destination,
                           std::optional<quota_limits> quota) override {
    auto dest = store_->find_box(account_, destination);
    if (!dest) return std::move(dest).err();
    std::vector<memory_message> in;
    std::vector<imap_uid> sources;
    {
      std::lock_guard lock(store_->mutex);
      if (box_->deleted) return no_mailbox();
      for (imap_uid uid : sorted_unique(uids)) {
        auto* m = box_->find(uid);
        if (m == nullptr) continue;
        memory_message c;
        c.flags = m->flags;
        c.date = m->date;
        c.body = m->body;
        c.wire_size = m->wire_size;
        in.push_back(std::move(c));
        sources.push_back(uid);
      }
    }
    copy_result out;
    std::lock_guard w((*dest)->write_mutex);
    std::vector<mailbox_change> changes;
    {
      std::lock_guard lock(store_->mutex);
      out.uid_validity = (*dest)->uid_validity;
    }
    if (in.empty()) return out;
    auto r = store_->add_locked_box(account_, **dest, std::move(in),
                                    quota.value_or(store_->default_quota), changes);
    if (!r) return std::move(r).err();
    for (std::size_t i = 0; i < r->size(); ++i) out.uids.emplace_back(sources[i], (*r)[i].uid);
    (*dest)->subscribers->notify(changes);
    return out;
  }
  result<copy_result> move(std::span<const imap_uid> uids, std::string_view destination,
                           std::optional<quota_limits> quota) override {
    // A move inside the account leaves its usage as it was: never refused for
    // quota; the copy's limits are raised by what the expunge will free.
    quota_limits limits = quota.value_or(store_->default_quota);
    if (!limits.unlimited()) {
      std::uint64_t bytes = 0, count = 0;
      {
        std::lock_guard lock(store_->mutex);
        for (const auto& m : box_->messages) {
          if (std::find(uids.begin(), uids.end(), m.uid) == uids.end()) continue;
          bytes += m.body->size();
          ++count;
        }
      }
      if (limits.bytes != 0) limits.bytes += bytes;
      if (limits.messages != 0) limits.messages += count;
    }
    auto copied = copy(uids, destination, limits);
    if (!copied) return copied;
    std::vector<imap_uid> sources;
    for (const auto& [from, to] : copied->uids) sources.push_back(from);
    auto gone = expunge(sources);
    if (!gone) return std::move(gone).err();
    return copied;
  }
  subscription subscribe(change_callback callback) override {
    return box_->subscribers->add(std::move(callback));
  }
  result<std::vector<imap_uid>> claim_recent() override {
    std::lock_guard w(box_->write_mutex);
    std::lock_guard lock(store_->mutex);
    if (box_->deleted) return no_mailbox();
    std::vector<imap_uid> out;
    for (auto& m : box_->messages)
      if (m.recent) m.recent = false, out.push_back(m.uid);
    return out;
  }

 private:
  std::shared_ptr<memory_store::impl> store_;
  std::string account_;
  std::shared_ptr<box_data> box_;
};

}  // namespace

memory_store::memory_store(quota_limits default_quota) : impl_(std::make_shared<impl>()) {
  impl_->default_quota = default_quota;
}

memory_store::~memory_store() = default;

result<incoming_message> memory_store::begin_delivery() {
  return incoming_message(std::make_unique<memory_sink>());
}

std::vector<result<delivered>> memory_store::deliver(const sealed_message& message,
                                                     std::span<const delivery_target> targets) {
  std::vector<result<delivered>> out;
  const auto* body = dynamic_cast<const memory_body*>(message.body().get());
  for (const auto& t : targets) {
    if (body == nullptr) {
      out.emplace_back(error::internal_error("sealed message belongs to another store"));
      continue;
    }
    if (auto v = detail::validate_flags(t.flags); !v) {
      out.emplace_back(std::move(v).err());
      continue;
    }
    auto box = impl_->find_box(t.account, t.mailbox);
    if (!box) {
      out.emplace_back(std::move(box).err());
      continue;
    }
    std::vector<memory_message> in(1);
    in[0].flags = t.flags;
    in[0].date = t.date.value_or(body->when);
    in[0].body = body->data;
    in[0].wire_size = body->wire;
    std::lock_guard w((*box)->write_mutex);
    std::vector<mailbox_change> changes;
    auto r = impl_->add_locked_box(t.account, **box, std::move(in),
                                   t.quota.value_or(impl_->default_quota), changes);
    if (!r) {
      out.emplace_back(std::move(r).err());
      continue;
    }
    (*box)->subscribers->notify(changes);
    out.emplace_back(r->front());
  }
  return out;
}

result<void> memory_store::create_mailbox(std::string_view account, std::string_view name) {
  if (auto v = validate_account_id(account); !v) return v;
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  if (*canonical == "INBOX") return error::permanent(errc::already_exists, "INBOX always exists");
  std::lock_guard lock(impl_->mutex);
  auto& boxes = impl_->account_locked(std::string(account));
  if (boxes.count(*canonical))
    return error::permanent(errc::already_exists, "mailbox already exists");
  for (std::size_t pos = canonical->find('/'); pos != std::string::npos;
       pos = canonical->find('/', pos + 1)) {
    const std::string parent = canonical->substr(0, pos);
    if (!boxes.count(parent)) boxes[parent] = impl_->make_box(parent);
  }
  boxes[*canonical] = impl_->make_box(*canonical);
  return ok();
}

result<void> memory_store::delete_mailbox(std::string_view account, std::string_view name) {
  if (auto v = validate_account_id(account); !v) return v;
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  if (*canonical == "INBOX")
    return error::permanent(errc::permission_denied, "INBOX cannot be deleted");
  std::shared_ptr<box_data> box;
  {
    std::lock_guard lock(impl_->mutex);
    auto& boxes = impl_->account_locked(std::string(account));
    auto it = boxes.find(*canonical);
    if (it == boxes.end()) return no_mailbox();
    const std::string prefix = *canonical + "/";
    for (const auto& [n, b] : boxes)
      if (n.compare(0, prefix.size(), prefix) == 0)
        return error::permanent(errc::permission_denied, "mailbox has children; delete them first");
    box = it->second;
  }
  std::lock_guard w(box->write_mutex);
  std::lock_guard lock(impl_->mutex);
  auto& boxes = impl_->account_locked(std::string(account));
  auto it = boxes.find(*canonical);
  if (it == boxes.end() || it->second != box) return no_mailbox();
  box->deleted = true;
  box->messages.clear();
  boxes.erase(it);
  return ok();
}

result<void> memory_store::rename_mailbox(std::string_view account, std::string_view from,
                                          std::string_view to) {
  if (auto v = validate_account_id(account); !v) return v;
  auto src = validate_mailbox_name(from);
  if (!src) return std::move(src).err();
  auto dst = validate_mailbox_name(to);
  if (!dst) return std::move(dst).err();
  if (*dst == "INBOX" || *dst == *src)
    return error::permanent(errc::already_exists, "mailbox already exists");
  if (dst->compare(0, src->size() + 1, *src + "/") == 0)
    return error::permanent(errc::invalid_input, "cannot move a mailbox into itself");
  if (*src == "INBOX") {
    if (auto c = create_mailbox(account, *dst); !c) return c;
    auto inbox = open_mailbox(account, "INBOX");
    if (!inbox) return std::move(inbox).err();
    auto snap = (*inbox)->snapshot();
    if (!snap) return std::move(snap).err();
    std::vector<imap_uid> uids;
    for (const auto& m : snap->messages) uids.push_back(m.uid);
    if (uids.empty()) return ok();
    auto moved = (*inbox)->move(uids, *dst, quota_limits{});
    if (!moved) return std::move(moved).err();
    return ok();
  }
  std::lock_guard lock(impl_->mutex);
  auto& boxes = impl_->account_locked(std::string(account));
  if (!boxes.count(*src)) return no_mailbox();
  std::vector<std::pair<std::string, std::string>> ops;
  const std::string prefix = *src + "/";
  for (const auto& [n, b] : boxes) {
    if (n != *src && n.compare(0, prefix.size(), prefix) != 0) continue;
    std::string nn = *dst + n.substr(src->size());
    auto checked = validate_mailbox_name(nn);
    if (!checked) return std::move(checked).err();
    if (boxes.count(nn)) return error::permanent(errc::already_exists, "mailbox already exists");
    ops.emplace_back(n, std::move(nn));
  }
  for (std::size_t pos = dst->find('/'); pos != std::string::npos; pos = dst->find('/', pos + 1)) {
    const std::string parent = dst->substr(0, pos);
    if (!boxes.count(parent)) boxes[parent] = impl_->make_box(parent);
  }
  for (const auto& [o, n] : ops) {
    auto b = boxes[o];
    boxes.erase(o);
    b->name = n;
    boxes[n] = b;
  }
  return ok();
}

result<std::vector<mailbox_list_entry>> memory_store::list_mailboxes(std::string_view account) {
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  std::set<std::string> existing;
  {
    std::lock_guard lock(impl_->mutex);
    for (const auto& [n, b] : impl_->account_locked(std::string(account))) existing.insert(n);
  }
  std::set<std::string> all = existing;
  for (const auto& n : existing)
    for (std::size_t pos = n.find('/'); pos != std::string::npos; pos = n.find('/', pos + 1))
      all.insert(n.substr(0, pos));
  std::vector<mailbox_list_entry> out;
  for (const auto& n : all) {
    auto at = all.lower_bound(n + "/");
    out.push_back(
        {n, existing.count(n) != 0, at != all.end() && at->compare(0, n.size() + 1, n + "/") == 0});
  }
  std::stable_partition(out.begin(), out.end(),
                        [](const mailbox_list_entry& e) { return e.name == "INBOX"; });
  return out;
}

result<mailbox_status> memory_store::status(std::string_view account, std::string_view name) {
  auto box = open_mailbox(account, name);
  if (!box) return std::move(box).err();
  return (*box)->status();
}

result<std::shared_ptr<mailbox>> memory_store::open_mailbox(std::string_view account,
                                                            std::string_view name) {
  auto box = impl_->find_box(account, name);
  if (!box) return std::move(box).err();
  return std::shared_ptr<mailbox>(
      std::make_shared<memory_mailbox>(impl_, std::string(account), std::move(*box)));
}

result<std::optional<store::quota_usage>> memory_store::quota_usage(std::string_view account) {
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  std::lock_guard lock(impl_->mutex);
  store::quota_usage out;
  auto it = impl_->accounts.find(std::string(account));
  if (it != impl_->accounts.end())
    for (const auto& [n, b] : it->second)
      for (const auto& m : b->messages) out.bytes += m.body->size(), ++out.messages;
  return std::optional<store::quota_usage>(out);
}

}  // namespace hamail::store

// One on-disk mailbox: load/repair, flag changes, expunge, \Recent, copy, and
// the per-mailbox half of group commit.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "hamail/core/log.hpp"
#include "hamail/store/mailbox_name.hpp"
#include "maildir_impl.hpp"
#include "posix_io.hpp"

namespace hamail::store::detail {

namespace {

error mailbox_gone() {
  return error::permanent(errc::not_found, "no such mailbox", "mailbox was deleted");
}

std::optional<std::uint32_t> parse_uid_validity(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v == 0) return std::nullopt;
  return v;
}

stored_flags apply_mode(stored_flags cur, flag_mode mode, stored_flags given) {
  switch (mode) {
    case flag_mode::add:
      return {static_cast<std::uint8_t>(cur.system | given.system), cur.keywords | given.keywords};
    case flag_mode::remove:
      return {static_cast<std::uint8_t>(cur.system & ~given.system),
              cur.keywords & ~given.keywords};
    case flag_mode::replace:
      return given;
  }
  return cur;
}

std::vector<imap_uid> sorted_unique(std::span<const imap_uid> uids) {
  std::vector<imap_uid> v(uids.begin(), uids.end());
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

maildir_mailbox::maildir_mailbox(std::shared_ptr<maildir_store::impl> store,
                                 std::shared_ptr<account_locks> locks, std::string account,
                                 std::string name, fs::path dir)
    : store_(std::move(store)),
      locks_(std::move(locks)),
      account_(std::move(account)),
      name_(std::move(name)),
      dir_(std::move(dir)) {}

std::string maildir_mailbox::name() const {
  std::lock_guard lock(state_mutex_);
  return name_;
}

fs::path maildir_mailbox::dir() const {
  std::lock_guard lock(state_mutex_);
  return dir_;
}

result<void> maildir_mailbox::ensure_loaded() {
  std::lock_guard w(write_mutex_);
  return fail_if_unusable_locked();
}

result<void> maildir_mailbox::fail_if_unusable_locked() {
  if (deleted_) return mailbox_gone();
  // Not loaded yet, or a failed change left memory and files apart: (re)load.
  if (!loaded_) return load_locked(false, nullptr);
  return ok();
}

void maildir_mailbox::mark_deleted_locked() {
  std::lock_guard lock(state_mutex_);
  deleted_ = true;
  index_fd_.reset();
}

void maildir_mailbox::rename_locked(std::string new_name, fs::path new_dir) {
  std::lock_guard lock(state_mutex_);
  name_ = std::move(new_name);
  dir_ = std::move(new_dir);
}

quota_usage maildir_mailbox::usage_locked() const {
  quota_usage u;
  for (const auto& e : state_.entries) {
    u.bytes += static_cast<std::int64_t>(e.size);
    u.messages += 1;
  }
  return u;
}

std::optional<std::pair<fs::path, index_entry>> maildir_mailbox::locate_locked(imap_uid uid) const {
  const index_entry* e = state_.find(uid);
  if (e == nullptr) return std::nullopt;
  return std::make_pair(dir_ / e->relpath(), *e);
}

result<void> maildir_mailbox::load_locked(bool force_rebuild, rebuild_report* report) {
  const fs::path dir = dir_;
  const bool durable = store_->options.fsync;
  const std::string label = account_ + " " + name_;
  if (store_->options.on_maintenance) store_->options.on_maintenance(account_, "load");
  if (!posix::is_directory(dir / "cur") || !posix::is_directory(dir / "new"))
    return error::permanent(errc::not_found, "no such mailbox",
                            "missing " + (dir / "cur").string());
  if (auto r = posix::make_dir(dir / "tmp", true); !r) return r;

  auto uv_text = posix::read_file(dir / uid_validity_file_name);
  if (!uv_text) return std::move(uv_text).err();
  const std::optional<std::uint32_t> uv_file =
      *uv_text ? parse_uid_validity(**uv_text) : std::nullopt;

  auto kw_text = posix::read_file(dir / keywords_file_name);
  if (!kw_text) return std::move(kw_text).err();
  keyword_table keywords = *kw_text ? keyword_table::parse(**kw_text) : keyword_table{};

  const fs::path index_path = dir / index_file_name;
  auto index_text = posix::read_file(index_path);
  if (!index_text) return std::move(index_text).err();
  replay_result rr;
  bool rebuild = force_rebuild;
  if (!*index_text) {
    if (!force_rebuild)
      log::warning("store: {}: index missing, rebuilding it from the message files", label);
    rebuild = true;
  } else {
    rr = replay_index(**index_text);
    if (rr.outcome == replay_result::outcome_t::damaged) {
      log::warning("store: {}: index damaged ({}), rebuilding it from the message files", label,
                   rr.problem);
      if (report) report->notes.push_back(label + ": index damaged: " + rr.problem);
      rebuild = true;
    } else if (rr.torn_tail && !rebuild) {
      // A crash during the last append: that record was never acknowledged.
      log::notice("store: {}: dropping a torn last index line ({})", label, rr.problem);
      auto fd = posix::open_file(index_path, O_WRONLY);
      if (!fd) return std::move(fd).err();
      if (::ftruncate(fd->get(), static_cast<off_t>(rr.valid_bytes)) != 0)
        return posix::sys_error(errno, "ftruncate", index_path);
      if (auto s = posix::sync_fd(fd->get(), true, durable, index_path); !s) return s;
    }
    if (!rebuild && uv_file && *uv_file != rr.state.uid_validity) {
      log::warning("store: {}: index UIDVALIDITY {} differs from hamail-uidvalidity {}, rebuilding",
                   label, rr.state.uid_validity, *uv_file);
      rebuild = true;
    }
  }

  std::uint32_t uid_validity = 0;
  if (uv_file) {
    uid_validity = *uv_file;
  } else {
    if (rr.header_uid_validity) {
      uid_validity = *rr.header_uid_validity;
      log::warning("store: {}: hamail-uidvalidity lost, restored {} from the index", label,
                   uid_validity);
    } else {
      uid_validity = store_->new_uid_validity();
      log::warning("store: {}: UIDVALIDITY lost, chose {}: clients will resynchronise", label,
                   uid_validity);
      if (report) {
        ++report->uid_validity_renewed;
        report->notes.push_back(label + ": new UIDVALIDITY " + std::to_string(uid_validity));
      }
    }
    auto w = posix::write_file_atomic(dir / uid_validity_file_name,
                                      std::to_string(uid_validity) + "\n", durable);
    if (!w) return w;
  }

  index_state st;
  if (!rebuild) {
    st = std::move(rr.state);
  } else {
    // Stay above every UID and modseq the old index may have handed out.
    st.uid_validity = uid_validity;
    st.uid_next = rr.max_uid_seen + 1;
    st.highest_modseq = rr.max_modseq_seen;
    if (loaded_) {
      // Rebuilding a mailbox in use: never go below what sessions have seen.
      st.uid_next = std::max(st.uid_next, state_.uid_next);
      st.highest_modseq = std::max(st.highest_modseq, state_.highest_modseq);
    }
  }

  auto rec = reconcile(st, dir, name_, true, rebuild);
  if (!rec) return std::move(rec).err();
  if (!rebuild && !rec->found.empty())
    log::notice("store: {}: reconciled {} difference(s) between index and files", label,
                rec->found.size());
  if (rec->touched_new) {
    if (auto s = posix::sync_dir(dir / "new", durable); !s) return s;
  }
  if (rec->touched_cur) {
    if (auto s = posix::sync_dir(dir / "cur", durable); !s) return s;
  }

  if (!tmp_cleaned_) {
    // Before the first load nothing of this process is staged in tmp/: what is
    // there was left by a crash (the store lock excludes other processes). Later
    // reloads must not clean: deliveries stage into tmp/ without our write mutex.
    std::size_t removed = 0;
    if (auto leftovers = posix::list_dir(dir / "tmp")) {
      for (const auto& e : *leftovers) {
        if (e.is_dir)
          posix::remove_tree(dir / "tmp" / e.name);
        else
          (void)posix::unlink_path(dir / "tmp" / e.name, true);
        ++removed;
      }
    }
    // Temporary files of an atomic rewrite (index, keywords, maildirsize) cut short.
    if (auto entries = posix::list_dir(dir)) {
      for (const auto& e : *entries) {
        if (e.is_regular && e.name.find(".tmp.") != std::string::npos &&
            (e.name.starts_with("hamail-") || e.name.starts_with("maildirsize"))) {
          (void)posix::unlink_path(dir / e.name, true);
          ++removed;
        }
      }
    }
    if (removed != 0) log::notice("store: {}: removed {} stale temporary file(s)", label, removed);
    tmp_cleaned_ = true;
  }

  if (rebuild) {
    st.records = st.entries.size() + 2;
    auto w = posix::write_file_atomic(index_path, compact_index(st), durable);
    if (!w) return w;
    index_fd_.reset();
  }
  if (!index_fd_ || rebuild) {
    auto fd = posix::open_file(index_path, O_WRONLY | O_APPEND);
    if (!fd) return std::move(fd).err();
    index_fd_ = std::move(*fd);
  }
  struct stat sb {};
  if (::fstat(index_fd_.get(), &sb) != 0) return posix::sys_error(errno, "fstat", index_path);
  index_size_ = static_cast<std::uint64_t>(sb.st_size);

  if (report) {
    ++report->mailboxes;
    report->messages += st.entries.size();
    report->uids_assigned += rec->uids_assigned;
    if (rec->uids_assigned != 0)
      report->notes.push_back(label + ": " + std::to_string(rec->uids_assigned) +
                              " file(s) got new UIDs");
  }
  // Sessions have seen the state this replaces (unless this is the first load,
  // or UIDVALIDITY changed, which per-UID changes cannot express).
  std::optional<index_state> before;
  if (state_.uid_validity != 0 && state_.uid_validity == st.uid_validity) before = state_;
  {
    std::lock_guard lock(state_mutex_);
    state_ = std::move(st);
    keywords_ = std::move(keywords);
    loaded_ = true;
  }
  uid_next_dirty_ = false;
  if (!rebuild && !rec->records.empty()) {
    auto a = append_index_locked(rec->records);
    if (!a) {
      std::lock_guard lock(state_mutex_);
      loaded_ = false;
      return a;
    }
  }
  // Durable now: tell subscribers (IMAP IDLE) what the reload found.
  if (before) subscribers_->notify(changes_since(*before, rec->expunged));
  return maybe_compact_locked();
}

std::vector<mailbox_change> maildir_mailbox::changes_since(
    const index_state& before,
    const std::vector<std::pair<imap_uid, mod_seq>>& expunge_modseqs) const {
  std::vector<mailbox_change> out;
  auto add = [&](mailbox_change::kind_t kind, const index_entry& e, mod_seq modseq) {
    mailbox_change c;
    c.kind = kind;
    c.uid = e.uid;
    c.modseq = modseq;
    if (kind != mailbox_change::kind_t::expunge) c.flags = to_message_flags(e.flags, keywords_);
    out.push_back(std::move(c));
  };
  auto old_it = before.entries.begin();
  auto new_it = state_.entries.begin();
  while (old_it != before.entries.end() || new_it != state_.entries.end()) {
    if (new_it == state_.entries.end() ||
        (old_it != before.entries.end() && old_it->uid < new_it->uid)) {
      // Gone. Its X record's modseq when the reconcile wrote one, else the
      // newest (the index on disk already had it expunged).
      mod_seq ms = state_.highest_modseq;
      for (const auto& [uid, m] : expunge_modseqs)
        if (uid == old_it->uid) ms = m;
      add(mailbox_change::kind_t::expunge, *old_it, ms);
      ++old_it;
    } else if (old_it == before.entries.end() || new_it->uid < old_it->uid) {
      add(mailbox_change::kind_t::exists, *new_it, new_it->modseq);
      ++new_it;
    } else {
      if (new_it->modseq != old_it->modseq || !(new_it->flags == old_it->flags))
        add(mailbox_change::kind_t::flags, *new_it, new_it->modseq);
      ++old_it;
      ++new_it;
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const mailbox_change& a, const mailbox_change& b) {
    return a.modseq < b.modseq;
  });
  return out;
}

result<void> maildir_mailbox::append_index_locked(const std::vector<std::string>& payloads) {
  if (payloads.empty() && !uid_next_dirty_) return ok();
  std::string buf;
  for (const auto& p : payloads) buf += seal_line(p);
  if (uid_next_dirty_) buf += seal_line(uid_next_record(state_.uid_next));
  const fs::path path = dir_ / index_file_name;
  auto undo = [&] {
    // Leave no partial record behind: the next append must start on a line.
    if (::ftruncate(index_fd_.get(), static_cast<off_t>(index_size_)) != 0) {
      std::lock_guard lock(state_mutex_);
      loaded_ = false;
    }
  };
  auto w = posix::write_all(index_fd_.get(), buf, path);
  if (!w) {
    undo();
    return w;
  }
  store_->n_index_syncs.fetch_add(1, std::memory_order_relaxed);
  auto s = posix::sync_fd(index_fd_.get(), true, store_->options.fsync, path);
  if (!s) {
    undo();
    return s;
  }
  index_size_ += buf.size();
  state_.records += payloads.size() + (uid_next_dirty_ ? 1 : 0);
  uid_next_dirty_ = false;
  return ok();
}

result<void> maildir_mailbox::maybe_compact_locked() {
  if (state_.records <= state_.entries.size() * 2 + store_->options.compact_slack) return ok();
  const fs::path path = dir_ / index_file_name;
  index_state copy;
  copy.uid_validity = state_.uid_validity;
  copy.uid_next = state_.uid_next;
  copy.highest_modseq = state_.highest_modseq;
  copy.entries = state_.entries;
  auto w = posix::write_file_atomic(path, compact_index(copy), store_->options.fsync);
  if (!w) return w;
  auto fd = posix::open_file(path, O_WRONLY | O_APPEND);
  if (!fd) return std::move(fd).err();
  struct stat sb {};
  if (::fstat(fd->get(), &sb) != 0) return posix::sys_error(errno, "fstat", path);
  index_fd_ = std::move(*fd);
  index_size_ = static_cast<std::uint64_t>(sb.st_size);
  state_.records = state_.entries.size() + 2;
  return ok();
}

result<void> maildir_mailbox::save_keywords_locked() {
  return posix::write_file_atomic(dir_ / keywords_file_name, keywords_.serialize(),
                                  store_->options.fsync);
}

message_info maildir_mailbox::info_of(const index_entry& e) const {
  message_info m;
  m.uid = e.uid;
  m.modseq = e.modseq;
  m.flags = to_message_flags(e.flags, keywords_);
  m.date = internal_date(std::chrono::seconds(e.date));
  m.size = e.size;
  m.wire_size = e.wire_size;
  m.recent = e.recent;
  return m;
}

std::vector<mailbox_change> maildir_mailbox::changes_for(std::span<const index_entry> entries,
                                                         mailbox_change::kind_t kind) const {
  std::vector<mailbox_change> out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    mailbox_change c;
    c.kind = kind;
    c.uid = e.uid;
    c.modseq = e.modseq;
    if (kind != mailbox_change::kind_t::expunge) c.flags = to_message_flags(e.flags, keywords_);
    out.push_back(std::move(c));
  }
  return out;
}

result<mailbox_snapshot> maildir_mailbox::snapshot() const {
  std::lock_guard lock(state_mutex_);
  if (deleted_) return mailbox_gone();
  mailbox_snapshot s;
  s.uid_validity = state_.uid_validity;
  s.uid_next = state_.uid_next;
  s.highest_modseq = state_.highest_modseq;
  s.messages.reserve(state_.entries.size());
  for (const auto& e : state_.entries) s.messages.push_back(info_of(e));
  return s;
}

result<mailbox_status> maildir_mailbox::status() const {
  std::lock_guard lock(state_mutex_);
  if (deleted_) return mailbox_gone();
  mailbox_status s;
  s.uid_next = state_.uid_next;
  s.uid_validity = state_.uid_validity;
  s.highest_modseq = state_.highest_modseq;
  s.messages = static_cast<std::uint32_t>(state_.entries.size());
  for (const auto& e : state_.entries) {
    if (e.recent) ++s.recent;
    if ((e.flags.system & static_cast<std::uint8_t>(system_flag::seen)) == 0) ++s.unseen;
    s.size += e.size;
  }
  return s;
}

result<message_file> maildir_mailbox::read_message(imap_uid uid) {
  auto open_current = [&]() -> result<unique_fd> {
    fs::path path;
    {
      std::lock_guard lock(state_mutex_);
      if (deleted_) return mailbox_gone();
      const index_entry* e = state_.find(uid);
      if (e == nullptr)
        return error::permanent(errc::not_found, "no such message", "uid " + std::to_string(uid));
      path = dir_ / e->relpath();
    }
    return posix::open_if_exists(path, O_RDONLY);
  };
  auto fd = open_current();
  if (fd && !*fd) {
    // Renamed by a flag change in between: retry while no writer can move it.
    std::lock_guard w(write_mutex_);
    fd = open_current();
    if (fd && !*fd)
      return error::permanent(errc::not_found, "message is gone",
                              "uid " + std::to_string(uid) + ": file missing");
  }
  if (!fd) return std::move(fd).err();
  struct stat sb {};
  if (::fstat(fd->get(), &sb) != 0) return posix::sys_error(errno, "fstat message", dir());
  message_file out;
  out.fd = std::move(*fd);
  out.size = static_cast<std::uint64_t>(sb.st_size);
  return out;
}

result<store_outcome> maildir_mailbox::set_flags(std::span<const imap_uid> uids, flag_mode mode,
                                                 const message_flags& flags,
                                                 std::optional<mod_seq> unchanged_since) {
  if (auto v = validate_flags(flags); !v) return std::move(v).err();
  std::lock_guard w(write_mutex_);
  if (auto r = fail_if_unusable_locked(); !r) return std::move(r).err();
  const bool durable = store_->options.fsync;

  keyword_table table = keywords_;
  bool table_changed = false;
  auto given = to_stored(flags, table, mode != flag_mode::remove, table_changed);
  if (!given) return std::move(given).err();
  if (table_changed) {
    {
      std::lock_guard lock(state_mutex_);
      keywords_ = std::move(table);
    }
    if (auto s = save_keywords_locked(); !s) return std::move(s).err();
  }

  store_outcome out;
  std::vector<index_entry> updated;
  std::vector<std::string> payloads;
  bool touched_new = false;
  bool touched_cur = false;
  mod_seq modseq = state_.highest_modseq;
  std::optional<error> failure;
  for (imap_uid uid : sorted_unique(uids)) {
    const index_entry* e = state_.find(uid);
    if (e == nullptr) continue;
    if (unchanged_since && e->modseq > *unchanged_since) {
      out.modified.push_back(uid);
      continue;
    }
    const stored_flags nf = apply_mode(e->flags, mode, *given);
    if (nf == e->flags) continue;
    index_entry ne = *e;
    ne.flags = nf;
    ne.in_new = false;
    ne.modseq = modseq + 1;
    auto r = posix::rename_path(dir_ / e->relpath(), dir_ / ne.relpath());
    if (!r) {
      struct stat sb {};
      if (::stat((dir_ / e->relpath()).c_str(), &sb) != 0 && errno == ENOENT)
        continue;  // removed by hand
      failure = std::move(r).err();
      break;
    }
    ++modseq;
    touched_cur = true;
    touched_new = touched_new || e->in_new;
    payloads.push_back(flags_record(uid, ne.modseq, nf));
    updated.push_back(std::move(ne));
  }
  auto abandon = [&](error e) -> result<store_outcome> {
    // Files and memory disagree now: reload (reconcile) before the next change.
    std::lock_guard lock(state_mutex_);
    loaded_ = false;
    return e;
  };
  if (touched_new) {
    store_->n_dir_syncs.fetch_add(1, std::memory_order_relaxed);
    if (auto s = posix::sync_dir(dir_ / "new", durable); !s) return abandon(std::move(s).err());
  }
  if (touched_cur) {
    store_->n_dir_syncs.fetch_add(1, std::memory_order_relaxed);
    if (auto s = posix::sync_dir(dir_ / "cur", durable); !s) return abandon(std::move(s).err());
  }
  if (auto a = append_index_locked(payloads); !a) return abandon(std::move(a).err());
  {
    std::lock_guard lock(state_mutex_);
    for (const auto& ne : updated) {
      index_entry* e = state_.find(ne.uid);
      const bool recent = e->recent;
      *e = ne;
      e->recent = recent;
    }
    state_.highest_modseq = modseq;
  }
  auto changes = changes_for(updated, mailbox_change::kind_t::flags);
  for (const auto& c : changes) out.changed.push_back({c.uid, c.modseq, c.flags});
  subscribers_->notify(changes);
  (void)maybe_compact_locked();
  if (failure) return std::move(*failure);
  return out;
}

result<std::vector<imap_uid>> maildir_mailbox::expunge(std::span<const imap_uid> uids) {
  std::lock_guard q(locks_->quota_mutex);
  std::lock_guard w(write_mutex_);
  if (auto r = fail_if_unusable_locked(); !r) return std::move(r).err();
  const bool durable = store_->options.fsync;

  std::vector<index_entry> removed;
  bool touched_new = false;
  bool touched_cur = false;
  std::optional<error> failure;
  for (imap_uid uid : sorted_unique(uids)) {
    const index_entry* e = state_.find(uid);
    if (e == nullptr) continue;
    auto r = posix::unlink_path(dir_ / e->relpath(), true);
    if (!r) {
      failure = std::move(r).err();
      break;
    }
    (e->in_new ? touched_new : touched_cur) = true;
    removed.push_back(*e);
  }
  auto abandon = [&](error e) -> result<std::vector<imap_uid>> {
    std::lock_guard lock(state_mutex_);
    loaded_ = false;
    return e;
  };
  // The unlinks are durable before the index says so: a crash in between only
  // makes the reconcile on the next open expunge them again.
  if (touched_new) {
    store_->n_dir_syncs.fetch_add(1, std::memory_order_relaxed);
    if (auto s = posix::sync_dir(dir_ / "new", durable); !s) return abandon(std::move(s).err());
  }
  if (touched_cur) {
    store_->n_dir_syncs.fetch_add(1, std::memory_order_relaxed);
    if (auto s = posix::sync_dir(dir_ / "cur", durable); !s) return abandon(std::move(s).err());
  }
  mod_seq modseq = state_.highest_modseq;
  std::vector<std::string> payloads;
  for (auto& e : removed) {
    e.modseq = ++modseq;
    payloads.push_back(expunge_record(e.uid, e.modseq));
  }
  if (auto a = append_index_locked(payloads); !a) return abandon(std::move(a).err());
  std::vector<imap_uid> out;
  std::int64_t bytes = 0;
  {
    std::lock_guard lock(state_mutex_);
    for (const auto& e : removed) {
      state_.erase(e.uid);
      out.push_back(e.uid);
      bytes += static_cast<std::int64_t>(e.size);
    }
    state_.highest_modseq = modseq;
  }
  if (auto d = append_quota_delta(store_->account_path(account_), -bytes,
                                  -static_cast<std::int64_t>(out.size()));
      !d)
    log::warning("store: {}: maildirsize update failed: {}", account_, d.err().describe());
  subscribers_->notify(changes_for(removed, mailbox_change::kind_t::expunge));
  (void)maybe_compact_locked();
  if (failure) return std::move(*failure);
  return out;
}

result<std::vector<imap_uid>> maildir_mailbox::claim_recent() {
  std::lock_guard w(write_mutex_);
  if (auto r = fail_if_unusable_locked(); !r) return std::move(r).err();
  std::vector<imap_uid> claimed;
  std::vector<std::string> payloads;
  std::vector<imap_uid> moved;
  for (const auto& e : state_.entries) {
    if (!e.recent) continue;
    claimed.push_back(e.uid);
    if (!e.in_new) continue;
    index_entry ne = e;
    ne.in_new = false;
    auto r = posix::rename_path(dir_ / e.relpath(), dir_ / ne.relpath());
    if (!r) continue;  // stays in new/; the next open reconciles
    payloads.push_back(move_record(e.uid, false, e.base));
    moved.push_back(e.uid);
  }
  // The claim persists through the renames to cur/ and these R records: a
  // replay shows a message in cur/ as not recent (docs/store-format.md,
  // "\Recent across restarts"). Deliberately not synced: written before we
  // return, they survive a restart or SIGKILL; a power cut only makes these
  // messages recent again, which is not worth two directory syncs and an
  // fdatasync on every SELECT.
  if (!payloads.empty()) {
    std::string buf;
    for (const auto& p : payloads) buf += seal_line(p);
    auto wr = posix::write_all(index_fd_.get(), buf, dir_ / index_file_name);
    if (!wr) {
      // Best effort: a torn tail left here is dropped by the next open's replay anyway.
      if (::ftruncate(index_fd_.get(), static_cast<off_t>(index_size_)) != 0)
        log::warning("store: {}: cannot cut a failed index append back: {}", dir_.string(),
                     std::strerror(errno));
      std::lock_guard lock(state_mutex_);
      loaded_ = false;  // files moved without records: reconcile before the next change
      return std::move(wr).err();
    }
    index_size_ += buf.size();
    state_.records += payloads.size();
  }
  {
    std::lock_guard lock(state_mutex_);
    for (imap_uid uid : claimed) state_.find(uid)->recent = false;
    for (imap_uid uid : moved) state_.find(uid)->in_new = false;
  }
  (void)maybe_compact_locked();
  return claimed;
}

subscription maildir_mailbox::subscribe(change_callback callback) {
  return subscribers_->add(std::move(callback));
}

result<delivered> maildir_mailbox::append(const sealed_message& message, const message_flags& flags,
                                          std::optional<internal_date> date,
                                          std::optional<quota_limits> quota) {
  {
    std::lock_guard w(write_mutex_);
    if (auto r = fail_if_unusable_locked(); !r) return std::move(r).err();
  }
  return store_->commit_one(shared_from_this(), message, flags, date, quota);
}

result<copy_result> maildir_mailbox::copy(std::span<const imap_uid> uids,
                                          std::string_view destination,
                                          std::optional<quota_limits> quota) {
  auto dest_name = validate_mailbox_name(destination);
  if (!dest_name) return std::move(dest_name).err();
  // Resolve (and load) the destination before holding our write mutex: it may be us.
  auto dest = store_->get_box(account_, *dest_name);
  if (!dest) return std::move(dest).err();
  const quota_limits limits = store_->quota_or_default(quota);

  std::vector<pending_commit> commits;
  std::vector<imap_uid> sources;
  {
    std::lock_guard w(write_mutex_);
    if (auto r = fail_if_unusable_locked(); !r) return std::move(r).err();
    const auto wanted = sorted_unique(uids);
    commits.reserve(wanted.size());
    for (imap_uid uid : wanted) {
      const index_entry* e = state_.find(uid);
      if (e == nullptr) continue;
      pending_commit c;
      c.box = *dest;
      c.unique = unique_message_name(store_->hostname);
      c.size = e->size;
      c.wire_size = e->wire_size;
      c.date = e->date;
      c.flags = to_message_flags(e->flags, keywords_);
      c.quota = limits;
      // Holding our write mutex keeps the source file where the index says.
      auto staged = store_->stage(c, dir_ / e->relpath(), -1, e->date);
      if (!staged) {
        for (const auto& done : commits)
          (void)posix::unlink_path(done.box->dir() / "tmp" / done.unique, true);
        return std::move(staged).err();
      }
      commits.push_back(std::move(c));
      sources.push_back(uid);
    }
  }
  copy_result out;
  {
    std::lock_guard lock((*dest)->state_mutex_);
    out.uid_validity = (*dest)->state_.uid_validity;
  }
  if (commits.empty()) return out;
  std::vector<pending_commit*> ptrs;
  for (auto& c : commits) ptrs.push_back(&c);
  store_->submit(ptrs);
  std::optional<error> failure;
  std::vector<imap_uid> created;
  for (std::size_t i = 0; i < commits.size(); ++i) {
    const auto& r = *commits[i].outcome;
    if (r) {
      out.uids.emplace_back(sources[i], r->uid);
      created.push_back(r->uid);
      out.uid_validity = r->uid_validity;
    } else if (!failure) {
      failure = r.err();
    }
  }
  if (failure) {
    // COPY is all or nothing: take back what went in.
    if (!created.empty()) (void)(*dest)->expunge(created);
    return std::move(*failure);
  }
  return out;
}

result<copy_result> maildir_mailbox::move(std::span<const imap_uid> uids,
                                          std::string_view destination,
                                          std::optional<quota_limits> quota) {
  // A move inside the account leaves its usage as it was, so it is never
  // refused for quota (a user at the limit must still be able to move mail to
  // Trash): the copy's limits are raised by what the expunge will free.
  quota_limits limits = store_->quota_or_default(quota);
  if (!limits.unlimited()) {
    std::uint64_t bytes = 0, count = 0;
    {
      std::lock_guard lock(state_mutex_);
      for (auto uid : uids) {
        if (const auto* e = state_.find(uid)) {
          bytes += e->size;
          ++count;
        }
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

void maildir_mailbox::commit_locked(std::vector<pending_commit*>& commits) {
  const bool durable = store_->options.fsync;
  auto fail = [&](pending_commit* c, error e) {
    c->outcome = std::move(e);
    (void)posix::unlink_path(dir_ / "tmp" / c->unique, true);
  };
  auto pending = [](const pending_commit* c) { return !c->outcome && !c->bounced; };
  if (deleted_ || !loaded_) {
    if (!deleted_ && std::all_of(commits.begin(), commits.end(), [&](pending_commit* c) {
          return !pending(c) || c->attempts < max_commit_bounces;
        })) {
      // A failed earlier change left the mailbox unloaded. Reloading replays
      // and reconciles the whole mailbox: its submitters do that, not a leader.
      for (auto* c : commits)
        if (pending(c)) c->bounced = true;
      return;
    }
    auto r = deleted_ ? result<void>(mailbox_gone()) : load_locked(false, nullptr);
    if (!r) {
      for (auto* c : commits)
        if (pending(c)) fail(c, r.err());
      return;
    }
  }

  // Keyword letters first: the file names refer to them.
  keyword_table table = keywords_;
  bool table_changed = false;
  for (auto* c : commits) {
    if (!pending(c)) continue;
    auto sf = to_stored(c->flags, table, true, table_changed);
    if (!sf) {
      fail(c, std::move(sf).err());
      continue;
    }
    c->entry.flags = *sf;
  }
  if (table_changed) {
    {
      std::lock_guard lock(state_mutex_);
      keywords_ = std::move(table);
    }
    if (auto s = save_keywords_locked(); !s) {
      for (auto* c : commits)
        if (pending(c)) fail(c, s.err());
      return;
    }
  }

  imap_uid next_uid = state_.uid_next;
  mod_seq modseq = state_.highest_modseq;
  bool touched_new = false;
  bool touched_cur = false;
  std::vector<pending_commit*> live;
  for (auto* c : commits) {
    if (!pending(c)) continue;
    if (next_uid > max_uid) {
      fail(c, error::permanent(errc::limit_exceeded, "mailbox has no UIDs left",
                               "UID space exhausted"));
      continue;
    }
    index_entry& e = c->entry;
    e.uid = next_uid;
    e.modseq = modseq + 1;
    e.date = c->date;
    e.size = c->size;
    e.wire_size = c->wire_size;
    e.in_new = e.flags.empty();
    // \Recent is "in new/": a message that arrives with flags goes to cur/.
    e.recent = e.in_new;
    e.base = base_with_sizes_and_uid(c->unique, c->size, c->wire_size, e.uid);
    auto r = posix::rename_path(dir_ / "tmp" / c->unique, dir_ / e.relpath());
    if (!r) {
      fail(c, std::move(r).err());
      continue;
    }
    ++next_uid;
    ++modseq;
    c->renamed = true;
    (e.in_new ? touched_new : touched_cur) = true;
    live.push_back(c);
  }

  auto unwind = [&](const error& e) {
    // Not acknowledged: take the files back out. Their UIDs stay used.
    for (auto* c : live) {
      (void)posix::unlink_path(dir_ / c->entry.relpath(), true);
      c->outcome = e;
    }
    live.clear();
    uid_next_dirty_ = true;
    std::lock_guard lock(state_mutex_);
    state_.uid_next = next_uid;
  };
  // One directory sync per directory for the whole batch.
  for (const auto& [touched, sub] :
       {std::pair{touched_new, "new"}, std::pair{touched_cur, "cur"}}) {
    if (!touched || live.empty()) continue;
    store_->n_dir_syncs.fetch_add(1, std::memory_order_relaxed);
    if (auto s = posix::sync_dir(dir_ / sub, durable); !s) unwind(s.err());
  }
  // One index write and one fdatasync for the whole batch.
  std::vector<std::string> payloads;
  for (auto* c : live) payloads.push_back(add_record(c->entry));
  if (!live.empty()) {
    if (auto a = append_index_locked(payloads); !a) unwind(a.err());
  }
  std::vector<index_entry> added;
  {
    std::lock_guard lock(state_mutex_);
    for (auto* c : live) {
      state_.insert(c->entry);
      added.push_back(c->entry);
      c->outcome = delivered{c->entry.uid, state_.uid_validity, c->entry.modseq};
    }
    state_.uid_next = std::max(state_.uid_next, next_uid);
    if (!live.empty()) state_.highest_modseq = modseq;
  }
  subscribers_->notify(changes_for(added, mailbox_change::kind_t::exists));
}

void maildir_mailbox::invalidate_locked() {
  std::lock_guard lock(state_mutex_);
  loaded_ = false;
}

void maildir_mailbox::compact_if_due() {
  std::lock_guard w(write_mutex_);
  if (deleted_ || !loaded_) return;
  if (auto r = maybe_compact_locked(); !r)
    log::warning("store: {} {}: index compaction failed: {}", account_, name_, r.err().describe());
}

}  // namespace hamail::store::detail

// The on-disk store: lock, accounts, mailbox namespace, delivery and group commit.

#include "hamail/store/maildir_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <set>

#include "folder_name.hpp"
#include "hamail/core/log.hpp"
#include "hamail/store/mailbox_name.hpp"
#include "maildir_impl.hpp"
#include "posix_io.hpp"
#include "wire_size.hpp"

namespace hamail::store {

namespace fs = std::filesystem;
using detail::maildir_mailbox;
using detail::pending_commit;

namespace {

/// A received body in <data_dir>/tmp/, removed with the last copy of its sealed_message.
class maildir_body final : public detail::sealed_body {
 public:
  maildir_body(fs::path path, unique_fd fd, std::uint64_t size, std::uint64_t wire_size,
               internal_date date)
      : path_(std::move(path)),
        fd_(std::move(fd)),
        size_(size),
        wire_size_(wire_size),
        date_(date) {}
  ~maildir_body() override { (void)posix::unlink_path(path_, true); }
  std::uint64_t size() const noexcept override { return size_; }
  std::uint64_t wire_size() const noexcept override { return wire_size_; }
  internal_date date() const noexcept override { return date_; }
  const fs::path& path() const noexcept { return path_; }
  int fd() const noexcept { return fd_.get(); }

 private:
  fs::path path_;
  unique_fd fd_;
  std::uint64_t size_;
  std::uint64_t wire_size_;
  internal_date date_;
};

class maildir_sink final : public detail::message_sink {
 public:
  maildir_sink(std::shared_ptr<maildir_store::impl> store, fs::path path, unique_fd fd)
      : store_(std::move(store)), path_(std::move(path)), fd_(std::move(fd)) {}
  ~maildir_sink() override {
    if (!finished_) (void)posix::unlink_path(path_, true);
  }
  result<void> write(std::span<const char> bytes) override {
    if (failed_ || finished_)
      return error::temporary(errc::io_error, "mail storage error",
                              "write after failure or finish");
    auto r = posix::write_all(fd_.get(), std::string_view(bytes.data(), bytes.size()), path_);
    if (!r) {
      failed_ = true;
      return r;
    }
    size_ += bytes.size();
    wire_.add(std::string_view(bytes.data(), bytes.size()));
    return ok();
  }
  std::uint64_t size() const noexcept override { return size_; }
  result<std::shared_ptr<detail::sealed_body>> finish(internal_date date) override {
    if (failed_ || finished_)
      return error::temporary(errc::io_error, "mail storage error",
                              "finish after failure or twice");
    // INTERNALDATE is the mtime; set it before the fsync so the sync covers it.
    const auto secs = static_cast<time_t>(date.time_since_epoch().count());
    const struct timespec times[2] = {{secs, 0}, {secs, 0}};
    if (::futimens(fd_.get(), times) != 0) {
      failed_ = true;
      return posix::sys_error(errno, "futimens", path_);
    }
    store_->n_file_syncs.fetch_add(1, std::memory_order_relaxed);
    if (auto s = posix::sync_fd(fd_.get(), false, store_->options.fsync, path_); !s) {
      failed_ = true;
      return std::move(s).err();
    }
    finished_ = true;
    return std::shared_ptr<detail::sealed_body>(
        std::make_shared<maildir_body>(path_, std::move(fd_), size_, wire_.wire_size(size_), date));
  }

 private:
  std::shared_ptr<maildir_store::impl> store_;
  fs::path path_;
  unique_fd fd_;
  std::uint64_t size_ = 0;
  detail::wire_counter wire_;
  bool failed_ = false;
  bool finished_ = false;
};

std::string box_key(std::string_view account, std::string_view name) {
  std::string k(account);
  k += '\0';
  k += name;
  return k;
}

/// Stable spread of accounts over 256 directories: FNV-1a 32-bit, low byte, hex.
std::string account_shard(std::string_view account) {
  std::uint32_t h = 2166136261u;
  for (char c : account) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  static constexpr char hex[] = "0123456789abcdef";
  return {hex[(h >> 4) & 0xF], hex[h & 0xF]};
}

error not_mine() { return error::internal_error("sealed message belongs to another store"); }

}  // namespace

// ---------------------------------------------------------------- impl helpers

fs::path maildir_store::impl::account_path(std::string_view account) const {
  return data_dir / "accounts" / account_shard(account) / std::string(account);
}

std::uint32_t maildir_store::impl::new_uid_validity() {
  std::lock_guard lock(uid_validity_mutex);
  const auto now = static_cast<std::uint32_t>(std::time(nullptr));
  last_uid_validity = std::max(now, last_uid_validity + 1);
  // Best effort: if this write is lost, the clock still moves UIDVALIDITY on.
  auto w = posix::write_file_atomic(data_dir / "hamail-uidvalidity-last",
                                    std::to_string(last_uid_validity) + "\n", options.fsync);
  if (!w) log::warning("store: {}", w.err().describe());
  return last_uid_validity;
}

std::shared_ptr<detail::account_locks> maildir_store::impl::locks_for(std::string_view account) {
  std::lock_guard lock(registry_mutex);
  auto& slot = accounts[std::string(account)];
  if (!slot) slot = std::make_shared<detail::account_locks>();
  return slot;
}

namespace {

// Builds a mailbox directory (cur/ new/ tmp/, hamail-uidvalidity, empty index,
// optionally maildirfolder) at `stage`, durably.
result<void> build_mailbox_dir(const fs::path& stage, std::uint32_t uid_validity, bool folder,
                               bool durable) {
  if (auto r = posix::make_dir(stage, false); !r) return r;
  for (const char* sub : {"cur", "new", "tmp"})
    if (auto r = posix::make_dir(stage / sub, false); !r) return r;
  if (folder) {
    auto fd = posix::open_file(stage / detail::folder_marker_name, O_WRONLY | O_CREAT, 0600);
    if (!fd) return std::move(fd).err();
  }
  const auto uv = std::to_string(uid_validity) + "\n";
  if (auto r = posix::write_file_atomic(stage / detail::uid_validity_file_name, uv, durable); !r)
    return r;
  if (auto r = posix::write_file_atomic(stage / detail::index_file_name,
                                        detail::header_line(uid_validity), durable);
      !r)
    return r;
  for (const char* sub : {"cur", "new", "tmp"})
    if (auto r = posix::sync_dir(stage / sub, durable); !r) return r;
  return posix::sync_dir(stage, durable);
}

}  // namespace

result<void> maildir_store::impl::ensure_account_locked(std::string_view account) {
  const fs::path root = account_path(account);
  if (posix::is_directory(root / "cur")) return ok();
  if (posix::is_directory(root)) {
    // Made by hand (or by another tool): complete it in place.
    for (const char* sub : {"cur", "new", "tmp"})
      if (auto r = posix::make_dir(root / sub, true); !r) return r;
    return ok();
  }
  const fs::path stage = tmp_dir() / ("account." + detail::unique_message_name(hostname));
  if (auto r = build_mailbox_dir(stage, new_uid_validity(), false, options.fsync); !r) {
    posix::remove_tree(stage);
    return r;
  }
  const fs::path shard = root.parent_path();
  if (!posix::is_directory(shard)) {
    if (auto r = posix::make_dir(shard, true); !r) return r;
    if (auto r = posix::sync_dir(shard.parent_path(), options.fsync); !r) return r;
  }
  if (auto r = posix::rename_path(stage, root); !r) {
    posix::remove_tree(stage);
    return r;
  }
  return posix::sync_dir(shard, options.fsync);
}

result<void> maildir_store::impl::create_folder_locked(std::string_view account,
                                                       const std::string& canonical) {
  auto dir_name = detail::mailbox_dir_name(canonical);
  if (!dir_name) return std::move(dir_name).err();
  const fs::path root = account_path(account);
  const fs::path target = root / *dir_name;
  if (posix::is_directory(target))
    return error::permanent(errc::already_exists, "mailbox already exists", target.string());
  const fs::path stage = tmp_dir() / ("folder." + detail::unique_message_name(hostname));
  if (auto r = build_mailbox_dir(stage, new_uid_validity(), true, options.fsync); !r) {
    posix::remove_tree(stage);
    return r;
  }
  if (::renameat2(AT_FDCWD, stage.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    posix::remove_tree(stage);
    if (err == EEXIST || err == ENOTEMPTY)
      return error::permanent(errc::already_exists, "mailbox already exists", target.string());
    return posix::sys_error(err, "rename folder into place", target);
  }
  return posix::sync_dir(root, options.fsync);
}

std::shared_ptr<maildir_mailbox> maildir_store::impl::get_box_unloaded(
    std::string_view account, const std::string& canonical) {
  auto dir_name = detail::mailbox_dir_name(canonical);
  const fs::path dir = account_path(account) / (dir_name ? *dir_name : std::string(".invalid"));
  auto locks = locks_for(account);
  std::lock_guard lock(registry_mutex);
  const std::string key = box_key(account, canonical);
  if (auto it = open_boxes.find(key); it != open_boxes.end())
    if (auto sp = it->second.lock()) {
      touch_locked(sp);
      return sp;
    }
  if (open_boxes.size() > 64 && open_boxes.size() % 64 == 0)
    std::erase_if(open_boxes, [](const auto& kv) { return kv.second.expired(); });
  auto sp = std::make_shared<maildir_mailbox>(shared_from_this(), std::move(locks),
                                              std::string(account), canonical, dir);
  open_boxes[key] = sp;
  touch_locked(sp);
  return sp;
}

void maildir_store::impl::touch_locked(const std::shared_ptr<maildir_mailbox>& box) {
  if (options.mailbox_cache == 0) return;
  if (auto it = recent_index.find(box.get()); it != recent_index.end()) {
    recent_boxes.splice(recent_boxes.begin(), recent_boxes, it->second);
    return;
  }
  recent_boxes.push_front(box);
  recent_index[box.get()] = recent_boxes.begin();
  if (recent_boxes.size() > options.mailbox_cache) {
    recent_index.erase(recent_boxes.back().get());
    recent_boxes.pop_back();
  }
}

void maildir_store::impl::clear_cache() {
  std::list<std::shared_ptr<maildir_mailbox>> dropped;
  {
    std::lock_guard lock(registry_mutex);
    dropped.swap(recent_boxes);
    recent_index.clear();
  }
  // Destroyed outside the registry mutex.
}

result<std::shared_ptr<maildir_mailbox>> maildir_store::impl::get_box(
    std::string_view account, const std::string& canonical) {
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  if (auto d = detail::mailbox_dir_name(canonical); !d) return std::move(d).err();
  if (canonical == "INBOX") {
    auto locks = locks_for(account);
    std::lock_guard ns(locks->ns_mutex);
    if (auto r = ensure_account_locked(account); !r) return std::move(r).err();
  }
  auto box = get_box_unloaded(account, canonical);
  if (auto r = box->ensure_loaded(); !r) {
    if (r.err().code == errc::not_found) {
      std::lock_guard lock(registry_mutex);
      auto it = open_boxes.find(box_key(account, canonical));
      if (it != open_boxes.end() && it->second.lock() == box) open_boxes.erase(it);
    }
    return std::move(r).err();
  }
  return box;
}

result<std::vector<std::string>> maildir_store::impl::mailbox_names(std::string_view account) {
  std::vector<std::string> names{"INBOX"};
  const fs::path root = account_path(account);
  auto entries = posix::list_dir(root);
  if (!entries) {
    if (entries.err().code == errc::not_found) return names;
    return std::move(entries).err();
  }
  std::vector<std::string> folders;
  for (const auto& e : *entries) {
    if (!e.is_dir || e.name.size() < 2 || e.name[0] != '.') continue;
    auto name = detail::mailbox_name_from_dir(e.name);
    if (!name) {
      log::debug("store: {}: ignoring folder directory '{}': {}", account, e.name,
                 name.err().describe());
      continue;
    }
    folders.push_back(std::move(*name));
  }
  std::sort(folders.begin(), folders.end());
  names.insert(names.end(), folders.begin(), folders.end());
  return names;
}

result<void> maildir_store::impl::stage(pending_commit& c, const fs::path& source, int source_fd,
                                        std::int64_t source_date) {
  const fs::path target = c.box->dir() / "tmp" / c.unique;
  if (c.date == source_date) {
    const int err = posix::link_path(source, target);
    if (err == 0) return ok();
    // Another file system, too many links, or links refused: copy instead.
    if (err == ENOENT && !posix::is_directory(target.parent_path()))
      return error::permanent(errc::not_found, "no such mailbox",
                              "mailbox deleted: " + target.string());
    if (err != EXDEV && err != EMLINK && err != EPERM && err != EOPNOTSUPP)
      return posix::sys_error(err, "link into " + target.string() + " from", source);
  }
  unique_fd own;
  if (source_fd < 0) {
    auto fd = posix::open_file(source, O_RDONLY);
    if (!fd) return std::move(fd).err();
    own = std::move(*fd);
    source_fd = own.get();
  }
  n_file_syncs.fetch_add(1, std::memory_order_relaxed);
  return posix::copy_file(source_fd, target, c.date, options.fsync);
}

void maildir_store::impl::prepare_quota(std::string_view account, const quota_limits& limits) {
  const fs::path root = account_path(account);
  const fs::path file = root / detail::maildirsize_name;
  if (limits.unlimited()) {
    // Untracked accounts have nothing to prepare; tracked ones only grow.
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || st.st_size <= 5120) return;
  }
  auto content = posix::read_file(file);
  if (content && !detail::quota_recalculation_due(*content, limits)) return;
  auto locks = locks_for(account);
  std::lock_guard q(locks->quota_mutex);
  if (auto r = detail::read_quota_usage(root, limits, maintenance_hook(account, "quota rescan"));
      !r)
    log::warning("store: {}: quota recalculation failed: {}", account, r.err().describe());
}

void maildir_store::impl::submit(std::span<pending_commit*> commits) {
  std::vector<pending_commit*> round(commits.begin(), commits.end());
  while (!round.empty()) {
    run_commits(round);
    // Bounced commits: the maintenance a leader must not do, here, then again.
    std::vector<pending_commit*> again;
    for (auto* c : round) {
      if (!c->bounced) continue;
      c->bounced = c->taken = c->done = false;
      ++c->attempts;
      if (auto r = c->box->ensure_loaded(); !r) {
        c->outcome = std::move(r).err();
        (void)posix::unlink_path(c->box->dir() / "tmp" / c->unique, true);
        continue;
      }
      prepare_quota(c->box->account(), c->quota);
      again.push_back(c);
    }
    round.swap(again);
  }
  // Compaction rewrites a whole index: after the commit, never in a leader.
  std::set<maildir_mailbox*> compacted;
  for (auto* c : commits)
    if (c->outcome && c->outcome->has_value() && compacted.insert(c->box.get()).second)
      c->box->compact_if_due();
}

void maildir_store::impl::run_commits(std::span<pending_commit*> commits) {
  std::unique_lock lock(queue_mutex);
  for (auto* c : commits) {
    c->queue_key = c->box->account();
    queues[c->queue_key].waiting.push_back(c);
  }
  for (;;) {
    // Lead the queue of one of ours that is waiting for a leader, if any.
    bool all_done = true;
    std::string lead;
    for (auto* c : commits) {
      if (c->done) continue;
      all_done = false;
      if (!c->taken && !queues[c->queue_key].leader_active) {
        lead = c->queue_key;
        break;
      }
    }
    if (all_done) return;
    if (lead.empty()) {
      queue_cv.wait(lock);
      continue;
    }
    auto& q = queues[lead];
    q.leader_active = true;
    std::vector<pending_commit*> batch;
    batch.swap(q.waiting);
    for (auto* c : batch) c->taken = true;
    lock.unlock();
    lead_batch(batch);
    lock.lock();
    for (auto* c : batch) c->done = true;
    auto it = queues.find(lead);
    it->second.leader_active = false;
    if (it->second.waiting.empty()) queues.erase(it);
    queue_cv.notify_all();
  }
}

void maildir_store::impl::lead_batch(std::vector<pending_commit*>& batch) noexcept {
  std::string what;
  try {
    process_batch(batch);
    return;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  // Whatever was half done is undone as a crash would be: files without an
  // acknowledgement go, and the mailboxes reload from disk (the truth) before
  // their next use. The usage record may have missed this batch: recalculate it.
  try {
    log::error("store: group commit of {} message(s) failed: {}", batch.size(), what);
    std::set<maildir_mailbox*> boxes;
    std::set<std::string> accounts;
    for (auto* c : batch) {
      if (c->outcome) continue;
      c->bounced = false;
      const fs::path dir = c->box->dir();
      (void)posix::unlink_path(c->renamed ? dir / c->entry.relpath() : dir / "tmp" / c->unique,
                               true);
      c->outcome =
          error::temporary(errc::unavailable, "mail storage error", "group commit failed: " + what);
      boxes.insert(c->box.get());
      accounts.insert(c->queue_key);
    }
    for (auto* box : boxes) {
      std::lock_guard w(box->write_mutex());
      box->invalidate_locked();
    }
    for (const auto& account : accounts) {
      std::lock_guard q(locks_for(account)->quota_mutex);
      (void)posix::unlink_path(account_path(account) / detail::maildirsize_name, true);
    }
  } catch (...) {
    // Out of memory while cleaning up: nothing is consistent any more.
    log::critical("store: group commit failed and could not be undone; stopping");
    std::abort();
  }
}

void maildir_store::impl::process_batch(std::vector<pending_commit*>& batch) {
  if (options.on_commit_batch) options.on_commit_batch(batch.size());
  n_batches.fetch_add(1, std::memory_order_relaxed);
  n_commits.fetch_add(batch.size(), std::memory_order_relaxed);

  // Quota, per account, in batch order, from the usage maildirsize records.
  // The delivering threads have recalculated it when due; if it went missing
  // since, the commits that need it are bounced back to them for that.
  std::map<std::string, std::vector<pending_commit*>> by_account;
  for (auto* c : batch) by_account[c->box->account()].push_back(c);
  std::vector<std::unique_lock<std::mutex>> quota_locks;
  std::map<std::string, bool> tracked;  // account keeps a maildirsize
  for (auto& [account, commits] : by_account) {
    quota_locks.emplace_back(commits.front()->box->locks()->quota_mutex);
    quota_limits limits;
    for (auto* c : commits)
      if (!c->quota.unlimited()) {
        limits = c->quota;
        break;
      }
    const fs::path root = account_path(account);
    auto content = posix::read_file(root / detail::maildirsize_name);
    if (!content) {
      log::warning("store: {}: reading quota usage failed: {}", account, content.err().describe());
      for (auto* c : commits)
        if (!c->quota.unlimited()) c->outcome = content.err();
      continue;
    }
    tracked[account] = content->has_value();
    if (limits.unlimited()) continue;
    std::optional<detail::quota_usage> usage = detail::recorded_quota_usage(*content);
    if (!usage) {
      const bool bounce = std::all_of(commits.begin(), commits.end(), [](pending_commit* c) {
        return c->quota.unlimited() || c->attempts < detail::max_commit_bounces;
      });
      if (bounce) {
        for (auto* c : commits)
          if (!c->quota.unlimited()) c->bounced = true;
        continue;
      }
      log::notice("store: {}: recalculating quota usage in the commit path", account);
      auto r = detail::read_quota_usage(root, limits, maintenance_hook(account, "quota rescan"));
      if (!r || !*r) {
        for (auto* c : commits)
          if (!c->quota.unlimited())
            c->outcome = r ? error::temporary(errc::io_error, "mail storage error",
                                              "maildirsize unavailable")
                           : r.err();
        continue;
      }
      usage = **r;
      tracked[account] = true;
    }
    detail::quota_usage running = *usage;
    for (auto* c : commits) {
      const auto& q = c->quota;
      if (c->outcome || c->bounced) continue;
      const bool over_bytes = q.bytes != 0 && running.bytes + static_cast<std::int64_t>(c->size) >
                                                  static_cast<std::int64_t>(q.bytes);
      const bool over_count =
          q.messages != 0 && running.messages + 1 > static_cast<std::int64_t>(q.messages);
      if (over_bytes || over_count) {
        std::string detail = account + " uses " + std::to_string(running.bytes) + " bytes in " +
                             std::to_string(running.messages) + " messages, limits " +
                             detail::format_quota_limits(q);
        // Too big for the whole quota is final; otherwise mail may be deleted.
        c->outcome = (q.bytes != 0 && c->size > q.bytes)
                         ? error::permanent(errc::quota_exceeded,
                                            "message too large for mailbox quota", detail)
                         : error::temporary(errc::quota_exceeded, "mailbox is over quota", detail);
        continue;
      }
      running.bytes += static_cast<std::int64_t>(c->size);
      running.messages += 1;
    }
  }

  // Per mailbox: one write mutex at a time.
  std::map<maildir_mailbox*, std::vector<pending_commit*>> by_box;
  for (auto* c : batch) by_box[c->box.get()].push_back(c);
  for (auto& [box, commits] : by_box) {
    for (auto* c : commits)
      if (c->outcome) (void)posix::unlink_path(box->dir() / "tmp" / c->unique, true);
    std::lock_guard w(box->write_mutex());
    box->commit_locked(commits);
  }

  for (auto& [account, commits] : by_account) {
    if (!tracked[account]) continue;
    std::int64_t bytes = 0;
    std::int64_t count = 0;
    for (auto* c : commits)
      if (c->outcome && c->outcome->has_value())
        bytes += static_cast<std::int64_t>(c->size), ++count;
    if (auto d = detail::append_quota_delta(account_path(account), bytes, count); !d)
      log::warning("store: {}: maildirsize update failed: {}", account, d.err().describe());
  }
}

result<delivered> maildir_store::impl::commit_one(const std::shared_ptr<maildir_mailbox>& box,
                                                  const sealed_message& message,
                                                  const message_flags& flags,
                                                  std::optional<internal_date> date,
                                                  std::optional<quota_limits> quota) {
  const auto* body = dynamic_cast<const maildir_body*>(message.body().get());
  if (body == nullptr) return not_mine();
  if (auto v = detail::validate_flags(flags); !v) return std::move(v).err();
  const quota_limits limits = quota_or_default(quota);
  if (limits.bytes != 0 && body->size() > limits.bytes)
    return error::permanent(
        errc::quota_exceeded, "message too large for mailbox quota",
        std::to_string(body->size()) + " bytes > " + std::to_string(limits.bytes));
  prepare_quota(box->account(), limits);
  pending_commit c;
  c.box = box;
  c.unique = detail::unique_message_name(hostname);
  c.size = body->size();
  c.wire_size = body->wire_size();
  c.date = date.value_or(body->date()).time_since_epoch().count();
  c.flags = flags;
  c.quota = limits;
  if (auto s = stage(c, body->path(), body->fd(), body->date().time_since_epoch().count()); !s)
    return std::move(s).err();
  pending_commit* p = &c;
  submit(std::span<pending_commit*>(&p, 1));
  return std::move(*c.outcome);
}

// ---------------------------------------------------------------- maildir_store

maildir_store::maildir_store(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

maildir_store::~maildir_store() { impl_->clear_cache(); }

result<std::unique_ptr<maildir_store>> maildir_store::open(const fs::path& data_dir,
                                                           maildir_options options) {
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return posix::sys_error(ec.value(), "create data directory", data_dir);
  auto p = std::make_shared<impl>();
  p->data_dir = fs::absolute(data_dir, ec);
  if (ec) p->data_dir = data_dir;
  p->options = std::move(options);

  const fs::path lock_path = p->data_dir / "hamail-store.lock";
  auto fd = posix::open_file(lock_path, O_RDWR | O_CREAT, 0644);
  if (!fd) return std::move(fd).err();
  for (;;) {
    if (::flock(fd->get(), LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      auto owner = posix::read_all(fd->get(), lock_path);
      std::string pid = owner ? *owner : std::string();
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      if (pid.empty()) pid = "unknown";
      return error::temporary(errc::already_exists, "mail store is in use",
                              "store " + p->data_dir.string() + " is locked by pid " + pid);
    }
    return posix::sys_error(errno, "flock", lock_path);
  }
  if (::ftruncate(fd->get(), 0) != 0) return posix::sys_error(errno, "ftruncate", lock_path);
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::pwrite(fd->get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return posix::sys_error(errno, "write", lock_path);
  p->lock_fd = std::move(*fd);

  for (const char* sub : {"accounts", "tmp"})
    if (auto r = posix::make_dir(p->data_dir / sub, true); !r) return std::move(r).err();
  // We hold the lock: whatever is in tmp/ was left by a crash.
  auto leftovers = posix::list_dir(p->tmp_dir());
  if (!leftovers) return std::move(leftovers).err();
  for (const auto& e : *leftovers) {
    if (e.is_dir)
      posix::remove_tree(p->tmp_dir() / e.name);
    else
      (void)posix::unlink_path(p->tmp_dir() / e.name, true);
  }
  if (!leftovers->empty())
    log::notice("store: {}: removed {} stale entries from tmp/", p->data_dir.string(),
                leftovers->size());

  if (auto last = posix::read_file(p->data_dir / "hamail-uidvalidity-last"); last && *last) {
    std::uint32_t v = 0;
    const std::string& text = **last;
    if (std::from_chars(text.data(), text.data() + text.size(), v).ec == std::errc())
      p->last_uid_validity = v;
  }

  std::string host = p->options.hostname;
  if (host.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) host = buf;
  }
  p->hostname = detail::sanitize_hostname(host);
  return std::unique_ptr<maildir_store>(new maildir_store(std::move(p)));
}

result<incoming_message> maildir_store::begin_delivery() {
  const fs::path path = impl_->tmp_dir() / detail::unique_message_name(impl_->hostname);
  // Read-write: the sealed body is copied from this fd when a link is not possible.
  auto fd = posix::open_file(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (!fd) return std::move(fd).err();
  return incoming_message(std::make_unique<maildir_sink>(impl_, path, std::move(*fd)));
}

std::vector<result<delivered>> maildir_store::deliver(const sealed_message& message,
                                                      std::span<const delivery_target> targets) {
  std::vector<result<delivered>> out;
  const auto* body = dynamic_cast<const maildir_body*>(message.body().get());
  if (body == nullptr) {
    for (std::size_t i = 0; i < targets.size(); ++i) out.emplace_back(not_mine());
    return out;
  }
  std::vector<pending_commit> commits(targets.size());
  std::vector<std::optional<error>> early(targets.size());
  std::vector<pending_commit*> staged;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    auto name = validate_mailbox_name(t.mailbox);
    if (!name) {
      early[i] = std::move(name).err();
      continue;
    }
    if (auto v = detail::validate_flags(t.flags); !v) {
      early[i] = std::move(v).err();
      continue;
    }
    const quota_limits limits = impl_->quota_or_default(t.quota);
    if (limits.bytes != 0 && body->size() > limits.bytes) {
      early[i] = error::permanent(errc::quota_exceeded, "message too large for mailbox quota",
                                  t.account + ": " + std::to_string(body->size()) + " bytes > " +
                                      std::to_string(limits.bytes));
      continue;
    }
    auto box = impl_->get_box(t.account, *name);
    if (!box) {
      early[i] = std::move(box).err();
      continue;
    }
    impl_->prepare_quota(t.account, limits);
    auto& c = commits[i];
    c.box = std::move(*box);
    c.unique = detail::unique_message_name(impl_->hostname);
    c.size = body->size();
    c.wire_size = body->wire_size();
    c.date = t.date.value_or(body->date()).time_since_epoch().count();
    c.flags = t.flags;
    c.quota = limits;
    if (auto s = impl_->stage(c, body->path(), body->fd(), body->date().time_since_epoch().count());
        !s) {
      early[i] = std::move(s).err();
      continue;
    }
    staged.push_back(&c);
  }
  if (!staged.empty()) impl_->submit(staged);
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (early[i])
      out.emplace_back(std::move(*early[i]));
    else
      out.emplace_back(std::move(*commits[i].outcome));
  }
  return out;
}

result<void> maildir_store::create_mailbox(std::string_view account, std::string_view name) {
  if (auto v = validate_account_id(account); !v) return v;
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  if (*canonical == "INBOX") return error::permanent(errc::already_exists, "INBOX always exists");
  if (auto d = detail::mailbox_dir_name(*canonical); !d) return std::move(d).err();
  auto locks = impl_->locks_for(account);
  std::lock_guard ns(locks->ns_mutex);
  if (auto r = impl_->ensure_account_locked(account); !r) return r;
  // Missing parents become real mailboxes: hamail keeps no \Noselect placeholders.
  for (std::size_t pos = canonical->find('/'); pos != std::string::npos;
       pos = canonical->find('/', pos + 1)) {
    const std::string parent = canonical->substr(0, pos);
    if (parent == "INBOX") continue;
    auto r = impl_->create_folder_locked(account, parent);
    if (!r && r.err().code != errc::already_exists) return r;
  }
  return impl_->create_folder_locked(account, *canonical);
}

result<void> maildir_store::delete_mailbox(std::string_view account, std::string_view name) {
  if (auto v = validate_account_id(account); !v) return v;
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  if (*canonical == "INBOX")
    return error::permanent(errc::permission_denied, "INBOX cannot be deleted");
  auto dir_name = detail::mailbox_dir_name(*canonical);
  if (!dir_name) return std::move(dir_name).err();
  auto locks = impl_->locks_for(account);
  std::lock_guard ns(locks->ns_mutex);
  const fs::path root = impl_->account_path(account);
  const fs::path dir = root / *dir_name;
  if (!posix::is_directory(dir))
    return error::permanent(errc::not_found, "no such mailbox", dir.string());
  auto names = impl_->mailbox_names(account);
  if (!names) return std::move(names).err();
  const std::string prefix = *canonical + "/";
  for (const auto& n : *names)
    if (n.compare(0, prefix.size(), prefix) == 0)
      return error::permanent(errc::permission_denied, "mailbox has children; delete them first",
                              n);

  std::lock_guard q(locks->quota_mutex);
  auto box = impl_->get_box_unloaded(account, *canonical);
  {
    std::lock_guard w(box->write_mutex());
    auto usage = detail::scan_mailbox_usage(dir);
    const fs::path graveyard =
        impl_->tmp_dir() / ("deleted." + detail::unique_message_name(impl_->hostname));
    if (auto r = posix::rename_path(dir, graveyard); !r) return r;
    box->mark_deleted_locked();
    if (auto s = posix::sync_dir(root, impl_->options.fsync); !s)
      log::warning("store: {}", s.err().describe());
    if (usage) {
      if (auto d = detail::append_quota_delta(root, -usage->bytes, -usage->messages); !d)
        log::warning("store: {}: maildirsize update failed: {}", account, d.err().describe());
    }
    if (!posix::remove_tree(graveyard))
      log::warning("store: could not remove {}", graveyard.string());
  }
  std::lock_guard lock(impl_->registry_mutex);
  auto it = impl_->open_boxes.find(box_key(account, *canonical));
  if (it != impl_->open_boxes.end() && it->second.lock() == box) impl_->open_boxes.erase(it);
  if (auto r = impl_->recent_index.find(box.get()); r != impl_->recent_index.end()) {
    impl_->recent_boxes.erase(r->second);
    impl_->recent_index.erase(r);
  }
  return ok();
}

result<void> maildir_store::remove_account(std::string_view account) {
  if (auto v = validate_account_id(account); !v) return v;
  auto locks = impl_->locks_for(account);
  std::lock_guard ns(locks->ns_mutex);
  std::lock_guard q(locks->quota_mutex);
  const fs::path root = impl_->account_path(account);
  if (!posix::is_directory(root))
    return error::permanent(errc::not_found, "no such account", root.string());
  std::string prefix(account);
  prefix += '\0';
  std::vector<std::shared_ptr<detail::maildir_mailbox>> boxes;
  {
    std::lock_guard lock(impl_->registry_mutex);
    for (auto it = impl_->open_boxes.lower_bound(prefix);
         it != impl_->open_boxes.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      if (auto sp = it->second.lock()) boxes.push_back(std::move(sp));
      it = impl_->open_boxes.erase(it);
    }
    for (const auto& box : boxes) {
      if (auto r = impl_->recent_index.find(box.get()); r != impl_->recent_index.end()) {
        impl_->recent_boxes.erase(r->second);
        impl_->recent_index.erase(r);
      }
    }
  }
  // One mailbox at a time: a session's COPY may hold two write mutexes, never ours.
  for (const auto& box : boxes) {
    std::lock_guard w(box->write_mutex());
    box->mark_deleted_locked();
  }
  const fs::path graveyard =
      impl_->tmp_dir() / ("account-removed." + detail::unique_message_name(impl_->hostname));
  if (auto r = posix::rename_path(root, graveyard); !r) return r;
  if (auto s = posix::sync_dir(root.parent_path(), impl_->options.fsync); !s) return s;
  if (!posix::remove_tree(graveyard))
    log::warning("store: could not remove {}", graveyard.string());
  log::notice("store: account {} removed", account);
  return ok();
}

result<void> maildir_store::rename_mailbox(std::string_view account, std::string_view from,
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
    // RFC 3501 §6.3.5: move INBOX's messages to the new name; INBOX stays, empty.
    if (auto c = create_mailbox(account, *dst); !c) return c;
    auto inbox = impl_->get_box(account, "INBOX");
    if (!inbox) return std::move(inbox).err();
    auto snap = (*inbox)->snapshot();
    if (!snap) return std::move(snap).err();
    std::vector<imap_uid> uids;
    for (const auto& m : snap->messages) uids.push_back(m.uid);
    if (uids.empty()) return ok();
    // The messages stay in the account: no quota check for the transient copy.
    auto moved = (*inbox)->move(uids, *dst, quota_limits{});
    if (!moved) return std::move(moved).err();
    return ok();
  }

  auto locks = impl_->locks_for(account);
  std::lock_guard ns(locks->ns_mutex);
  const fs::path root = impl_->account_path(account);
  auto names = impl_->mailbox_names(account);
  if (!names) return std::move(names).err();
  if (std::find(names->begin(), names->end(), *src) == names->end())
    return error::permanent(errc::not_found, "no such mailbox", *src);

  struct move_op {
    std::string old_name, new_name;
    fs::path old_dir, new_dir;
  };
  std::vector<move_op> ops;
  const std::string prefix = *src + "/";
  for (const auto& n : *names) {
    if (n != *src && n.compare(0, prefix.size(), prefix) != 0) continue;
    std::string new_name = *dst + n.substr(src->size());
    auto checked = validate_mailbox_name(new_name);
    if (!checked) return std::move(checked).err();
    auto old_dir = detail::mailbox_dir_name(n);
    auto new_dir = detail::mailbox_dir_name(new_name);
    if (!old_dir) return std::move(old_dir).err();
    if (!new_dir) return std::move(new_dir).err();
    if (posix::is_directory(root / *new_dir))
      return error::permanent(errc::already_exists, "mailbox already exists", new_name);
    ops.push_back({n, std::move(new_name), root / *old_dir, root / *new_dir});
  }
  for (std::size_t pos = dst->find('/'); pos != std::string::npos; pos = dst->find('/', pos + 1)) {
    const std::string parent = dst->substr(0, pos);
    if (parent == "INBOX") continue;
    auto r = impl_->create_folder_locked(account, parent);
    if (!r && r.err().code != errc::already_exists) return r;
  }

  // Hold every open mailbox being renamed (address order), so no change is in flight.
  std::vector<std::shared_ptr<maildir_mailbox>> open;
  {
    std::lock_guard lock(impl_->registry_mutex);
    for (const auto& op : ops) {
      auto it = impl_->open_boxes.find(box_key(account, op.old_name));
      if (it == impl_->open_boxes.end()) continue;
      if (auto sp = it->second.lock()) open.push_back(std::move(sp));
    }
  }
  std::sort(open.begin(), open.end());
  std::vector<std::unique_lock<std::mutex>> held;
  for (auto& b : open) held.emplace_back(b->write_mutex());

  std::optional<error> failure;
  std::size_t done = 0;
  for (const auto& op : ops) {
    if (::renameat2(AT_FDCWD, op.old_dir.c_str(), AT_FDCWD, op.new_dir.c_str(), RENAME_NOREPLACE) !=
        0) {
      failure = posix::sys_error(errno, "rename folder " + op.old_dir.string() + " to", op.new_dir);
      break;
    }
    ++done;
  }
  if (auto s = posix::sync_dir(root, impl_->options.fsync); !s && !failure)
    failure = std::move(s).err();
  {
    std::lock_guard lock(impl_->registry_mutex);
    for (std::size_t i = 0; i < done; ++i) {
      const auto& op = ops[i];
      auto it = impl_->open_boxes.find(box_key(account, op.old_name));
      if (it == impl_->open_boxes.end()) continue;
      auto sp = it->second.lock();
      impl_->open_boxes.erase(it);
      if (!sp) continue;
      sp->rename_locked(op.new_name, op.new_dir);
      impl_->open_boxes[box_key(account, op.new_name)] = sp;
    }
  }
  if (failure) {
    log::error("store: {}: rename {} -> {} stopped after {} of {} folders: {}", account, *src, *dst,
               done, ops.size(), failure->describe());
    return std::move(*failure);
  }
  return ok();
}

result<std::vector<mailbox_list_entry>> maildir_store::list_mailboxes(std::string_view account) {
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  std::vector<std::string> names;
  {
    auto locks = impl_->locks_for(account);
    std::lock_guard ns(locks->ns_mutex);
    auto n = impl_->mailbox_names(account);
    if (!n) return std::move(n).err();
    names = std::move(*n);
  }
  std::set<std::string> existing(names.begin(), names.end());
  std::set<std::string> all = existing;
  for (const auto& n : names)
    for (std::size_t pos = n.find('/'); pos != std::string::npos; pos = n.find('/', pos + 1))
      all.insert(n.substr(0, pos));
  std::vector<mailbox_list_entry> out;
  for (const auto& n : all) {
    mailbox_list_entry e;
    e.name = n;
    e.selectable = existing.count(n) != 0;
    auto at = all.lower_bound(n + "/");
    e.has_children = at != all.end() && at->compare(0, n.size() + 1, n + "/") == 0;
    out.push_back(std::move(e));
  }
  std::stable_partition(out.begin(), out.end(),
                        [](const mailbox_list_entry& e) { return e.name == "INBOX"; });
  return out;
}

result<mailbox_status> maildir_store::status(std::string_view account, std::string_view name) {
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  auto box = impl_->get_box(account, *canonical);
  if (!box) return std::move(box).err();
  return (*box)->status();
}

result<std::shared_ptr<mailbox>> maildir_store::open_mailbox(std::string_view account,
                                                             std::string_view name) {
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  auto box = impl_->get_box(account, *canonical);
  if (!box) return std::move(box).err();
  return std::shared_ptr<mailbox>(std::move(*box));
}

result<std::optional<store::quota_usage>> maildir_store::quota_usage(std::string_view account) {
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  // The maildirsize the commit path keeps current, read without its lock (delta
  // lines are single appends; a torn last line is skipped by the parser). Never
  // a scan: that is the commit path's job when a limit first applies.
  const fs::path root = impl_->account_path(account);
  auto content = posix::read_file(root / detail::maildirsize_name);
  if (!content) return std::move(content).err();
  if (!*content) {
    if (!posix::is_directory(root)) return std::optional<store::quota_usage>(store::quota_usage{});
    return std::optional<store::quota_usage>();
  }
  auto parsed = detail::parse_maildirsize(**content);
  if (!parsed) return std::optional<store::quota_usage>();
  store::quota_usage out;
  out.bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(parsed->usage.bytes, 0));
  out.messages = static_cast<std::uint64_t>(std::max<std::int64_t>(parsed->usage.messages, 0));
  return std::optional<store::quota_usage>(out);
}

result<rebuild_report> maildir_store::rebuild_index(std::string_view account) {
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  const fs::path root = impl_->account_path(account);
  if (!posix::is_directory(root))
    return error::permanent(errc::not_found, "no such account", root.string());
  auto locks = impl_->locks_for(account);
  std::lock_guard ns(locks->ns_mutex);
  if (auto r = impl_->ensure_account_locked(account); !r) return std::move(r).err();
  auto names = impl_->mailbox_names(account);
  if (!names) return std::move(names).err();
  rebuild_report report;
  for (const auto& name : *names) {
    auto box = impl_->get_box_unloaded(account, name);
    std::lock_guard w(box->write_mutex());
    if (box->deleted_locked()) continue;
    if (auto r = box->load_locked(true, &report); !r) {
      log::error("store: {} {}: rebuild failed: {}", account, name, r.err().describe());
      return std::move(r).err();
    }
    log::notice("store: {} {}: index rebuilt", account, name);
  }
  return report;
}

result<rebuild_report> maildir_store::rebuild_all() {
  rebuild_report total;
  auto shards = posix::list_dir(impl_->data_dir / "accounts");
  if (!shards) return std::move(shards).err();
  for (const auto& shard : *shards) {
    if (!shard.is_dir) continue;
    auto accounts = posix::list_dir(impl_->data_dir / "accounts" / shard.name);
    if (!accounts) return std::move(accounts).err();
    for (const auto& a : *accounts) {
      if (!a.is_dir) continue;
      if (!validate_account_id(a.name) || account_shard(a.name) != shard.name) {
        total.notes.push_back("skipped " + shard.name + "/" + a.name +
                              ": not a valid account directory");
        continue;
      }
      auto r = rebuild_index(a.name);
      if (!r) return std::move(r).err();
      total.mailboxes += r->mailboxes;
      total.messages += r->messages;
      total.uids_assigned += r->uids_assigned;
      total.uid_validity_renewed += r->uid_validity_renewed;
      total.notes.insert(total.notes.end(), r->notes.begin(), r->notes.end());
    }
  }
  return total;
}

result<std::vector<discrepancy>> maildir_store::verify(std::string_view account) {
  using kind = discrepancy::kind_t;
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  const fs::path root = impl_->account_path(account);
  if (!posix::is_directory(root))
    return error::permanent(errc::not_found, "no such account", root.string());
  auto locks = impl_->locks_for(account);
  std::lock_guard ns(locks->ns_mutex);
  auto names = impl_->mailbox_names(account);
  if (!names) return std::move(names).err();
  std::vector<discrepancy> out;
  for (const auto& name : *names) {
    auto box = impl_->get_box_unloaded(account, name);
    // Holding the write mutex: no change of this process is half done.
    std::lock_guard w(box->write_mutex());
    const fs::path dir = box->dir();
    if (!posix::is_directory(dir / "cur")) continue;
    auto add = [&](kind k, std::string detail) {
      discrepancy d;
      d.kind = k;
      d.mailbox = name;
      d.detail = std::move(detail);
      out.push_back(std::move(d));
    };
    auto text = posix::read_file(dir / detail::index_file_name);
    if (!text) return std::move(text).err();
    if (!*text) {
      add(kind::index_unreadable, "index missing");
      continue;
    }
    auto rr = detail::replay_index(**text);
    if (rr.outcome != detail::replay_result::outcome_t::ok) {
      add(kind::index_unreadable, rr.problem);
      continue;
    }
    auto uv = posix::read_file(dir / detail::uid_validity_file_name);
    if (!uv) return std::move(uv).err();
    if (!*uv || std::to_string(rr.state.uid_validity) + "\n" != **uv)
      add(kind::missing_uid_validity,
          *uv ? "hamail-uidvalidity differs from the index" : "hamail-uidvalidity missing");
    auto rec = detail::reconcile(rr.state, dir, name, false, false);
    if (!rec) return std::move(rec).err();
    out.insert(out.end(), rec->found.begin(), rec->found.end());
  }
  return out;
}

std::size_t maildir_store::queued_commits() const {
  std::lock_guard lock(impl_->queue_mutex);
  std::size_t n = 0;
  for (const auto& [account, q] : impl_->queues) n += q.waiting.size();
  return n;
}

commit_counters maildir_store::counters() const {
  commit_counters c;
  c.commits = impl_->n_commits.load();
  c.batches = impl_->n_batches.load();
  c.file_syncs = impl_->n_file_syncs.load();
  c.dir_syncs = impl_->n_dir_syncs.load();
  c.index_syncs = impl_->n_index_syncs.load();
  return c;
}

const fs::path& maildir_store::data_dir() const noexcept { return impl_->data_dir; }

result<fs::path> maildir_store::account_dir(const fs::path& data_dir, std::string_view account) {
  if (auto v = validate_account_id(account); !v) return std::move(v).err();
  return data_dir / "accounts" / account_shard(account) / std::string(account);
}

result<fs::path> maildir_store::mailbox_dir(const fs::path& data_dir, std::string_view account,
                                            std::string_view name) {
  auto root = account_dir(data_dir, account);
  if (!root) return root;
  auto canonical = validate_mailbox_name(name);
  if (!canonical) return std::move(canonical).err();
  auto d = detail::mailbox_dir_name(*canonical);
  if (!d) return std::move(d).err();
  return *root / *d;
}

}  // namespace hamail::store

#include "imap/subscriptions.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>

#include "hamail/store/maildir_store.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

namespace fs = std::filesystem;

/// Locks serialising changes of subscription files, by hash of the path.
std::mutex& lock_for(const fs::path& file) {
  static std::array<std::mutex, 64> locks;
  return locks[std::hash<std::string>{}(file.native()) % locks.size()];
}

error io_failure(std::string_view what, const fs::path& path, int err) {
  return error::temporary(errc::io_error, "Cannot access the subscription list",
                          std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

/// Reads the file; nullopt inside the result when it does not exist.
result<std::optional<std::string>> read_whole(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return io_failure("open", file, errno);
  }
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return io_failure("read", file, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
}

std::vector<std::string> parse(std::string_view text) {
  std::vector<std::string> names;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) names.emplace_back(line);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

result<void> write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_failure("write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

/// Replaces `file` with `names` atomically: a temporary file beside it, fsync,
/// rename over it, fsync of the directory.
result<void> save(const fs::path& file, const std::vector<std::string>& names, bool fsync) {
  std::string text;
  for (const auto& n : names) {
    text += n;
    text += '\n';
  }
  fs::path tmp = file;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_failure("create", tmp, errno);
  auto w = write_all(fd, text, tmp);
  if (w && fsync && ::fsync(fd) != 0) w = io_failure("fsync", tmp, errno);
  if (::close(fd) != 0 && w) w = io_failure("close", tmp, errno);
  if (!w) {
    ::unlink(tmp.c_str());
    return w;
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_failure("rename", tmp, err);
  }
  if (fsync) {
    const fs::path dir = file.parent_path();
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return io_failure("open", dir, errno);
    const bool synced = ::fsync(dfd) == 0;
    const int err = errno;
    ::close(dfd);
    if (!synced) return io_failure("fsync", dir, err);
  }
  return {};
}

bool is_at_or_below(std::string_view name, std::string_view top) {
  return name == top || (name.size() > top.size() && name.compare(0, top.size(), top) == 0 &&
                         name[top.size()] == '/');
}

}  // namespace

result<subscriptions> subscriptions::of(store::mail_store& st, const fs::path& data_dir,
                                        std::string_view account, bool fsync) {
  fs::path base = data_dir;
  if (auto* m = dynamic_cast<store::maildir_store*>(&st)) base = m->data_dir();
  if (base.empty()) {
    return error::temporary(errc::unavailable, "Subscriptions are not available",
                            "no data directory for the subscription list");
  }
  auto dir = store::maildir_store::account_dir(base, account);
  if (!dir) return std::move(dir).err();
  return subscriptions(st, std::string(account), *dir / subscriptions_file_name, fsync);
}

result<std::vector<std::string>> subscriptions::names() const {
  auto text = read_whole(file_);
  if (!text) return std::move(text).err();
  if (!*text) return std::vector<std::string>();
  return parse(**text);
}

template <class Edit>
result<bool> subscriptions::update(Edit edit) {
  std::lock_guard lock(lock_for(file_));
  auto text = read_whole(file_);
  if (!text) return std::move(text).err();
  std::vector<std::string> list = *text ? parse(**text) : std::vector<std::string>();
  if (!edit(list)) return false;
  std::sort(list.begin(), list.end());
  list.erase(std::unique(list.begin(), list.end()), list.end());
  std::error_code ec;
  if (!fs::is_directory(file_.parent_path(), ec)) {
    // The account has no directory yet: the store makes it with its INBOX.
    auto made = store_->status(account_, "INBOX");
    if (!made) return std::move(made).err();
    // A store that keeps no directories (memory_store) with a data directory given.
    if (!fs::is_directory(file_.parent_path(), ec) &&
        !fs::create_directories(file_.parent_path(), ec) && ec) {
      return io_failure("create", file_.parent_path(), ec.value());
    }
  }
  if (auto r = save(file_, list, fsync_); !r) return std::move(r).err();
  return true;
}

result<bool> subscriptions::add(std::span<const std::string> names) {
  return update([names](std::vector<std::string>& list) {
    bool changed = false;
    for (const auto& n : names) {
      if (std::find(list.begin(), list.end(), n) != list.end()) continue;
      list.push_back(n);
      changed = true;
    }
    return changed;
  });
}

result<bool> subscriptions::remove(std::string_view name) {
  return update([name](std::vector<std::string>& list) {
    auto it = std::find(list.begin(), list.end(), name);
    if (it == list.end()) return false;
    list.erase(it);
    return true;
  });
}

result<bool> subscriptions::rename(std::string_view from, std::string_view to) {
  return update([from, to](std::vector<std::string>& list) {
    bool changed = false;
    for (auto& n : list) {
      if (!is_at_or_below(n, from)) continue;
      n = std::string(to) + n.substr(from.size());
      changed = true;
    }
    return changed;
  });
}

result<subscriptions> subscriptions_of(const session& s) {
  return subscriptions::of(s.ctx.store, s.cfg.store.data_dir, s.user(), s.cfg.store.fsync);
}

}  // namespace hamail::backend::imap_session_detail

#include "posix_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "hamail/core/log.hpp"

namespace hamail::store::posix {

error sys_error(int err, std::string_view what, const fs::path& path) {
  std::string detail(what);
  detail += ' ';
  detail += path.string();
  detail += ": ";
  detail += std::strerror(err);
  std::string user =
      (err == ENOSPC || err == EDQUOT) ? "mail storage is full" : "mail storage error";
  return error::temporary(errc::io_error, std::move(user), std::move(detail));
}

result<unique_fd> open_file(const fs::path& path, int flags, mode_t mode) {
  for (;;) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd >= 0) return unique_fd(fd);
    if (errno == EINTR) continue;
    return sys_error(errno, "open", path);
  }
}

result<unique_fd> open_if_exists(const fs::path& path, int flags) {
  for (;;) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd >= 0) return unique_fd(fd);
    if (errno == EINTR) continue;
    if (errno == ENOENT) return unique_fd();
    return sys_error(errno, "open", path);
  }
}

result<void> write_all(int fd, std::string_view data, const fs::path& path_for_errors) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(errno, "write", path_for_errors);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

result<std::string> read_all(int fd, const fs::path& path_for_errors) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(errno, "read", path_for_errors);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

result<std::optional<std::string>> read_file(const fs::path& path) {
  auto fd = open_if_exists(path, O_RDONLY);
  if (!fd) return std::move(fd).err();
  if (!*fd) return std::optional<std::string>();
  auto content = read_all(fd->get(), path);
  if (!content) return std::move(content).err();
  return std::optional<std::string>(std::move(*content));
}

namespace {

std::mutex sync_fault_mutex;
std::function<int(const fs::path&)> sync_fault;  // guarded by sync_fault_mutex
std::atomic<bool> sync_fault_set{false};

/// The sync itself: 0 or the errno it failed with (EINTR retried).
int do_sync(int fd, bool data_only, const fs::path& path) {
  if (sync_fault_set.load(std::memory_order_acquire)) {
    std::lock_guard lock(sync_fault_mutex);
    if (sync_fault)
      if (const int err = sync_fault(path); err != 0) return err;
  }
  for (;;) {
    const int rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
    if (rc == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

[[noreturn]] void sync_failed(int err, bool data_only, const fs::path& path) {
  // Retrying is unsafe: the kernel may have marked the failed pages clean, so a
  // later sync reports success for data that never reached the disk. Stop and
  // let the restart rebuild the truth from the disk.
  log::critical(
      "store: {} {} failed: {}; the state of the page cache is unknown, stopping the store "
      "(fail-stop) so that it restarts from what is on stable storage",
      data_only ? "fdatasync" : "fsync", path.string(), std::strerror(err));
  std::abort();
}

}  // namespace

void set_sync_fault_for_testing(std::function<int(const fs::path&)> fault) {
  std::lock_guard lock(sync_fault_mutex);
  sync_fault = std::move(fault);
  sync_fault_set.store(static_cast<bool>(sync_fault), std::memory_order_release);
}

result<void> sync_fd(int fd, bool data_only, bool enabled, const fs::path& path_for_errors) {
  if (!enabled) return ok();
  if (const int err = do_sync(fd, data_only, path_for_errors); err != 0)
    sync_failed(err, data_only, path_for_errors);
  return ok();
}

result<void> sync_dir(const fs::path& dir, bool enabled) {
  if (!enabled) return ok();
  auto fd = open_file(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return std::move(fd).err();
  const int err = do_sync(fd->get(), false, dir);
  if (err == EINVAL) {
    // The file system cannot sync directories (not ext4 or XFS): nothing to wait for.
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
      log::warning("store: fsync of directory {} is not supported (EINVAL); continuing",
                   dir.string());
    return ok();
  }
  if (err != 0) sync_failed(err, false, dir);
  return ok();
}

result<void> make_dir(const fs::path& dir, bool exist_ok, mode_t mode) {
  if (::mkdir(dir.c_str(), mode) == 0) return ok();
  if (errno == EEXIST && exist_ok) return ok();
  if (errno == EEXIST)
    return error::permanent(errc::already_exists, "already exists",
                            "mkdir " + dir.string() + ": exists");
  return sys_error(errno, "mkdir", dir);
}

result<void> rename_path(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return ok();
  return sys_error(errno, "rename to " + to.string() + " from", from);
}

result<void> rename_noreplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return ok();
  if (errno == EEXIST)
    return error::permanent(errc::already_exists, "already exists",
                            "rename: " + to.string() + " exists");
  if (errno != EINVAL && errno != ENOSYS)
    return sys_error(errno, "rename to " + to.string() + " from", from);
  // A file system without RENAME_NOREPLACE: link + unlink never replaces either.
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST)
      return error::permanent(errc::already_exists, "already exists",
                              "link: " + to.string() + " exists");
    return sys_error(errno, "link to " + to.string() + " from", from);
  }
  return unlink_path(from, false);
}

int link_path(const fs::path& from, const fs::path& to) {
  return ::link(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

result<void> unlink_path(const fs::path& path, bool missing_ok) {
  if (::unlink(path.c_str()) == 0) return ok();
  if (errno == ENOENT && missing_ok) return ok();
  return sys_error(errno, "unlink", path);
}

result<void> write_file_atomic(const fs::path& path, std::string_view content, bool durable) {
  static std::atomic<std::uint64_t> counter{0};
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  {
    auto fd = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!fd) return std::move(fd).err();
    auto w = write_all(fd->get(), content, tmp);
    if (w) w = sync_fd(fd->get(), false, durable, tmp);
    if (!w) {
      (void)unlink_path(tmp, true);
      return w;
    }
  }
  auto r = rename_path(tmp, path);
  if (!r) {
    (void)unlink_path(tmp, true);
    return r;
  }
  return sync_dir(path.parent_path(), durable);
}

result<void> copy_file(int from_fd, const fs::path& to, std::int64_t mtime, bool durable) {
  auto out = open_file(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (!out) return std::move(out).err();
  auto fail = [&](error e) -> result<void> {
    (void)unlink_path(to, true);
    return e;
  };
  char buf[65536];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(from_fd, buf, sizeof buf, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(sys_error(errno, "pread (copy source for)", to));
    }
    if (n == 0) break;
    offset += n;
    auto w = write_all(out->get(), std::string_view(buf, static_cast<std::size_t>(n)), to);
    if (!w) return fail(std::move(w).err());
  }
  const struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  if (::futimens(out->get(), times) != 0) return fail(sys_error(errno, "futimens", to));
  auto s = sync_fd(out->get(), false, durable, to);
  if (!s) return fail(std::move(s).err());
  return ok();
}

result<std::vector<dir_entry>> list_dir(const fs::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT)
      return error::permanent(errc::not_found, "no such mailbox",
                              "opendir " + dir.string() + ": missing");
    return sys_error(errno, "opendir", dir);
  }
  std::vector<dir_entry> out;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      const int err = errno;
      ::closedir(d);
      if (err != 0) return sys_error(err, "readdir", dir);
      break;
    }
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    dir_entry entry{std::string(name), false, false};
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      struct stat st {};
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        entry.is_dir = S_ISDIR(st.st_mode);
        entry.is_regular = S_ISREG(st.st_mode);
      }
    } else {
      entry.is_dir = type == DT_DIR;
      entry.is_regular = type == DT_REG;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

bool is_directory(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  return !ec;
}

}  // namespace hamail::store::posix

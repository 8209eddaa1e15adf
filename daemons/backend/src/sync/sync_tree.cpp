#include "sync/sync_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <system_error>

#include "hamail/core/log.hpp"
#include "sync/sync_protocol.hpp"

namespace hamail::backend::sync {

namespace fs = std::filesystem;

namespace {

error sys_error(int err, std::string_view what, const fs::path& path) {
  return error::temporary(errc::io_error, "file system error",
                          fmt::format("{} {}: {}", what, path.string(), std::strerror(err)));
}

std::string join(std::string_view parent, std::string_view name) {
  if (parent.empty()) return std::string(name);
  std::string out(parent);
  out += '/';
  out += name;
  return out;
}

/// The last component of a relative path ("" for "").
std::string_view last_component(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

/// The directory part of a relative path ("" at the root).
std::string_view parent_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

/// True for a mailbox directory: the root or a ".<folder>" directly under it.
bool is_mailbox_dir(std::string_view rel) {
  return rel.empty() || (rel.front() == '.' && rel.find('/') == std::string_view::npos);
}

bool is_message_dir(std::string_view rel) {
  const auto last = last_component(rel);
  return (last == "cur" || last == "new") && is_mailbox_dir(parent_of(rel));
}

std::int64_t mtime_of(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

std::size_t depth(std::string_view p) {
  return static_cast<std::size_t>(std::count(p.begin(), p.end(), '/'));
}

}  // namespace

bool excluded_from_list(std::string_view parent, std::string_view name, bool dir) {
  if (name.starts_with(fetch_temp_prefix)) return true;
  if (parent.empty() && name == incoming_marker) return true;
  if (last_component(parent) == "tmp" && is_mailbox_dir(parent_of(parent))) return true;
  // Folder directories may end in ".tmp" or hold ".tmp." (mailbox "A/tmp" is ".A.tmp").
  if (!dir && !is_message_dir(parent)) {
    if (name.find(".tmp.") != std::string_view::npos) return true;
    if (name.size() > 4 && name.ends_with(".tmp")) return true;
  }
  return false;
}

result<std::vector<tree_entry>> list_tree(const fs::path& root, bool remove_leftovers) {
  std::vector<tree_entry> out;
  struct stat rst {};
  if (::lstat(root.c_str(), &rst) != 0) {
    if (errno == ENOENT) return error::permanent(errc::not_found, "no such account", root.string());
    return sys_error(errno, "lstat", root);
  }
  if (!S_ISDIR(rst.st_mode))
    return error::permanent(errc::not_found, "no such account",
                            root.string() + ": not a directory");
  // Directories still to read; the order does not matter, the result is sorted at the end.
  std::vector<std::string> pending{""};
  while (!pending.empty()) {
    const std::string rel = std::move(pending.back());
    pending.pop_back();
    const fs::path dir = rel.empty() ? root : root / rel;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT && !rel.empty()) continue;  // removed while we walked
      return sys_error(errno, "opendir", dir);
    }
    std::vector<std::string> names;
    errno = 0;
    while (auto* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      names.emplace_back(n);
    }
    const int read_err = errno;
    std::vector<tree_entry> here;
    for (const auto& n : names) {
      if (std::string_view(n).starts_with(fetch_temp_prefix)) {
        if (remove_leftovers) ::unlinkat(::dirfd(d), n.c_str(), 0);
        continue;
      }
      struct stat st {};
      if (::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // renamed by a flag change meanwhile
        const int err = errno;
        ::closedir(d);
        return sys_error(err, "stat", dir / n);
      }
      if (excluded_from_list(rel, n, S_ISDIR(st.st_mode))) continue;
      const std::string path = join(rel, n);
      if (path_problem(path)) {
        log::debug("sync: {} left out of the listing (name not transferable)", (dir / n).string());
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        here.push_back(tree_entry{path, true, 0, 0});
      } else if (S_ISREG(st.st_mode)) {
        here.push_back(
            tree_entry{path, false, static_cast<std::uint64_t>(st.st_size), mtime_of(st)});
      }
    }
    ::closedir(d);
    if (read_err != 0) return sys_error(read_err, "readdir", dir);
    for (auto& e : here) {
      if (out.size() >= max_tree_entries)
        return error::permanent(errc::limit_exceeded, "account tree too large", root.string());
      if (e.dir) pending.push_back(e.path);
      out.push_back(std::move(e));
    }
  }
  // Sorted by path, every directory comes before anything inside it (a prefix sorts first).
  std::sort(out.begin(), out.end(),
            [](const tree_entry& a, const tree_entry& b) { return a.path < b.path; });
  return out;
}

bool is_message_file(std::string_view path) {
  return is_message_dir(parent_of(path)) &&
         last_component(path).find(",U=") != std::string_view::npos;
}

std::string message_key(std::string_view path) {
  std::string key(parent_of(parent_of(path)));
  key += '\0';
  const auto name = last_component(path);
  key += name.substr(0, name.find(":2,"));
  return key;
}

pull_plan plan_pull(const std::vector<tree_entry>& source, const std::vector<tree_entry>& local) {
  pull_plan plan;
  std::map<std::string, const tree_entry*> local_by_path;
  for (const auto& e : local) local_by_path[e.path] = &e;
  std::map<std::string, const tree_entry*> source_by_path;
  for (const auto& e : source) source_by_path[e.path] = &e;

  // A local entry of another type than the source's at the same path goes first, with
  // everything below it.
  for (const auto& e : source) {
    auto it = local_by_path.find(e.path);
    if (it == local_by_path.end() || it->second->dir == e.dir) continue;
    plan.remove_first.push_back(e.path);
    const std::string prefix = e.path + "/";
    for (auto sub = local_by_path.lower_bound(prefix);
         sub != local_by_path.end() && sub->first.starts_with(prefix);)
      sub = local_by_path.erase(sub);
    local_by_path.erase(e.path);
  }

  std::map<std::string, std::string> local_messages;  // key -> path, not yet claimed
  for (const auto& [path, e] : local_by_path)
    if (!e->dir && is_message_file(path)) local_messages.emplace(message_key(path), path);
  std::set<std::string> kept;  // local paths that stay (possibly under another name)

  for (const auto& e : source) {
    auto here = local_by_path.find(e.path);
    if (e.dir) {
      if (here == local_by_path.end()) plan.mkdirs.push_back(e.path);
      kept.insert(e.path);
      continue;
    }
    if (is_message_file(e.path)) {
      // A message file's content never changes: the same base name is the same message.
      auto m = local_messages.find(message_key(e.path));
      if (here != local_by_path.end()) {
        kept.insert(e.path);
        if (m != local_messages.end() && m->second == e.path) local_messages.erase(m);
        continue;
      }
      if (m != local_messages.end()) {
        plan.renames.emplace_back(m->second, e.path);
        kept.insert(m->second);
        local_messages.erase(m);
        continue;
      }
      plan.fetches.push_back(e);
      plan.fetch_bytes += e.size;
      continue;
    }
    if (here == local_by_path.end() || here->second->size != e.size ||
        here->second->mtime_ns != e.mtime_ns) {
      plan.fetches.push_back(e);
      plan.fetch_bytes += e.size;
    }
    if (here != local_by_path.end()) kept.insert(e.path);
  }

  for (const auto& [path, e] : local_by_path) {
    if (kept.count(path) != 0) continue;
    if (source_by_path.count(path) != 0 && !e->dir) continue;  // refetched in place
    if (e->dir)
      plan.rmdirs.push_back(path);
    else
      plan.unlinks.push_back(path);
  }
  std::sort(plan.rmdirs.begin(), plan.rmdirs.end(), [](const std::string& a, const std::string& b) {
    const auto da = depth(a), db = depth(b);
    return da != db ? da > db : a > b;
  });
  return plan;
}

namespace {

/// Removes a file or a whole tree at `p`; a missing one is fine.
result<void> remove_any(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) return sys_error(ec.value(), "remove", p);
  return ok();
}

}  // namespace

result<void> apply_before_fetch(const fs::path& root, const pull_plan& plan) {
  for (const auto& p : plan.remove_first)
    if (auto r = remove_any(root / p); !r) return r;
  for (const auto& d : plan.mkdirs) {
    if (::mkdir((root / d).c_str(), 0700) != 0 && errno != EEXIST)
      return sys_error(errno, "mkdir", root / d);
  }
  for (const auto& [from, to] : plan.renames) {
    if (::rename((root / from).c_str(), (root / to).c_str()) != 0) {
      if (errno == ENOENT) continue;  // gone meanwhile: the next pass fetches it
      return sys_error(errno, "rename", root / from);
    }
  }
  return ok();
}

result<void> apply_after_fetch(const fs::path& root, const pull_plan& plan) {
  for (const auto& f : plan.unlinks) {
    if (::unlink((root / f).c_str()) != 0 && errno != ENOENT)
      return sys_error(errno, "unlink", root / f);
  }
  for (const auto& d : plan.rmdirs)
    if (auto r = remove_any(root / d); !r) return r;
  return ok();
}

result<fetch_file> begin_fetch(const fs::path& root, const std::string& rel) {
  static std::atomic<std::uint64_t> counter{0};
  fetch_file f;
  f.target = root / rel;
  f.temp = f.target.parent_path() /
           fmt::format("{}{}.{}", fetch_temp_prefix, ::getpid(), counter.fetch_add(1));
  const int fd = ::open(f.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return sys_error(errno, "create", f.temp);
  f.fd.reset(fd);
  return f;
}

result<void> write_fetch(fetch_file& f, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::write(f.fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(errno, "write", f.temp);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

result<void> finish_fetch(fetch_file& f, std::int64_t mtime_ns) {
  // The mtime is the INTERNALDATE of a message file: it must be the source's, exactly.
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = static_cast<time_t>(mtime_ns / 1'000'000'000);
  times[1].tv_nsec = static_cast<long>(mtime_ns % 1'000'000'000);
  if (times[1].tv_nsec < 0) {
    times[1].tv_nsec += 1'000'000'000;
    times[1].tv_sec -= 1;
  }
  if (::futimens(f.fd.get(), times) != 0) return sys_error(errno, "futimens", f.temp);
  f.fd.reset();
  if (::rename(f.temp.c_str(), f.target.c_str()) != 0) return sys_error(errno, "rename", f.temp);
  return ok();
}

void abandon_fetch(fetch_file& f) noexcept {
  f.fd.reset();
  if (!f.temp.empty()) ::unlink(f.temp.c_str());
}

result<void> sync_file_system(const fs::path& dir, bool enabled) {
  if (!enabled) return ok();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error(errno, "open", dir);
  store::unique_fd holder(fd);
  if (::syncfs(fd) != 0) return sys_error(errno, "syncfs", dir);
  return ok();
}

result<void> sync_directory(const fs::path& dir, bool enabled) {
  if (!enabled) return ok();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error(errno, "open", dir);
  store::unique_fd holder(fd);
  if (::fsync(fd) != 0 && errno != EINVAL) return sys_error(errno, "fsync", dir);
  return ok();
}

std::string read_marker(const fs::path& root) {
  const int fd = ::open((root / incoming_marker).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return {};
  store::unique_fd holder(fd);
  char buf[128];
  const auto n = ::read(fd, buf, sizeof buf);
  if (n <= 0) return {};
  std::string s(buf, static_cast<std::size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

result<void> write_marker(const fs::path& root, const std::string& source_store, bool durable) {
  const fs::path p = root / incoming_marker;
  const fs::path tmp = root / (std::string(incoming_marker) + ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sys_error(errno, "create", tmp);
  store::unique_fd holder(fd);
  const std::string content = source_store + "\n";
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
    return sys_error(errno, "write", tmp);
  if (durable && ::fsync(fd) != 0) return sys_error(errno, "fsync", tmp);
  holder.reset();
  if (::rename(tmp.c_str(), p.c_str()) != 0) return sys_error(errno, "rename", tmp);
  return sync_directory(root, durable);
}

result<std::pair<store::unique_fd, std::uint64_t>> open_for_get(const fs::path& root,
                                                                const std::string& rel) {
  auto gone = [&] { return error::permanent(errc::not_found, "no such file", rel); };
  const int rootfd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (rootfd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
      return error::permanent(errc::not_found, "no such account", root.string());
    return sys_error(errno, "open", root);
  }
  store::unique_fd dir(rootfd);
  std::string_view rest = rel;
  for (;;) {
    const auto slash = rest.find('/');
    const std::string part(rest.substr(0, slash));
    if (slash == std::string_view::npos) {
      const int fd = ::openat(dir.get(), part.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return gone();
        return sys_error(errno, "open", root / rel);
      }
      store::unique_fd file(fd);
      struct stat st {};
      if (::fstat(fd, &st) != 0) return sys_error(errno, "fstat", root / rel);
      if (!S_ISREG(st.st_mode)) return gone();
      return std::pair<store::unique_fd, std::uint64_t>{std::move(file),
                                                        static_cast<std::uint64_t>(st.st_size)};
    }
    const int next =
        ::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (next < 0) {
      if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return gone();
      return sys_error(errno, "open", root / rel);
    }
    dir.reset(next);
    rest.remove_prefix(slash + 1);
  }
}

result<std::string> read_chunk(int fd, std::uint64_t offset, std::size_t max) {
  std::string buf(max, '\0');
  for (;;) {
    const auto n = ::pread(fd, buf.data(), max, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(errno, "pread", "<file>");
    }
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
}

result<void> remove_tree_via(const fs::path& dir, const fs::path& graveyard_parent, bool durable) {
  static std::atomic<std::uint64_t> counter{0};
  if (::mkdir(graveyard_parent.c_str(), 0700) != 0 && errno != EEXIST)
    return sys_error(errno, "mkdir", graveyard_parent);
  const fs::path grave =
      graveyard_parent / fmt::format("sync-removed.{}.{}", ::getpid(), counter.fetch_add(1));
  if (::rename(dir.c_str(), grave.c_str()) != 0) {
    if (errno == ENOENT)
      return error::permanent(errc::not_found, "nothing to remove", dir.string());
    return sys_error(errno, "rename", dir);
  }
  if (auto r = sync_directory(dir.parent_path(), durable); !r) return r;
  std::error_code ec;
  fs::remove_all(grave, ec);
  if (ec) log::warning("sync: could not remove {}: {}", grave.string(), ec.message());
  return ok();
}

}  // namespace hamail::backend::sync

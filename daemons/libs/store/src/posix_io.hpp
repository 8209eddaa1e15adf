#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/store/unique_fd.hpp"

// Thin, checked wrappers over the POSIX calls the store makes. Every wrapper
// retries EINTR and turns errno into a hamail::error: failures of the operating
// system are temporary io_errors (EIO, ENOSPC, EDQUOT, EMFILE... may all pass),
// with the call, the path and strerror in the detail. The exception is a failed
// fsync/fdatasync, which stops the process (see sync_fd).

namespace hamail::store::posix {

namespace fs = std::filesystem;

/// A temporary io_error for `what` on `path` failing with `err`.
error sys_error(int err, std::string_view what, const fs::path& path);

/// open(2) with O_CLOEXEC added.
result<unique_fd> open_file(const fs::path& path, int flags, mode_t mode = 0644);
/// Like open_file but returns an empty fd (no error) on ENOENT.
result<unique_fd> open_if_exists(const fs::path& path, int flags);
/// Writes all of `data` (retrying short writes).
result<void> write_all(int fd, std::string_view data, const fs::path& path_for_errors);
/// Reads the whole of an open file from its current offset.
result<std::string> read_all(int fd, const fs::path& path_for_errors);
/// Reads a whole file; nullopt when it does not exist.
result<std::optional<std::string>> read_file(const fs::path& path);
/// fsync(2) (or fdatasync(2) when `data_only`); does nothing unless `enabled`.
/// A failed sync is not an error value: after one, the kernel may already have
/// dropped the dirty pages and cleared the error, so a retry can "succeed"
/// without the data on disk (the 2018 PostgreSQL fsync problem). It logs at
/// critical level and aborts, so the store restarts (Pacemaker) from what is
/// really on disk and reconciles. Errors: only from opening, never the sync.
result<void> sync_fd(int fd, bool data_only, bool enabled, const fs::path& path_for_errors);
/// Opens a directory and fsyncs it (fail-stop as sync_fd); does nothing unless
/// `enabled`. EINVAL from a file system that cannot sync directories is
/// ignored, with a warning, as PostgreSQL does.
result<void> sync_dir(const fs::path& dir, bool enabled);
/// Test hook: while set, every enabled sync first calls it with the path; a
/// non-zero return is taken as the errno of a failed sync. Empty in production.
void set_sync_fault_for_testing(std::function<int(const fs::path&)> fault);
/// mkdir(2); EEXIST is success when `exist_ok`.
result<void> make_dir(const fs::path& dir, bool exist_ok, mode_t mode = 0700);
/// rename(2).
result<void> rename_path(const fs::path& from, const fs::path& to);
/// rename(2) that fails with already_exists (permanent) instead of replacing `to`.
result<void> rename_noreplace(const fs::path& from, const fs::path& to);
/// link(2); returns the raw errno (0 on success) because callers fall back to a copy.
int link_path(const fs::path& from, const fs::path& to);
/// unlink(2); ENOENT is success when `missing_ok`.
result<void> unlink_path(const fs::path& path, bool missing_ok);
/// Writes `content` to `path` atomically: a sibling temporary file, fsync,
/// rename over, fsync of the directory (syncs only when `durable`).
result<void> write_file_atomic(const fs::path& path, std::string_view content, bool durable);
/// Copies the open file `from_fd` (from offset 0) into a new file `to` (mode
/// 0600), sets its mtime to `mtime` and fsyncs it when `durable`.
result<void> copy_file(int from_fd, const fs::path& to, std::int64_t mtime, bool durable);

/// One directory entry.
struct dir_entry {
  std::string name;
  bool is_dir = false;
  bool is_regular = false;
};
/// The entries of `dir` except "." and ".."; errors include ENOENT (not_found, permanent).
result<std::vector<dir_entry>> list_dir(const fs::path& dir);
/// True when `path` exists and is a directory.
bool is_directory(const fs::path& path);
/// Removes a tree; best effort, returns false if anything was left.
bool remove_tree(const fs::path& path);

}  // namespace hamail::store::posix

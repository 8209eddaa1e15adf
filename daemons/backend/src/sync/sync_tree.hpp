#pragma once

// The file system side of the sync channel (docs/sync.md): listing an account tree as LIST
// shows it, the plan of one PULL pass (a diff of two listings), and the blocking steps that
// carry it out. Every function here blocks: call them on the blocking thread pool.

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "hamail/core/result.hpp"
#include "hamail/store/unique_fd.hpp"

namespace hamail::backend::sync {

/// One entry of an account tree, relative to the account root.
struct tree_entry {
  std::string path;
  bool dir = false;
  std::uint64_t size = 0;     ///< files
  std::int64_t mtime_ns = 0;  ///< files: modification time, ns since the epoch
  bool operator==(const tree_entry&) const = default;
};

/// Entries LIST shows at most for one account (a bound on memory).
inline constexpr std::size_t max_tree_entries = 4'000'000;

/// True when LIST leaves out `name` (a directory when `dir`) found in the directory `parent`
/// (relative to the account root, "" for the root itself): the contents of a mailbox's tmp/,
/// the incoming marker at the root, the fetch temporaries of an interrupted PULL and, for files
/// outside cur/ and new/, the `*.tmp.*` and `*.tmp` leftovers of atomic rewrites (message names
/// and folder directories may contain ".tmp.").
bool excluded_from_list(std::string_view parent, std::string_view name, bool dir);

/// The account tree under `root` in pre-order (a directory before its contents, names sorted),
/// without the root itself and without what excluded_from_list() leaves out. Symbolic links
/// and special files are left out too. When `remove_leftovers`, fetch temporaries found on the
/// way are unlinked. Errors: not_found (permanent) when `root` does not exist; limit_exceeded
/// past max_tree_entries; io_error.
result<std::vector<tree_entry>> list_tree(const std::filesystem::path& root,
                                          bool remove_leftovers = false);

/// True for a message file: a name with ",U=" directly inside a cur/ or new/ directory.
bool is_message_file(std::string_view path);
/// The identity of a message file across flag changes and new/ → cur/ moves: its mailbox
/// directory and its base name (the part before ":2,"), joined by a NUL.
std::string message_key(std::string_view path);

/// What one PULL pass does to the local copy, in this order.
struct pull_plan {
  std::vector<std::string> remove_first;  ///< local entries of another type than the source's
  std::vector<std::string> mkdirs;        ///< parents first
  std::vector<std::pair<std::string, std::string>> renames;  ///< message files: from, to
  std::vector<tree_entry> fetches;                           ///< the source's entries to GET
  std::vector<std::string> unlinks;  ///< local files the source no longer has
  std::vector<std::string> rmdirs;   ///< local directories the source no longer has, deepest first
  std::uint64_t fetch_bytes = 0;     ///< sum of the fetches' sizes
};

/// Diffs the source's listing against the local one (both as list_tree() gives them).
pull_plan plan_pull(const std::vector<tree_entry>& source, const std::vector<tree_entry>& local);

/// Carries out what comes before the fetches: remove_first, mkdirs, renames. Renames of files
/// that vanished meanwhile are skipped. Errors: io_error.
result<void> apply_before_fetch(const std::filesystem::path& root, const pull_plan& plan);
/// Carries out what comes after the fetches: unlinks and rmdirs. Errors: io_error.
result<void> apply_after_fetch(const std::filesystem::path& root, const pull_plan& plan);

/// A file being fetched: a temporary name in its final directory.
struct fetch_file {
  store::unique_fd fd;
  std::filesystem::path temp;
  std::filesystem::path target;
};
/// Creates the temporary file for fetching `rel` under `root`. Errors: io_error.
result<fetch_file> begin_fetch(const std::filesystem::path& root, const std::string& rel);
/// Appends `data`. Errors: io_error.
result<void> write_fetch(fetch_file& f, std::string_view data);
/// Sets the mtime (the INTERNALDATE of a message), closes and renames over the target.
result<void> finish_fetch(fetch_file& f, std::int64_t mtime_ns);
/// Removes the temporary file of a fetch that failed.
void abandon_fetch(fetch_file& f) noexcept;

/// syncfs(2) of the file system holding `dir` (the FINAL pass); nothing when `enabled` is false.
result<void> sync_file_system(const std::filesystem::path& dir, bool enabled);
/// fsync(2) of a directory; nothing when `enabled` is false.
result<void> sync_directory(const std::filesystem::path& dir, bool enabled);
/// The marker's content at `root` (its source store), empty when there is none.
std::string read_marker(const std::filesystem::path& root);
/// Writes the marker (the source store's name) at `root`, synced when `durable`.
result<void> write_marker(const std::filesystem::path& root, const std::string& source_store,
                          bool durable);

/// Opens a file of an account tree for GET: a regular file under `root`, no symbolic link
/// anywhere on the way. Errors: not_found (permanent) when it does not exist or is not a
/// regular file; io_error. Gives the descriptor and the size.
result<std::pair<store::unique_fd, std::uint64_t>> open_for_get(const std::filesystem::path& root,
                                                                const std::string& rel);
/// pread(2) of up to `max` octets at `offset`; empty at the end of the file. Errors: io_error.
result<std::string> read_chunk(int fd, std::uint64_t offset, std::size_t max);

/// Moves `dir` into `graveyard_parent` under a unique name, syncs its old parent when
/// `durable`, then removes it. Errors: not_found (permanent), io_error.
result<void> remove_tree_via(const std::filesystem::path& dir,
                             const std::filesystem::path& graveyard_parent, bool durable);

}  // namespace hamail::backend::sync

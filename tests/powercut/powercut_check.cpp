// powercut_check: opens a store that lost power mid-delivery with hamail's own
// store code (so its index recovery runs), lists every mailbox of the given
// accounts and reads every message through mailbox::read_message. Used by
// test_powercut.py on a copy of the guest's disk.
//
//   powercut_check DATA_DIR DUMP_DIR ACCOUNT...
//
// For each message it writes the bytes the store returned to
// DUMP_DIR/<account>/<n>-<uid> (n: the mailbox's position in the list) and prints
//   message <account> <n> <uid> <size> <mailbox name>
// Before opening anything it prints what verify() finds (what recovery has to
// repair: informational); after reading, verify() must find nothing.
// Exit status: 0 when every mailbox opened, every message read completely and
// the indexes agree with the files; 1 otherwise (the reason on stderr).

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hamail/store/maildir_store.hpp"

namespace {

namespace fs = std::filesystem;
namespace st = hamail::store;

int failures = 0;

/// The name of a discrepancy kind, as the enumerator is spelled (kinds added later print
/// their number).
std::string kind_name(st::discrepancy::kind_t kind) {
  using k = st::discrepancy::kind_t;
  switch (kind) {
    case k::index_unreadable:
      return "index_unreadable";
    case k::missing_uid_validity:
      return "missing_uid_validity";
    case k::file_not_indexed:
      return "file_not_indexed";
    case k::file_without_uid:
      return "file_without_uid";
    case k::duplicate_uid:
      return "duplicate_uid";
    case k::indexed_file_missing:
      return "indexed_file_missing";
    case k::metadata_mismatch:
      return "metadata_mismatch";
    case k::stray_file:
      return "stray_file";
    case k::stale_uid:
      return "stale_uid";
    default:
      return "kind_" + std::to_string(static_cast<int>(kind));
  }
}

void fail(const std::string& what) {
  std::fprintf(stderr, "powercut_check: %s\n", what.c_str());
  ++failures;
}

/// Reads a whole message body from `fd`; false on a read error.
bool read_all(int fd, std::string& out) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

void check_mailbox(st::maildir_store& store, const std::string& account, std::size_t n,
                   const std::string& name, const fs::path& dump) {
  auto mb = store.open_mailbox(account, name);
  if (!mb) return fail(account + " " + name + ": open: " + mb.err().describe());
  auto snap = (*mb)->snapshot();
  if (!snap) return fail(account + " " + name + ": snapshot: " + snap.err().describe());
  for (const auto& m : snap->messages) {
    auto file = (*mb)->read_message(m.uid);
    if (!file) {
      fail(account + " " + name + " uid " + std::to_string(m.uid) +
           ": read: " + file.err().describe());
      continue;
    }
    std::string body;
    if (!read_all(file->fd.get(), body)) {
      fail(account + " " + name + " uid " + std::to_string(m.uid) + ": read(2) failed");
      continue;
    }
    if (body.size() != m.size || body.size() != file->size) {
      fail(account + " " + name + " uid " + std::to_string(m.uid) + ": " +
           std::to_string(body.size()) + " octets read, the index says " + std::to_string(m.size));
    }
    const fs::path out = dump / account / (std::to_string(n) + "-" + std::to_string(m.uid));
    std::ofstream(out, std::ios::binary)
        .write(body.data(), static_cast<std::streamsize>(body.size()));
    std::printf("message %s %zu %u %zu %s\n", account.c_str(), n, m.uid, body.size(), name.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: powercut_check DATA_DIR DUMP_DIR ACCOUNT...\n");
    return 2;
  }
  const fs::path data_dir = argv[1];
  const fs::path dump = argv[2];
  auto store = st::maildir_store::open(data_dir);
  if (!store) {
    std::fprintf(stderr, "powercut_check: open %s: %s\n", data_dir.c_str(),
                 store.err().describe().c_str());
    return 1;
  }
  for (int i = 3; i < argc; ++i) {
    const std::string account = argv[i];
    fs::create_directories(dump / account);
    // What the cut left for recovery to repair, before anything opens a mailbox.
    if (auto before = (*store)->verify(account)) {
      for (const auto& d : *before)
        std::printf("before-recovery %s %s uid %u: %s %s\n", account.c_str(), d.mailbox.c_str(),
                    d.uid, kind_name(d.kind).c_str(), d.detail.c_str());
    } else if (before.err().code != hamail::errc::not_found) {
      fail(account + ": verify before recovery: " + before.err().describe());
    }
    auto list = (*store)->list_mailboxes(account);
    if (!list) {
      fail(account + ": list: " + list.err().describe());
      continue;
    }
    std::size_t n = 0;
    for (const auto& entry : *list) {
      if (entry.selectable) check_mailbox(**store, account, n, entry.name, dump);
      ++n;
    }
    auto after = (*store)->verify(account);
    if (!after) {
      fail(account + ": verify after recovery: " + after.err().describe());
      continue;
    }
    for (const auto& d : *after)
      fail(account + " " + d.mailbox + " uid " + std::to_string(d.uid) +
           ": index disagrees with the files after recovery: " + kind_name(d.kind) + " " +
           d.detail);
  }
  return failures == 0 ? 0 : 1;
}

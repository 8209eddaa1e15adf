// Reconciling an index with the message files: the files are the truth.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <vector>

#include "maildir_impl.hpp"
#include "posix_io.hpp"
#include "wire_size.hpp"

namespace hamail::store::detail {

namespace {

struct disk_file {
  std::string name;
  bool in_new_dir = false;
  message_name parsed;
  std::int64_t mtime = 0;
  std::uint64_t st_size = 0;
  std::string relpath() const { return (in_new_dir ? "new/" : "cur/") + name; }
  // A message stays in new/ only while it has no flags.
  bool target_in_new() const { return in_new_dir && parsed.flags.empty(); }
};

/// The wire size of a file that gets a new name: its W=, else its size when
/// it is named by hamail (S= and no W= means a CRLF-clean message), else
/// counted by reading it (another MDA's file, often with bare LFs). An
/// unreadable file counts as its size.
std::uint64_t wire_size_of_file(const fs::path& path, const disk_file& f, std::uint64_t size) {
  if (f.parsed.wire_size || f.parsed.size) return wire_size_in_base(f.parsed.base, size);
  auto fd = posix::open_file(path, O_RDONLY);
  if (!fd) return size;
  wire_counter counter;
  std::uint64_t read_size = 0;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    const ssize_t n = ::read(fd->get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return size;
    if (n == 0) break;
    counter.add(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    read_size += static_cast<std::uint64_t>(n);
  }
  // Changed while read (it should not be): the size the entry gets is the truth.
  if (read_size != size) return size;
  return counter.wire_size(read_size);
}

discrepancy make_discrepancy(discrepancy::kind_t kind, const std::string& mailbox, imap_uid uid,
                             std::string detail) {
  discrepancy d;
  d.kind = kind;
  d.mailbox = mailbox;
  d.uid = uid;
  d.detail = std::move(detail);
  return d;
}

}  // namespace

result<reconcile_outcome> reconcile(index_state& st, const fs::path& dir,
                                    const std::string& mailbox_name, bool apply, bool rebuilding) {
  reconcile_outcome out;
  using kind = discrepancy::kind_t;

  std::vector<disk_file> files;
  for (const bool is_new : {true, false}) {
    const fs::path sub = dir / (is_new ? "new" : "cur");
    auto entries = posix::list_dir(sub);
    if (!entries) return std::move(entries).err();
    for (auto& e : *entries) {
      auto parsed = e.is_regular ? parse_message_name(e.name) : std::nullopt;
      if (!parsed) {
        // Hidden files are other tools' business; anything else is worth a look.
        if (e.name.empty() || e.name.front() != '.')
          out.found.push_back(make_discrepancy(kind::stray_file, mailbox_name, 0,
                                               std::string(is_new ? "new/" : "cur/") + e.name));
        continue;
      }
      struct stat sb {};
      if (::stat((sub / e.name).c_str(), &sb) != 0) continue;  // vanished while listing
      files.push_back({std::move(e.name), is_new, std::move(*parsed),
                       static_cast<std::int64_t>(sb.st_mtime),
                       static_cast<std::uint64_t>(sb.st_size)});
    }
  }
  std::sort(files.begin(), files.end(), [](const disk_file& a, const disk_file& b) {
    return std::tie(a.in_new_dir, a.name) < std::tie(b.in_new_dir, b.name);
  });

  // Which file speaks for each UID; the rest need a new UID.
  std::map<imap_uid, std::vector<disk_file*>> by_uid;
  std::vector<disk_file*> needs_uid;
  std::vector<kind> why;  // parallel to needs_uid
  for (auto& f : files) {
    if (f.parsed.uid)
      by_uid[*f.parsed.uid].push_back(&f);
    else
      needs_uid.push_back(&f), why.push_back(kind::file_without_uid);
  }
  // The UIDs a file the index does not know may keep.
  const imap_uid accept_from = rebuilding ? 1 : st.uid_next;
  const imap_uid accept_to =
      rebuilding ? max_uid
                 : static_cast<imap_uid>(std::min<std::uint64_t>(
                       max_uid, std::uint64_t{st.uid_next} + uid_adoption_window - 1));
  std::map<imap_uid, disk_file*> chosen;
  for (auto& [uid, group] : by_uid) {
    const index_entry* e = st.find(uid);
    if (e == nullptr && (uid < accept_from || uid > accept_to)) {
      // Below UIDNEXT the UID may have been seen and expunged (a restored or
      // moved-in file); far above it would burn UIDs, at the top wrap UIDNEXT.
      // Renumbering is always safe: no client has seen a file the index lacks.
      for (disk_file* f : group) needs_uid.push_back(f), why.push_back(kind::stale_uid);
      continue;
    }
    disk_file* pick = group.front();
    if (e != nullptr) {
      auto it = std::find_if(group.begin(), group.end(),
                             [&](disk_file* f) { return f->parsed.base == e->base; });
      if (it != group.end()) pick = *it;
    }
    chosen[uid] = pick;
    for (disk_file* f : group)
      if (f != pick) needs_uid.push_back(f), why.push_back(kind::duplicate_uid);
  }

  // Index entries whose file vanished are expunged.
  std::vector<imap_uid> gone;
  for (const auto& e : st.entries)
    if (!chosen.count(e.uid)) gone.push_back(e.uid);
  for (imap_uid uid : gone) {
    out.found.push_back(
        make_discrepancy(kind::indexed_file_missing, mailbox_name, uid, st.find(uid)->relpath()));
    const mod_seq ms = ++st.highest_modseq;
    st.erase(uid);
    out.records.push_back(expunge_record(uid, ms));
    out.expunged.emplace_back(uid, ms);
  }

  struct rename_op {
    fs::path from, to;
    bool new_dir;
  };
  std::vector<rename_op> first_renames;  // files moving to a new UID: done first, they free names
  std::vector<rename_op> renames;

  // Files with a UID: update known entries, add unknown ones.
  for (auto& [uid, f] : chosen) {
    index_entry* e = st.find(uid);
    const bool in_new = f->target_in_new();
    if (e == nullptr) {
      out.found.push_back(
          make_discrepancy(kind::file_not_indexed, mailbox_name, uid, f->relpath()));
      index_entry ne;
      ne.uid = uid;
      ne.modseq = ++st.highest_modseq;
      ne.flags = f->parsed.flags;
      ne.date = f->mtime;
      ne.size = f->parsed.size.value_or(f->st_size);
      // The file keeps its name, which must say the wire size on a replay.
      ne.wire_size = wire_size_in_base(f->parsed.base, ne.size);
      ne.in_new = in_new;
      ne.recent = in_new;
      ne.base = f->parsed.base;
      if (uid >= st.uid_next) st.uid_next = uid + 1;
      out.records.push_back(add_record(ne));
      st.insert(std::move(ne));
      e = st.find(uid);
    } else {
      if (e->flags != f->parsed.flags) {
        out.found.push_back(make_discrepancy(kind::metadata_mismatch, mailbox_name, uid,
                                             "flags '" + flag_letters(e->flags) + "' in index, '" +
                                                 flag_letters(f->parsed.flags) + "' in " +
                                                 f->relpath()));
        e->flags = f->parsed.flags;
        e->modseq = ++st.highest_modseq;
        e->in_new = false;
        out.records.push_back(flags_record(uid, e->modseq, e->flags));
      }
      if (e->in_new != in_new || e->base != f->parsed.base) {
        out.found.push_back(
            make_discrepancy(kind::metadata_mismatch, mailbox_name, uid,
                             "index says " + e->relpath() + ", file is " + f->relpath()));
        e->in_new = in_new;
        e->base = f->parsed.base;
        e->wire_size = wire_size_in_base(e->base, e->size);
        out.records.push_back(move_record(uid, e->in_new, e->base));
      }
      // The file's place decides \Recent, as in replay: in cur/ it was claimed
      // (or flagged) even when the record saying so was lost in a crash; back in
      // new/ (a claim's rename lost to a power cut) it is recent again.
      e->recent = e->in_new;
    }
    const std::string canonical = e->relpath();
    if (canonical != f->relpath())
      renames.push_back({dir / f->relpath(), dir / canonical, in_new || f->in_new_dir});
  }

  // Files without a usable UID get new ones, oldest first.
  std::vector<std::size_t> order(needs_uid.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(needs_uid[a]->mtime, needs_uid[a]->name) <
           std::tie(needs_uid[b]->mtime, needs_uid[b]->name);
  });
  for (std::size_t i : order) {
    disk_file* f = needs_uid[i];
    out.found.push_back(
        make_discrepancy(why[i], mailbox_name, f->parsed.uid.value_or(0), f->relpath()));
    if (st.uid_next > max_uid) {
      return error::permanent(errc::limit_exceeded, "mailbox has no UIDs left",
                              "UID space exhausted in " + dir.string());
    }
    index_entry ne;
    ne.uid = st.uid_next++;
    ne.modseq = ++st.highest_modseq;
    ne.flags = f->parsed.flags;
    ne.date = f->mtime;
    ne.size = f->parsed.size.value_or(f->st_size);
    ne.wire_size = wire_size_of_file(dir / f->relpath(), *f, ne.size);
    ne.in_new = f->target_in_new();
    ne.recent = ne.in_new;
    ne.base = base_with_sizes_and_uid(f->parsed.base, ne.size, ne.wire_size, ne.uid);
    first_renames.push_back({dir / f->relpath(), dir / ne.relpath(), ne.in_new || f->in_new_dir});
    out.records.push_back(add_record(ne));
    st.insert(std::move(ne));
    ++out.uids_assigned;
  }

  if (!apply) return out;
  for (auto* list : {&first_renames, &renames}) {
    for (const auto& op : *list) {
      auto r = posix::rename_noreplace(op.from, op.to);
      if (!r) return std::move(r).err();
      (op.new_dir ? out.touched_new : out.touched_cur) = true;
      // A move between new/ and cur/ changes both.
      if (op.from.parent_path() != op.to.parent_path()) out.touched_new = out.touched_cur = true;
    }
  }
  return out;
}

}  // namespace hamail::store::detail

#include "sync/sync_pull.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <stdio.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/log.hpp"
#include "hamail/net/run_blocking.hpp"
#include "hamail/store/maildir_store.hpp"
#include "sync/sync_client.hpp"
#include "sync/sync_tree.hpp"

namespace hamail::backend::sync {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
/// Octets of a GET payload read and written at a time.
constexpr std::size_t fetch_chunk = 256 * 1024;
/// GET commands sent ahead of the reply being read.
constexpr std::size_t get_window = 32;

pull_result failed(std::string code, std::string text) {
  pull_result r;
  r.code = std::move(code);
  r.text = std::move(text);
  return r;
}

pull_result failed(const error& e) {
  log::warning("sync: PULL failed: {}", e.describe());
  return failed(no_code_for(e), e.user_text.empty() ? e.detail : e.user_text);
}

/// A NO code from the source, passed on when it is one plain word.
std::string source_code(const std::string& code) {
  if (code.empty() || code.size() > 20) return "SOURCE";
  for (char c : code)
    if (c < 'A' || c > 'Z') return "SOURCE";
  return code;
}

/// Where this pass writes.
struct target {
  fs::path root;
  bool installed = false;  ///< the installed tree of this move (after an earlier FINAL)
};

error exists_error(std::string text) {
  return error::permanent(errc::already_exists, std::move(text));
}

error io_error(int err, std::string_view what, const fs::path& p) {
  return error::temporary(errc::io_error, "file system error",
                          fmt::format("{} {}: {}", what, p.string(), std::strerror(err)));
}

bool is_dir(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// The staged copy of `account` from `source`, created when missing; or the installed copy
/// of this move. Refuses (already_exists) a staged copy from another store and an installed
/// tree that is not this move's.
result<target> prepare_target(const fs::path& data_dir, const std::string& account,
                              const std::string& source, bool durable) {
  const fs::path incoming = data_dir / "incoming";
  const fs::path staged = incoming / account;
  if (is_dir(staged)) {
    const auto marker = read_marker(staged);
    if (marker != source) {
      return exists_error(
          fmt::format("a staged copy of this account from store {} exists; DISCARD it first",
                      marker.empty() ? "(unknown)" : marker));
    }
    return target{staged, false};
  }
  auto installed = store::maildir_store::account_dir(data_dir, account);
  if (!installed) return std::move(installed).err();
  if (is_dir(*installed)) {
    if (read_marker(*installed) != source)
      return exists_error("the account already has a tree on this store");
    return target{*installed, true};
  }
  if (::mkdir(incoming.c_str(), 0700) != 0 && errno != EEXIST)
    return io_error(errno, "mkdir", incoming);
  // Built under a name no account id can have, marker first, then renamed into place: a
  // staged tree always names its source.
  const fs::path building = incoming / (".building." + account);
  std::error_code ec;
  fs::remove_all(building, ec);
  if (::mkdir(building.c_str(), 0700) != 0) return io_error(errno, "mkdir", building);
  if (auto m = write_marker(building, source, durable); !m) return std::move(m).err();
  if (::rename(building.c_str(), staged.c_str()) != 0) return io_error(errno, "rename", building);
  if (auto s = sync_directory(incoming, durable); !s) return std::move(s).err();
  return target{staged, false};
}

/// FINAL: makes everything durable, then renames the staged tree to its place in accounts/.
result<void> install(const fs::path& data_dir, const target& t, const std::string& account,
                     bool durable) {
  if (auto s = sync_file_system(data_dir, durable); !s) return s;
  if (t.installed) return ok();
  auto dst = store::maildir_store::account_dir(data_dir, account);
  if (!dst) return std::move(dst).err();
  const fs::path shard = dst->parent_path();
  const fs::path accounts = shard.parent_path();
  if (::mkdir(accounts.c_str(), 0700) != 0 && errno != EEXIST)
    return io_error(errno, "mkdir", accounts);
  if (::mkdir(shard.c_str(), 0700) == 0) {
    if (auto s = sync_directory(accounts, durable); !s) return s;
  } else if (errno != EEXIST) {
    return io_error(errno, "mkdir", shard);
  }
  if (::renameat2(AT_FDCWD, t.root.c_str(), AT_FDCWD, dst->c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    if (err == EEXIST || err == ENOTEMPTY)
      return exists_error("the account already has a tree on this store");
    if (err != EINVAL && err != ENOSYS) return io_error(err, "rename", t.root);
    // No RENAME_NOREPLACE on this file system: check, then rename (the store is ours).
    if (is_dir(*dst)) return exists_error("the account already has a tree on this store");
    if (::rename(t.root.c_str(), dst->c_str()) != 0) return io_error(errno, "rename", t.root);
  }
  if (auto s = sync_directory(shard, durable); !s) return s;
  return sync_directory(t.root.parent_path(), durable);
}

/// One pass over an authenticated-or-not connection `c`.
class pass {
 public:
  pass(pull_environment& env, const command& cmd, std::uint64_t rate, pull_progress& progress,
       progress_sink* sink, sync_client& c)
      : env_(env), cmd_(cmd), rate_(rate), progress_(progress), sink_(sink), c_(c) {}

  asio::awaitable<pull_result> run() {
    // AUTH: the source names itself in its OK.
    // Lines are built before the co_await: GCC 12 mishandles temporaries inside one.
    const std::string auth_line = "AUTH " + env_.secret;
    // Two statements: GCC 12 frees the frame twice for co_await in an if's init.
    auto sent_auth = co_await c_.send(auth_line);
    if (!sent_auth) co_return failed(sent_auth.err());
    auto auth = co_await c_.read_reply();
    if (!auth) co_return failed(auth.err());
    if (auth->kind == reply::kind_t::no) co_return failed("AUTH", "the source refused the secret");
    if (auth->kind != reply::kind_t::ok) co_return failed("PROTOCOL", "unexpected AUTH reply");
    source_ = auth->text.substr(0, auth->text.find(' '));
    if (!valid_store_name(source_))
      co_return failed("PROTOCOL", "the source did not name its store");

    // The source's listing.
    const std::string list_line = "LIST " + cmd_.account;
    // Two statements: GCC 12 frees the frame twice for co_await in an if's init.
    auto sent_list = co_await c_.send(list_line);
    if (!sent_list) co_return failed(sent_list.err());
    std::vector<tree_entry> remote;
    for (;;) {
      auto r = co_await c_.read_reply();
      if (!r) co_return failed(r.err());
      co_await tick();
      if (r->kind == reply::kind_t::ok) break;
      if (r->kind == reply::kind_t::no) co_return failed(source_code(r->code), r->text);
      if (r->kind == reply::kind_t::bad) co_return failed("PROTOCOL", "source: " + r->text);
      if (r->kind != reply::kind_t::file && r->kind != reply::kind_t::dir) continue;
      const auto slash = r->path.rfind('/');
      const std::string_view parent = slash == std::string::npos
                                          ? std::string_view{}
                                          : std::string_view(r->path).substr(0, slash);
      const std::string_view name = slash == std::string::npos
                                        ? std::string_view(r->path)
                                        : std::string_view(r->path).substr(slash + 1);
      if (excluded_from_list(parent, name, r->kind == reply::kind_t::dir)) continue;
      if (remote.size() >= max_tree_entries)
        co_return failed("LIMIT", "the source lists too many files");
      remote.push_back(tree_entry{r->path, r->kind == reply::kind_t::dir, r->size, r->mtime_ns});
    }

    // The local copy, once the source is known to have the account.
    {
      auto fn = [this]() {
        return prepare_target(env_.data_dir, cmd_.account, source_, env_.fsync);
      };
      auto t = co_await net::run_blocking(env_.blocking, std::move(fn));
      if (!t) co_return failed(t.err());
      target_ = std::move(*t);
    }

    // The diff, and what comes before the fetches.
    {
      auto fn = [this, &remote]() -> result<pull_plan> {
        auto local = list_tree(target_.root, true);
        if (!local) return std::move(local).err();
        pull_plan plan = plan_pull(remote, *local);
        if (auto a = apply_before_fetch(target_.root, plan); !a) return std::move(a).err();
        return plan;
      };
      auto p = co_await net::run_blocking(env_.blocking, std::move(fn));
      if (!p) co_return failed(p.err());
      plan_ = std::move(*p);
    }
    progress_.total_files = plan_.fetches.size();
    progress_.total_bytes = plan_.fetch_bytes;
    started_ = std::chrono::steady_clock::now();

    pull_result out;
    const auto& fetches = plan_.fetches;
    std::size_t sent = 0;
    for (std::size_t i = 0; i < fetches.size(); ++i) {
      // GETs are pipelined, up to get_window ahead of the reply being read: the source reads
      // its next command while this store writes the last file. Topped up in batches, one
      // write each; a batch is a few KiB, so it never waits on the replies it is ahead of.
      if (sent < fetches.size() && sent - i <= get_window / 2) {
        get_lines_.clear();
        const std::size_t end = std::min(fetches.size(), i + get_window);
        for (; sent < end; ++sent) {
          if (!get_lines_.empty()) get_lines_ += "\r\n";
          get_lines_ += "GET ";
          get_lines_ += cmd_.account;
          get_lines_ += ' ';
          get_lines_ += fetches[sent].path;
        }
        // Two statements: GCC 12 frees the frame twice for co_await in an if's init.
        auto s = co_await c_.send(get_lines_);
        if (!s) co_return failed(s.err());
      }
      const auto& e = fetches[i];
      auto got = co_await fetch(e);
      if (!got) co_return failed(got.err());
      if (*got) {
        ++out.fetched_files;
        ++progress_.files;
      }
      co_await tick();
    }
    out.fetched_bytes = progress_.bytes;

    {
      auto fn = [this]() -> result<void> {
        if (auto a = apply_after_fetch(target_.root, plan_); !a) return a;
        if (cmd_.final) return install(env_.data_dir, target_, cmd_.account, env_.fsync);
        return ok();
      };
      auto done = co_await net::run_blocking(env_.blocking, std::move(fn));
      if (!done) co_return failed(done.err());
    }
    out.ok = true;
    out.renamed = plan_.renames.size();
    out.removed = plan_.unlinks.size() + plan_.rmdirs.size() + plan_.remove_first.size();
    log::info("sync: PULL {} from {} ({}){}: {} file(s) {} byte(s) fetched, {} renamed, {} removed",
              cmd_.account, source_, c_.peer(), cmd_.final ? " FINAL" : "", out.fetched_files,
              out.fetched_bytes, out.renamed, out.removed);
    co_return out;
  }

 private:
  /// Reads the reply to the GET of `e` (sent by run()) and writes the file into place: true
  /// when fetched, false when it vanished on the source.
  asio::awaitable<result<bool>> fetch(const tree_entry& e) {
    auto r = co_await c_.read_reply();
    if (!r) co_return std::move(r).err();
    if (r->kind == reply::kind_t::no && r->code == "NONEXISTENT") co_return false;
    if (r->kind == reply::kind_t::no)
      co_return error::temporary(errc::unavailable, "source refused GET",
                                 fmt::format("GET {}: NO {} {}", e.path, r->code, r->text));
    if (r->kind != reply::kind_t::data)
      co_return error::temporary(errc::invalid_input, "sync protocol error",
                                 fmt::format("GET {}: unexpected reply", e.path));
    if (r->size <= fetch_chunk) co_return co_await fetch_whole(e, r->size);
    std::uint64_t remaining = r->size;
    fetch_file file;
    {
      auto fn = [this, &e]() { return begin_fetch(target_.root, e.path); };
      auto f = co_await net::run_blocking(env_.blocking, std::move(fn));
      if (!f) co_return std::move(f).err();
      file = std::move(*f);
    }
    result<void> status = ok();
    while (remaining > 0) {
      auto chunk = co_await c_.read_payload(
          static_cast<std::size_t>(std::min<std::uint64_t>(remaining, fetch_chunk)));
      if (!chunk) {
        status = std::move(chunk).err();
        break;
      }
      remaining -= chunk->size();
      progress_.bytes += chunk->size();
      auto fn = [&file, &chunk]() { return write_fetch(file, *chunk); };
      status = co_await net::run_blocking(env_.blocking, std::move(fn));
      if (!status) break;
      co_await pace();
      co_await tick();
    }
    if (status) {
      // The payload is followed by the command's OK.
      auto end = co_await c_.read_reply();
      if (!end)
        status = std::move(end).err();
      else if (end->kind != reply::kind_t::ok)
        status = error::temporary(errc::invalid_input, "sync protocol error",
                                  fmt::format("GET {}: no OK after the data", e.path));
    }
    if (status) {
      auto fn = [&file, &e]() { return finish_fetch(file, e.mtime_ns); };
      status = co_await net::run_blocking(env_.blocking, std::move(fn));
    }
    if (!status) {
      auto fn = [&file]() {
        abandon_fetch(file);
        return true;
      };
      (void)co_await net::run_blocking(env_.blocking, std::move(fn));
      co_return std::move(status).err();
    }
    co_return true;
  }

  /// A file of at most fetch_chunk octets (most messages): read whole with the OK after it,
  /// then created, written, dated and renamed in one trip to the blocking pool instead of one
  /// per step.
  asio::awaitable<result<bool>> fetch_whole(const tree_entry& e, std::uint64_t size) {
    std::string data;
    while (data.size() < size) {
      auto chunk = co_await c_.read_payload(static_cast<std::size_t>(size - data.size()));
      if (!chunk) co_return std::move(chunk).err();
      if (data.empty())
        data = std::move(*chunk);  // usually the whole file at once: no copy
      else
        data += *chunk;
    }
    progress_.bytes += size;
    auto end = co_await c_.read_reply();
    if (!end) co_return std::move(end).err();
    if (end->kind != reply::kind_t::ok) {
      co_return error::temporary(errc::invalid_input, "sync protocol error",
                                 fmt::format("GET {}: no OK after the data", e.path));
    }
    auto fn = [this, &e, &data]() -> result<void> {
      auto f = begin_fetch(target_.root, e.path);
      if (!f) return std::move(f).err();
      auto status = write_fetch(*f, data);
      if (status) status = finish_fetch(*f, e.mtime_ns);
      if (!status) abandon_fetch(*f);
      return status;
    };
    auto done = co_await net::run_blocking(env_.blocking, std::move(fn));
    if (!done) co_return std::move(done).err();
    co_await pace();
    co_return true;
  }

  /// Reports progress when progress_interval has passed since the last report.
  asio::awaitable<void> tick() {
    const auto now = std::chrono::steady_clock::now();
    if (sink_ == nullptr || now - last_report_ < progress_interval) co_return;
    last_report_ = now;
    co_await sink_->report(progress_);
  }

  /// RATE: waits until the bytes fetched so far are within the rate, allowing a burst of at
  /// most one second's worth after an idle stretch.
  asio::awaitable<void> pace() {
    if (rate_ == 0) co_return;
    const auto now = std::chrono::steady_clock::now();
    const auto due =
        started_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(static_cast<double>(progress_.bytes) /
                                                     static_cast<double>(rate_)));
    if (due > now) {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_at(due);
      (void)co_await timer.async_wait(use_tuple);
    } else if (now - due > std::chrono::seconds(1)) {
      started_ += (now - due) - std::chrono::seconds(1);
    }
  }

  pull_environment& env_;
  const command& cmd_;
  std::uint64_t rate_;
  pull_progress& progress_;
  progress_sink* sink_;
  sync_client& c_;
  std::chrono::steady_clock::time_point last_report_ = std::chrono::steady_clock::now();
  std::string source_;
  std::string get_lines_;  ///< the batch of GET lines being sent
  target target_;
  pull_plan plan_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

asio::awaitable<pull_result> run_pull(pull_environment& env, const command& cmd, std::uint64_t rate,
                                      pull_progress& progress, progress_sink* sink) {
  auto ex = co_await asio::this_coro::executor;
  auto conn =
      co_await sync_client::connect(ex, cmd.host, cmd.port, env.tls, env.check_host, env.timeout);
  if (!conn) co_return failed(conn.err());
  pass p(env, cmd, rate, progress, sink, **conn);
  pull_result r = co_await p.run();
  co_await (*conn)->close();
  co_return r;
}

}  // namespace hamail::backend::sync

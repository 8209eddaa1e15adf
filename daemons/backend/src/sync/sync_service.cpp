// The server end of the sync channel: one session per connection, one command at a time
// (docs/sync.md). File system work runs on the blocking pool; this file only moves bytes.

#include "hamail/backend/sync_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/core/log.hpp"
#include "hamail/net/run_blocking.hpp"
#include "hamail/tls/context.hpp"
#include "sync/sync_protocol.hpp"
#include "sync/sync_pull.hpp"
#include "sync/sync_tree.hpp"

namespace hamail::backend {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace sync;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
/// Octets of a file read and sent at a time by GET.
constexpr std::size_t get_chunk = 256 * 1024;
/// LIST lines are gathered into writes of about this size.
constexpr std::size_t list_batch = 64 * 1024;
/// BAD replies before the session is closed.
constexpr int max_bad = 10;

/// Compares in time that depends on the secret's length only.
bool same_secret(std::string_view given, std::string_view secret) noexcept {
  unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (std::size_t i = 0; i < secret.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(secret[i]));
  }
  return diff == 0;
}

class session {
 public:
  session(sync_context& ctx, net::connection& conn) : ctx_(ctx), conn_(conn) {}

  asio::awaitable<void> run() {
    const std::string remote = conn_.remote_address();
    const auto& allowed = ctx_.config.sync.allowed_from;
    if (std::find(allowed.begin(), allowed.end(), remote) == allowed.end()) {
      conn_.log().notice("sync: connection from {} refused (not in [sync] allowed_from)", remote);
      co_return;
    }
    conn_.set_idle_timeout(std::chrono::seconds(30));
    // No `continue` and no co_await inside a nested if: GCC 12 corrupts coroutine frames
    // there (seen as a crash on the first BAD).
    bool keep = true;
    while (keep) {
      auto line = co_await next_line();
      if (!line) break;
      keep = co_await answer(*line);
    }
  }

  /// Answers one command line; false when the session must end.
  asio::awaitable<bool> answer(const std::string& line) {
    if (line.empty() && too_long_) {
      too_long_ = false;
      queue(format_bad("line too long"));
      const bool sent = co_await flush();
      co_return sent&& authenticated_ && ++bad_count_ < max_bad;
    }
    if (parse_line(line)) co_return co_await handle(command_);
    queue(format_bad(parse_error_));
    const bool sent = co_await flush();
    co_return sent&& authenticated_ && ++bad_count_ < max_bad;
  }

  /// Parses into command_ or parse_error_. Not in a coroutine frame: GCC 12 sized the frame
  /// of a coroutine holding a parsed_command too small (the error text overwrote the next
  /// frame).
  bool parse_line(const std::string& line) {
    auto parsed = parse_command(line);
    if (!parsed.cmd) {
      parse_error_ = std::move(parsed.error);
      return false;
    }
    command_ = std::move(*parsed.cmd);
    return true;
  }

 private:
  /// The next command line; nullopt when the session is over (closed, timed out, draining).
  asio::awaitable<std::optional<std::string>> next_line() {
    for (;;) {
      if (!in_.empty()) {
        auto step = lines_.feed(in_);
        in_.erase(0, step.consumed);
        if (step.status == line_status::line) co_return std::move(step.line);
        if (step.status == line_status::too_long) {
          too_long_ = true;
          co_return std::string();
        }
      }
      std::array<char, 16384> buf;
      auto n = co_await conn_.read_some(asio::buffer(buf), net::read_mode::idle);
      if (!n) {
        if (n.err().code == errc::shutting_down) {
          queue(format_no("UNAVAILABLE", "shutting down"));
          (void)co_await flush();
        }
        co_return std::nullopt;
      }
      in_.append(buf.data(), *n);
    }
  }

  /// Queues reply text; flush() writes it. (No coroutine takes strings by value: GCC 12
  /// destroys by-value coroutine parameters and co_await temporaries twice.)
  void queue(std::string_view text) { out_.append(text); }
  /// Writes what is queued; false when the connection failed.
  asio::awaitable<bool> flush() {
    if (out_.empty()) co_return true;
    auto r = co_await conn_.write(out_);
    out_.clear();
    co_return r.has_value();
  }
  // Replies are queued, then flush() writes them: no coroutine here takes a parameter by value
  // or is returned through a wrapper, and a BAD's bookkeeping is inline (a small helper
  // coroutine for it crashed under GCC 12).
  asio::awaitable<bool> handle(const command& cmd) {
    if (cmd.what == verb::auth) co_return co_await do_auth(cmd);
    if (!authenticated_) {
      {
        queue(format_no("AUTH", "authenticate first"));
        (void)co_await flush();
      }
      co_return false;
    }
    // A PULL sends a GET per file: those are logged at debug level, the PULL at info.
    if (cmd.what == verb::get)
      conn_.log().debug("sync: GET {} {}", cmd.account, cmd.path);
    else
      conn_.log().info("sync: {} {}", to_string(cmd.what), cmd.account);
    switch (cmd.what) {
      case verb::list:
        co_return co_await do_list(cmd);
      case verb::get:
        co_return co_await do_get(cmd);
      case verb::fence:
        co_return co_await do_fence(cmd);
      case verb::unfence:
        co_return co_await do_unfence(cmd);
      case verb::purge:
        co_return co_await do_purge(cmd);
      case verb::pull:
        co_return co_await do_pull(cmd);
      case verb::discard:
        co_return co_await do_discard(cmd);
      case verb::auth:
        break;
    }
    co_return false;
  }

  asio::awaitable<bool> do_auth(const command& cmd) {
    if (authenticated_) {
      queue(format_bad("already authenticated"));
      const bool sent = co_await flush();
      co_return sent&& authenticated_ && ++bad_count_ < max_bad;
    }
    if (ctx_.secret.empty() || !same_secret(cmd.secret, ctx_.secret)) {
      conn_.log().notice("sync: AUTH from {} failed", conn_.remote_address());
      {
        queue(format_no("AUTH", "authentication failed"));
        (void)co_await flush();
      }
      co_return false;
    }
    authenticated_ = true;
    conn_.set_idle_timeout(std::chrono::minutes(10));
    // The store names itself: PULL records it in the staged copy's marker.
    const std::string text = ctx_.config.store.name + " ready";
    {
      queue(format_ok(text));
      co_return co_await flush();
    }
  }

  result<fs::path> account_root(const std::string& account) const {
    return store::maildir_store::account_dir(ctx_.config.store.data_dir, account);
  }

  asio::awaitable<bool> do_list(const command& cmd) {
    auto root = account_root(cmd.account);
    if (!root) {
      queue(format_bad("invalid account id"));
      const bool sent = co_await flush();
      co_return sent&& authenticated_ && ++bad_count_ < max_bad;
    }
    auto fn = [r = *root]() { return list_tree(r, false); };
    auto entries = co_await net::run_blocking(ctx_.blocking, std::move(fn));
    if (!entries) {
      const auto& e = entries.err();
      if (e.code != errc::not_found) conn_.log().warning("sync: LIST: {}", e.describe());
      const std::string code = no_code_for(e);
      const std::string text = e.code == errc::not_found ? "no such account" : e.user_text;
      {
        queue(format_no(code, text));
        co_return co_await flush();
      }
    }
    for (const auto& e : *entries) {
      if (e.dir)
        queue(format_dir(e.path));
      else
        queue(format_file(e.size, e.mtime_ns, e.path));
      if (out_.size() >= list_batch && !co_await flush()) co_return false;
    }
    queue(format_ok(fmt::format("{} entries", entries->size())));
    co_return co_await flush();
  }

  asio::awaitable<bool> do_get(const command& cmd) {
    auto root = account_root(cmd.account);
    if (!root) {
      queue(format_bad("invalid account id"));
      const bool sent = co_await flush();
      co_return sent&& authenticated_ && ++bad_count_ < max_bad;
    }
    const auto slash = cmd.path.rfind('/');
    const std::string_view whole = cmd.path;
    const std::string_view parent =
        slash == std::string::npos ? std::string_view{} : whole.substr(0, slash);
    const std::string_view name = slash == std::string::npos ? whole : whole.substr(slash + 1);
    if (excluded_from_list(parent, name, false)) {
      queue(format_no("NONEXISTENT", "not part of the account's listing"));
      co_return co_await flush();
    }
    auto open = [r = *root, p = cmd.path]() { return open_for_get(r, p); };
    auto opened = co_await net::run_blocking(ctx_.blocking, std::move(open));
    if (!opened) {
      const auto& e = opened.err();
      if (e.code != errc::not_found) conn_.log().warning("sync: GET: {}", e.describe());
      const std::string code = no_code_for(e);
      const std::string text = e.code == errc::not_found ? "no such file" : e.user_text;
      {
        queue(format_no(code, text));
        co_return co_await flush();
      }
    }
    auto fd = std::make_shared<store::unique_fd>(std::move(opened->first));
    const std::uint64_t size = opened->second;
    queue(format_data(size));
    if (!co_await flush()) co_return false;
    std::uint64_t offset = 0;
    while (offset < size) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size - offset, get_chunk));
      auto read = [fd, offset, want]() { return read_chunk(fd->get(), offset, want); };
      auto chunk = co_await net::run_blocking(ctx_.blocking, std::move(read));
      if (!chunk || chunk->empty()) {
        // The announced size can no longer be sent (the file shrank, or a read failed):
        // only closing the connection keeps the stream framed. The client's pass fails.
        conn_.log().warning("sync: GET {} {}: {}", cmd.account, cmd.path,
                            chunk ? "file shrank while being sent" : chunk.err().describe());
        co_return false;
      }
      offset += chunk->size();
      auto w = co_await conn_.write(*chunk);
      if (!w) co_return false;
    }
    {
      queue(format_ok({}));
      co_return co_await flush();
    }
  }

  asio::awaitable<bool> do_fence(const command& cmd) {
    if (ctx_.fences == nullptr) {
      queue(format_no("UNAVAILABLE", "no fences on this store"));
      co_return co_await flush();
    }
    // Not a conditional expression: GCC 12 miscompiles co_await inside ?:.
    result<void> r = ok();
    if (cmd.moved)
      r = co_await ctx_.fences->mark_moved(cmd.account, cmd.store);
    else
      r = co_await ctx_.fences->lock(cmd.account, cmd.store,
                                     std::chrono::seconds(cmd.lease_seconds));
    if (!r) {
      const auto& e = r.err();
      conn_.log().notice("sync: FENCE {}: {}", cmd.account, e.describe());
      if (e.code == errc::already_exists) {
        queue(format_no("MOVED", "the account is moved"));
        co_return co_await flush();
      }
      if (e.is_temporary() && e.code != errc::io_error) {
        queue(format_no("BUSY", "the account stayed busy"));
        co_return co_await flush();
      }
      const std::string code = no_code_for(e);
      {
        queue(format_no(code, e.user_text));
        co_return co_await flush();
      }
    }
    {
      queue(format_ok(cmd.moved ? "moved" : "locked"));
      co_return co_await flush();
    }
  }

  asio::awaitable<bool> do_unfence(const command& cmd) {
    if (ctx_.fences == nullptr) {
      queue(format_no("UNAVAILABLE", "no fences on this store"));
      co_return co_await flush();
    }
    auto r = co_await ctx_.fences->unlock(cmd.account);
    if (!r) {
      const auto& e = r.err();
      if (e.code == errc::permission_denied) {
        queue(format_no("MOVED", "the account is moved"));
        co_return co_await flush();
      }
      const std::string code = no_code_for(e);
      {
        queue(format_no(code, e.user_text));
        co_return co_await flush();
      }
    }
    {
      queue(format_ok("unfenced"));
      co_return co_await flush();
    }
  }

  asio::awaitable<bool> do_purge(const command& cmd) {
    if (ctx_.fences == nullptr) {
      queue(format_no("UNAVAILABLE", "no fences on this store"));
      co_return co_await flush();
    }
    if (ctx_.fences->current(cmd.account).kind != fence_state::kind_t::moved) {
      queue(format_no("NOTMOVED", "the account has no moved fence"));
      co_return co_await flush();
    }
    auto fn = [&st = ctx_.store, a = cmd.account]() { return st.remove_account(a); };
    auto removed = co_await net::run_blocking(ctx_.blocking, std::move(fn));
    if (!removed && removed.err().code != errc::not_found) {
      conn_.log().warning("sync: PURGE {}: {}", cmd.account, removed.err().describe());
      const std::string code = no_code_for(removed.err());
      {
        queue(format_no(code, removed.err().user_text));
        co_return co_await flush();
      }
    }
    auto forgot = co_await ctx_.fences->forget(cmd.account);
    if (!forgot) {
      const std::string code = no_code_for(forgot.err());
      {
        queue(format_no(code, forgot.err().user_text));
        co_return co_await flush();
      }
    }
    conn_.log().notice("sync: account {} purged", cmd.account);
    {
      queue(format_ok("purged"));
      co_return co_await flush();
    }
  }

  /// Whether the directory places `account` on this store.
  asio::awaitable<result<bool>> owned_here(const std::string& account) {
    auto found = co_await ctx_.directory.find_by_login(account);
    if (!found) co_return std::move(found).err();
    if (!*found || (*found)->id != account) co_return false;
    co_return (*found)->owning_store == ctx_.config.store.name;
  }

  asio::awaitable<bool> do_pull(const command& cmd) {
    auto owned = co_await owned_here(cmd.account);
    if (!owned) {
      queue(format_no("UNAVAILABLE", "the directory cannot be reached"));
      co_return co_await flush();
    }
    if (*owned) {
      queue(format_no("OWNED", "the directory places this account here"));
      co_return co_await flush();
    }
    pull_environment env{
        ctx_.blocking,           ctx_.config.store.data_dir,       ctx_.secret,
        ctx_.client_tls,         ctx_.config.sync.verify_hostname, ctx_.config.store.fsync,
        ctx_.config.sync.timeout};
    const std::uint64_t rate = cmd.rate ? *cmd.rate : ctx_.config.sync.rate_limit;
    // Progress is reported by the pass itself whenever it runs (a reporter coroutine beside
    // it, spawned or joined with `&&`, had its frame freed under GCC 12).
    pull_progress progress;
    pull_result result = co_await run_pull(env, cmd, rate, progress, &reporter_);
    if (!result.ok) {
      queue(format_no(result.code, result.text));
      co_return co_await flush();
    }
    queue(format_ok(fmt::format("{} {} {} {}", result.fetched_files, result.fetched_bytes,
                                result.renamed, result.removed)));
    co_return co_await flush();
  }

  /// Writes `* PROGRESS` lines for PULL.
  class reporter final : public progress_sink {
   public:
    explicit reporter(session& s) : s_(s) {}
    asio::awaitable<void> report(const pull_progress& p) override {
      s_.queue(format_progress(p.files, p.bytes, p.total_files, p.total_bytes));
      (void)co_await s_.flush();
    }

   private:
    session& s_;
  };

  asio::awaitable<bool> do_discard(const command& cmd) {
    if (ctx_.fences != nullptr &&
        ctx_.fences->current(cmd.account).kind != fence_state::kind_t::none) {
      queue(format_no("FENCED", "the account is fenced here: this store is a move's source"));
      co_return co_await flush();
    }
    auto owned = co_await owned_here(cmd.account);
    if (!owned) {
      queue(format_no("UNAVAILABLE", "the directory cannot be reached"));
      co_return co_await flush();
    }
    if (*owned) {
      queue(format_no("OWNED", "the directory places this account here"));
      co_return co_await flush();
    }
    const fs::path data_dir = ctx_.config.store.data_dir;
    const bool durable = ctx_.config.store.fsync;
    auto fn = [&st = ctx_.store, data_dir, durable, a = cmd.account]() -> result<std::string> {
      std::string what;
      const fs::path staged = data_dir / "incoming" / a;
      auto r = remove_tree_via(staged, data_dir / "tmp", durable);
      if (r)
        what = "staged";
      else if (r.err().code != errc::not_found)
        return std::move(r).err();
      auto installed = store::maildir_store::account_dir(data_dir, a);
      if (!installed) return std::move(installed).err();
      std::error_code ec;
      if (fs::is_directory(*installed, ec)) {
        if (read_marker(*installed).empty()) {
          if (what.empty())
            return error::permanent(errc::already_exists,
                                    "the account's tree here is no move's copy");
          return what;
        }
        if (auto rm = st.remove_account(a); !rm) return std::move(rm).err();
        what += what.empty() ? "installed" : " installed";
      }
      if (what.empty()) what = "nothing";
      return what;
    };
    auto removed = co_await net::run_blocking(ctx_.blocking, std::move(fn));
    if (!removed) {
      const std::string code = no_code_for(removed.err());
      {
        queue(format_no(code, removed.err().user_text));
        co_return co_await flush();
      }
    }
    conn_.log().notice("sync: DISCARD {}: {} removed", cmd.account, *removed);
    queue(format_ok("discarded " + *removed));
    co_return co_await flush();
  }

  sync_context& ctx_;
  net::connection& conn_;
  std::string in_;
  std::string out_;
  command command_;          ///< the command being answered
  std::string parse_error_;  ///< why the last line was not a command
  reporter reporter_{*this};
  line_splitter lines_{max_command_line};
  bool too_long_ = false;
  bool authenticated_ = false;
  int bad_count_ = 0;
};

class sync_protocol final : public net::protocol {
 public:
  explicit sync_protocol(sync_context& ctx) : ctx_(ctx) {}

  asio::awaitable<void> run(net::connection& conn) override {
    session s(ctx_, conn);
    co_await s.run();
  }
  std::string busy_reply() const override {
    return format_no("UNAVAILABLE", "too many connections");
  }
  std::string shutdown_reply() const override { return format_no("UNAVAILABLE", "shutting down"); }

 private:
  sync_context& ctx_;
};

}  // namespace

result<std::string> load_sync_secret(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return error::permanent(errc::config_error, "sync secret unreadable",
                            fmt::format("[sync] secret_file {}: cannot read", file.string()));
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
    line.pop_back();
  const bool control = std::any_of(line.begin(), line.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (line.size() < 16 || line.size() > max_secret || control) {
    return error::permanent(
        errc::config_error, "sync secret invalid",
        fmt::format("[sync] secret_file {}: the first line must be 16 to 1024 printable octets",
                    file.string()));
  }
  return line;
}

bool has_sync_listener(const backend_config& cfg) {
  return std::any_of(cfg.server.listeners.begin(), cfg.server.listeners.end(),
                     [](const listener_settings& l) { return l.protocol == "sync"; });
}

result<std::unique_ptr<sync_context>> make_sync_context(const backend_config& cfg,
                                                        store::maildir_store& store,
                                                        directory::directory& directory,
                                                        asio::thread_pool& blocking,
                                                        fence_control* fences) {
  auto secret = load_sync_secret(cfg.sync.secret_file);
  if (!secret) return std::move(secret).err();
  auto tls = tls::make_client_context(cfg.sync.ca_file, true);
  if (!tls) return std::move(tls).err();
  auto ctx = std::make_unique<sync_context>(
      sync_context{cfg, store, directory, blocking, fences, std::move(*secret), std::move(*tls)});
  return ctx;
}

net::protocol_factories sync_protocols(sync_context& ctx) {
  net::protocol_factories f;
  f["sync"] = [&ctx](const listener_settings&) { return std::make_shared<sync_protocol>(ctx); };
  return f;
}

}  // namespace hamail::backend

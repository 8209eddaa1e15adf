// account move (the data move): copy passes pulled by the destination, the source fenced for
// the final pass, the owning store switched with one modify, the source's copy purged after the
// grace period. docs/adr/0005-account-moves.md, docs/admin.md.

#include "move_commands.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "directory_model.hpp"
#include "hamail/admin/errors.hpp"
#include "sync_client.hpp"

namespace hamail::admin::detail {

namespace {

using op = attribute_change::operation;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int max_copy_passes = 10;
constexpr milliseconds connect_timeout{10'000};
// A PULL reports progress at least every half second; a store that says nothing for this
// long is taken as gone.
constexpr milliseconds pull_idle{60'000};

// The fault tests stop hamail-admin at a named point of a move (tests/integration/
// test_account_move_faults.py): with HAMAIL_ADMIN_TEST_STOP_AT=<point> the process sends
// itself SIGSTOP there, and the test kills it or lets it go on. Points: copied (the copy passes
// done, the journal still `copy`), locked (the source fenced), pulled (the final pass done,
// before the switch), switched (the directory switched, before FENCE MOVED).
void test_stop(const char* point) {
  const char* at = std::getenv("HAMAIL_ADMIN_TEST_STOP_AT");
  if (at != nullptr && std::strcmp(at, point) == 0) ::raise(SIGSTOP);
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t number(std::string_view text) {
  std::uint64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto sp = s.find(' ');
    if (sp != 0) out.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

[[noreturn]] void fail(exit_status status, const std::string& message) {
  throw admin_error(status, message);
}

std::string store_error(const std::string& where, const std::string& what, const sync_reply& r) {
  return what + " on " + where + " failed: " + (r.bad ? "BAD " : "NO ") +
         (r.code.empty() ? "" : r.code + " ") + r.text;
}

class mover {
 public:
  mover(command_context& ctx, const ldap_entry& e, move_journal j, const move_options& o)
      : ctx_(ctx), e_(e), j_(std::move(j)), o_(o), id_(e.first("uid")) {}

  command_output run() {
    from_ = require_store(ctx_, j_.from);
    to_ = require_store(ctx_, j_.to);
    if (j_.phase == "copy") copy_passes();
    if (j_.phase == "final") final_pass_and_switch();
    if (j_.phase == "switched") release_and_purge();
    return output();
  }

 private:
  void say(const std::string& line) {
    if (o_.progress) o_.progress(line);
  }

  void write_journal(const std::string& phase) {
    j_.phase = phase;
    j_.since = unix_now();
    ctx_.dir.modify(e_.dn, {{op::replace, "hamailMoveJournal", {format_move_journal(j_)}}});
  }

  pass_result pull(bool final) {
    sync_client dst(to_, ctx_.settings, connect_timeout);
    std::string cmd = "PULL " + id_ + " " + from_.address + " " + std::to_string(*from_.sync_port);
    if (final) cmd += " FINAL";
    if (o_.rate > 0) cmd += " RATE " + std::to_string(o_.rate);
    const auto started = clock::now();
    const auto reply = dst.command(
        cmd,
        [&](std::string_view line) {
          const auto w = words(line);
          if (w.size() >= 5 && w[0] == "PROGRESS") {
            const double secs =
                std::chrono::duration<double>(clock::now() - started).count() + 1e-9;
            say("pass " + std::to_string(passes_ + 1) + (final ? " (final)" : "") + ": " +
                progress_bar(number(w[2]), number(w[4]), 20) + " " + std::string(w[1]) + "/" +
                std::string(w[3]) + " files, " + mib(number(w[2])) + " of " + mib(number(w[4])) +
                ", " + mib(static_cast<std::uint64_t>(static_cast<double>(number(w[2])) / secs)) +
                "/s");
          }
        },
        pull_idle);
    if (!reply.ok && reply.code == "NONEXISTENT" && source_has_no_tree()) {
      // An account that never received mail nor logged in has no tree on its store: there is
      // nothing to copy, and under the final pass's fence none can appear before the switch.
      say(std::string("pass ") + (final ? "(final)" : std::to_string(passes_ + 1)) + ": " +
          from_.name + " has no mail for the account: nothing to copy");
      count_pass(0, started);
      pass_result none;
      none.absent = true;
      return none;
    }
    if (!reply.ok) {
      fail(reply.code == "NONEXISTENT" ? exit_status::not_found : exit_status::refused,
           store_error(dst.where(), final ? "the final pass" : "a copy pass", reply));
    }
    const auto w = words(reply.text);
    pass_result r;
    if (w.size() >= 4) r = {number(w[0]), number(w[1]), number(w[2]), number(w[3])};
    count_pass(r.files, started);
    total_.files += r.files;
    total_.bytes += r.bytes;
    say("pass " + std::to_string(passes_) + (final ? " (final)" : "") +
        " done: " + std::to_string(r.files) + " files (" + mib(r.bytes) + ") fetched, " +
        std::to_string(r.renamed) + " renamed, " + std::to_string(r.removed) + " removed");
    return r;
  }

  /// Records a finished pass for the progress lines and the JSON result.
  void count_pass(std::uint64_t files, clock::time_point started) {
    ++passes_;
    pass_files_.push_back(files);
    pass_ms_.push_back(static_cast<std::uint64_t>(
        std::chrono::duration_cast<milliseconds>(clock::now() - started).count()));
  }

  /// Whether the source says it has no tree for the account (asked after a PULL said
  /// NONEXISTENT, which may also be about a file or the destination).
  bool source_has_no_tree() {
    sync_client src(from_, ctx_.settings, connect_timeout);
    const auto listed = src.command("LIST " + id_, {}, pull_idle);
    return !listed.ok && listed.code == "NONEXISTENT";
  }

  void copy_passes() {
    std::optional<pass_result> previous;
    for (int n = 0; n < max_copy_passes; ++n) {
      const pass_result r = pull(false);
      if (r.absent || copy_converged(previous, r)) break;
      previous = r;
    }
    test_stop("copied");
    write_journal("final");
  }

  void final_pass_and_switch() {
    sync_client src(from_, ctx_.settings, connect_timeout);
    const auto locked = clock::now();
    auto fenced = src.command(
        "FENCE " + id_ + " LOCKED " + to_.name + " " + std::to_string(o_.lock_lease.count()), {},
        connect_timeout);
    if (!fenced.ok) {
      fail(exit_status::refused,
           store_error(src.where(), "locking the account", fenced) + "\nthe account stays on " +
               from_.name + "; run account move " + id_ + " --resume to try again, or --abort");
    }
    test_stop("locked");
    try {
      pull(true);
    } catch (const admin_error& err) {
      // The account must not stay locked because the destination failed: unlock it now.
      // (Should this fail too, the fence's lease gives the account back to the source.)
      try {
        (void)src.command("UNFENCE " + id_, {}, connect_timeout);
      } catch (const admin_error&) {
      }
      fail(err.status(), std::string(err.what()) + "\nthe account stays on " + from_.name +
                             " (unlocked); run account move " + id_ +
                             " --resume to try again, "
                             "or --abort");
    }
    test_stop("pulled");
    // The commit point: one modify names the new store and records the phase.
    j_.phase = "switched";
    j_.since = unix_now();
    ctx_.dir.modify(e_.dn, {{op::replace, "hamailOwningStore", {to_.name}},
                            {op::replace, "mailHost", {to_.host}},
                            {op::replace, "hamailMoveJournal", {format_move_journal(j_)}}});
    test_stop("switched");
    const auto moved = src.command("FENCE " + id_ + " MOVED " + to_.name, {}, connect_timeout);
    locked_ms_ = std::chrono::duration_cast<milliseconds>(clock::now() - locked).count();
    switched_now_ = true;
    if (!moved.ok) {
      fail(exit_status::refused, store_error(src.where(), "marking the account moved", moved) +
                                     "\nthe account is on " + to_.name + " now; run account move " +
                                     id_ + " --resume to finish (the lock's lease keeps " +
                                     from_.name + " from serving it)");
    }
    say("switched to " + to_.name + ": the account was locked for " + std::to_string(locked_ms_) +
        " ms");
  }

  void release_and_purge() {
    if (!switched_now_) {  // a resumed move: the source may not have been told yet
      sync_client src(from_, ctx_.settings, connect_timeout);
      const auto moved = src.command("FENCE " + id_ + " MOVED " + to_.name, {}, connect_timeout);
      if (!moved.ok) fail(exit_status::refused, store_error(src.where(), "FENCE MOVED", moved));
    }
    const std::int64_t purge_at = j_.since + o_.grace.count();
    const std::int64_t wait = purge_at - unix_now();
    if (wait > 0) {
      say("keeping the copy on " + from_.name + " for " + std::to_string(wait) +
          " s (the grace period; interrupting is safe: --resume finishes)");
      std::this_thread::sleep_for(seconds(wait));
    }
    // A connection of its own: one held through the grace period would have timed out.
    sync_client src(from_, ctx_.settings, connect_timeout);
    const auto purged = src.command("PURGE " + id_, {}, pull_idle);
    if (!purged.ok && purged.code != "NONEXISTENT") {
      fail(exit_status::refused, store_error(src.where(), "deleting the old copy", purged));
    }
    ctx_.dir.modify(e_.dn, {{op::replace, "hamailMoveJournal", {}}});
    purged_ = true;
  }

  command_output output() const {
    std::string text = "account " + id_ + ": moved " + from_.name + " -> " + to_.name;
    text += " (" + std::to_string(passes_) + " pass" + (passes_ == 1 ? "" : "es") + ", " +
            std::to_string(total_.files) + " files, " + mib(total_.bytes);
    if (locked_ms_ >= 0) text += ", locked " + std::to_string(locked_ms_) + " ms";
    text += purged_ ? ", old copy deleted)\n" : ")\n";
    return {text,
            json_value::object{
                {"id", id_},
                {"from", from_.name},
                {"to", to_.name},
                {"moved", true},
                {"data_moved", true},
                {"passes", static_cast<std::uint64_t>(passes_)},
                {"pass_files", numbers(pass_files_)},
                {"pass_ms", numbers(pass_ms_)},
                {"files", total_.files},
                {"bytes", total_.bytes},
                {"locked_ms", locked_ms_ >= 0 ? json_value(static_cast<std::uint64_t>(locked_ms_))
                                              : json_value()},
                {"purged", purged_},
            }};
  }

  static json_value numbers(const std::vector<std::uint64_t>& v) {
    json_value::array a;
    for (auto n : v) a.emplace_back(n);
    return a;
  }

  command_context& ctx_;
  const ldap_entry& e_;
  move_journal j_;
  const move_options& o_;
  std::string id_;
  store_record from_, to_;
  int passes_ = 0;
  std::vector<std::uint64_t> pass_files_;  ///< files fetched by each pass of this run
  std::vector<std::uint64_t> pass_ms_;     ///< how long each pass took
  pass_result total_;
  std::int64_t locked_ms_ = -1;
  bool switched_now_ = false;
  bool purged_ = false;
};

}  // namespace

std::string progress_bar(std::uint64_t done, std::uint64_t total, std::size_t width) {
  std::size_t filled = width;
  if (total > 0 && done < total) {
    filled = static_cast<std::size_t>(static_cast<long double>(done) / total * width);
  }
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

bool copy_converged(const std::optional<pass_result>& previous, const pass_result& last) {
  if (last.files < small_delta_files && last.bytes < small_delta_bytes) return true;
  return previous.has_value() && last.files >= previous->files;
}

std::optional<move_journal> parse_move_journal(std::string_view text) {
  const auto w = words(text);
  if (w.size() != 4) return std::nullopt;
  if (w[0] != "copy" && w[0] != "final" && w[0] != "switched") return std::nullopt;
  move_journal j{std::string(w[0]), std::string(w[1]), std::string(w[2]), 0};
  const auto* end = w[3].data() + w[3].size();
  if (std::from_chars(w[3].data(), end, j.since).ptr != end) return std::nullopt;
  return j;
}

std::string format_move_journal(const move_journal& j) {
  return j.phase + " " + j.from + " " + j.to + " " + std::to_string(j.since);
}

command_output start_move(command_context& ctx, const ldap_entry& e, const std::string& from,
                          const std::string& to, const move_options& o) {
  // Nothing is written before both stores answer on their sync listeners: a move that cannot
  // run leaves no journal behind.
  {
    const store_record source = require_store(ctx, from);
    const store_record target = require_store(ctx, to);
    sync_client src(source, ctx.settings, connect_timeout);
    sync_client dst(target, ctx.settings, connect_timeout);
  }
  move_journal j{"copy", from, to, unix_now()};
  ctx.dir.modify(e.dn, {{op::replace, "hamailMoveJournal", {format_move_journal(j)}}});
  return mover(ctx, e, std::move(j), o).run();
}

command_output resume_move(command_context& ctx, const ldap_entry& e, const move_journal& j,
                           const move_options& o) {
  return mover(ctx, e, j, o).run();
}

command_output abort_move(command_context& ctx, const ldap_entry& e, const move_journal& j) {
  const std::string id = e.first("uid");
  if (j.phase == "switched") {
    fail(exit_status::refused, "account \"" + id + "\" is on " + j.to +
                                   " already (the move switched); move it back instead");
  }
  const store_record from = require_store(ctx, j.from);
  const store_record to = require_store(ctx, j.to);
  sync_client src(from, ctx.settings, connect_timeout);
  const auto unfenced = src.command("UNFENCE " + id, {}, connect_timeout);
  if (!unfenced.ok && unfenced.code != "NONEXISTENT") {
    fail(exit_status::refused, store_error(src.where(), "unlocking the account", unfenced));
  }
  sync_client dst(to, ctx.settings, connect_timeout);
  const auto discarded = dst.command("DISCARD " + id, {}, pull_idle);
  if (!discarded.ok && discarded.code != "NONEXISTENT") {
    fail(exit_status::refused, store_error(dst.where(), "discarding the copy", discarded));
  }
  ctx.dir.modify(e.dn, {{op::replace, "hamailMoveJournal", {}}});
  return {"account " + id + ": move " + j.from + " -> " + j.to + " aborted; it stays on " + j.from +
              "\n",
          json_value::object{{"id", id},
                             {"from", j.from},
                             {"to", j.to},
                             {"moved", false},
                             {"aborted", true},
                             {"phase", j.phase}}};
}

}  // namespace hamail::admin::detail

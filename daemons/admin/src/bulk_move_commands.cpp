// store drain | placement rebalance: a plan of account moves (placement.hpp), run a few at a
// time, each one an `account move` with its own directory connection.

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "directory_model.hpp"
#include "hamail/admin/commands.hpp"
#include "hamail/admin/errors.hpp"
#include "hamail/admin/placement.hpp"
#include "hamail/directory/ldap_escape.hpp"
#include "move_commands.hpp"

namespace hamail::admin {
namespace {

using op = attribute_change::operation;

struct outcome {
  planned_move move;
  bool resume = false;  ///< the account's journal recorded this move already
  bool ok = false;
  std::string detail;  ///< the move's result line, or its error
};

// Runs `work` with `concurrency` threads, each with its own directory connection.
void run_moves(const command_context& ctx, std::vector<outcome>& work, const bulk_move_options& o) {
  std::atomic<std::size_t> next{0};
  std::mutex out;
  const unsigned threads =
      std::max(1U, std::min<unsigned>(o.concurrency, static_cast<unsigned>(work.size())));
  move_options base;
  base.grace = o.grace;
  base.rate = o.rate == 0 ? 0 : std::max<std::uint64_t>(1, o.rate / threads);
  auto worker = [&] {
    directory_connection dir(ctx.settings);
    command_context c{dir, ctx.settings};
    for (std::size_t i = next++; i < work.size(); i = next++) {
      outcome& w = work[i];
      move_options m = base;
      if (w.resume) {
        m.resume = true;
      } else {
        m.to = w.move.to;
      }
      try {
        const command_output r = account_move(c, w.move.account, m);
        w.ok = true;
        w.detail = r.text.substr(0, r.text.find('\n'));
      } catch (const std::exception& e) {
        w.detail = e.what();
      }
      if (o.progress) {
        const std::lock_guard lock(out);
        o.progress((w.ok ? "done: " : "FAILED: ") + w.move.account + ": " + w.detail);
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
}

command_output report(const std::string& what, std::vector<outcome>& work,
                      const bulk_move_options& o, json_value::object extra) {
  std::string text;
  json_value::array plan, failed;
  std::size_t moved = 0;
  for (const auto& w : work) {
    plan.push_back(json_value::object{
        {"id", w.move.account}, {"from", w.move.from}, {"to", w.move.to}, {"resume", w.resume}});
    if (o.dry_run) {
      text += w.move.account + ": " + w.move.from + " -> " + w.move.to +
              (w.resume ? " (resumes the move in progress)" : "") + "\n";
    } else if (w.ok) {
      ++moved;
      text += w.detail + "\n";
    } else {
      failed.push_back(json_value::object{{"id", w.move.account}, {"error", w.detail}});
      text += "FAILED " + w.move.account + ": " + w.detail + "\n";
    }
  }
  text += what + ": " + std::to_string(work.size()) + " move" + (work.size() == 1 ? "" : "s") +
          (o.dry_run ? " planned (--dry-run: nothing moved)"
                     : " planned, " + std::to_string(moved) + " done, " +
                           std::to_string(work.size() - moved) + " failed") +
          "\n";
  extra.emplace_back("dry_run", o.dry_run);
  extra.emplace_back("plan", plan);
  extra.emplace_back("moved", static_cast<std::uint64_t>(moved));
  extra.emplace_back("failed", failed);
  command_output result{text, extra};
  if (!o.dry_run && moved != work.size()) {
    // Every move ran; the result says which failed, and the exit status that some did.
    result.exit_code = static_cast<int>(exit_status::refused);
    result.error = what + ": " + std::to_string(work.size() - moved) + " of " +
                   std::to_string(work.size()) + " moves failed";
  }
  return result;
}

}  // namespace

command_output store_drain(command_context& ctx, const std::string& name,
                           const bulk_move_options& o) {
  const detail::store_record store = detail::require_store(ctx, name);
  const auto stores = detail::load_stores(ctx);
  std::size_t from = 0;
  while (from < stores.size() && stores[from].name != store.name) ++from;
  std::vector<std::string> ids;
  std::vector<outcome> work;
  const auto accounts = ctx.dir.search(ctx.accounts_dn(), search_scope::subtree,
                                       "(&(objectClass=hamailAccount)(hamailOwningStore=" +
                                           directory::escape_filter_value(store.name) + "))",
                                       {"uid", "hamailMoveJournal"});
  for (const auto& e : accounts) {
    if (e.has("hamailMoveJournal")) {
      const auto j = detail::parse_move_journal(e.first("hamailMoveJournal"));
      work.push_back({{e.first("uid"), j ? j->from : store.name, j ? j->to : "?"}, true});
    } else {
      ids.push_back(e.first("uid"));
    }
  }
  std::sort(ids.begin(), ids.end());
  std::size_t unplaced = 0;
  for (auto& m :
       plan_drain(detail::loads_of(stores, detail::count_accounts(ctx)), from, ids, &unplaced)) {
    work.push_back({std::move(m)});
  }
  if (unplaced > 0) {
    throw admin_error(exit_status::refused, "store \"" + store.name +
                                                "\" cannot be drained: no other open store with "
                                                "a weight above 0 takes its " +
                                                std::to_string(unplaced) + " account(s)");
  }
  if (!o.dry_run) {
    if (store.state == store_state::open) {
      ctx.dir.modify(ctx.store_dn(store.name), {{op::replace, "hamailStoreState", {"draining"}}});
    }
    run_moves(ctx, work, o);
  }
  return report("drain of " + store.name, work, o, {{"store", store.name}});
}

command_output placement_rebalance(command_context& ctx, const bulk_move_options& o) {
  const auto stores = detail::load_stores(ctx);
  std::vector<std::vector<std::string>> ids(stores.size());
  std::size_t in_progress = 0;
  const auto accounts =
      ctx.dir.search(ctx.accounts_dn(), search_scope::subtree, "(objectClass=hamailAccount)",
                     {"uid", "hamailOwningStore", "hamailMoveJournal"});
  std::map<std::string, std::uint64_t> counts;
  for (const auto& e : accounts) {
    const std::string owner = lower_ascii(e.first("hamailOwningStore"));
    ++counts[owner];
    if (e.has("hamailMoveJournal")) {
      ++in_progress;  // its move is someone else's: neither moved nor counted as movable
      continue;
    }
    for (std::size_t i = 0; i < stores.size(); ++i) {
      if (lower_ascii(stores[i].name) == owner) ids[i].push_back(e.first("uid"));
    }
  }
  // The last account of a store moves first: sort descending so that it is the smallest id.
  for (auto& v : ids) std::sort(v.begin(), v.end(), std::greater<>());
  std::vector<outcome> work;
  for (auto& m : plan_rebalance(detail::loads_of(stores, counts), ids, o.tolerance, o.max_moves)) {
    work.push_back({std::move(m)});
  }
  if (!o.dry_run) run_moves(ctx, work, o);
  return report("rebalance", work, o,
                {{"tolerance", o.tolerance},
                 {"moves_in_progress_left_alone", static_cast<std::uint64_t>(in_progress)}});
}

}  // namespace hamail::admin

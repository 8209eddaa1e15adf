#include "hamail/admin/placement.hpp"

#include <algorithm>
#include <cmath>

namespace hamail::admin {

bool eligible_for_placement(const store_load& store) noexcept {
  return store.state == store_state::open && store.weight > 0;
}

std::optional<std::size_t> choose_store(const std::vector<store_load>& stores) noexcept {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < stores.size(); ++i) {
    const store_load& s = stores[i];
    if (!eligible_for_placement(s)) continue;
    if (!best) {
      best = i;
      continue;
    }
    const store_load& b = stores[*best];
    // (a+1)/w < (b+1)/v  <=>  (a+1)*v < (b+1)*w: exact in integers. Weights are
    // capped at 10^6 (2^20), so products stay below 2^64 for any account count
    // under 2^43.
    const std::uint64_t ws = std::min(s.weight, max_weight);
    const std::uint64_t wb = std::min(b.weight, max_weight);
    const std::uint64_t lhs = (s.accounts + 1) * wb;
    const std::uint64_t rhs = (b.accounts + 1) * ws;
    if (lhs < rhs || (lhs == rhs && s.name < b.name)) best = i;
  }
  return best;
}

placement_summary summarise_placement(const std::vector<store_load>& stores) {
  placement_summary summary;
  for (const store_load& s : stores) {
    summary.total_accounts += s.accounts;
    if (eligible_for_placement(s)) summary.eligible_weight += std::min(s.weight, max_weight);
  }
  for (const store_load& s : stores) {
    placement_row row;
    row.name = s.name;
    row.state = s.state;
    row.weight = s.weight;
    row.eligible = eligible_for_placement(s);
    row.accounts = s.accounts;
    if (summary.total_accounts > 0) {
      row.share = static_cast<double>(s.accounts) / static_cast<double>(summary.total_accounts);
    }
    if (row.eligible && summary.eligible_weight > 0) {
      row.weight_share = static_cast<double>(std::min(s.weight, max_weight)) /
                         static_cast<double>(summary.eligible_weight);
    }
    row.deviation = row.share - row.weight_share;
    summary.imbalance = std::max(summary.imbalance, std::fabs(row.deviation));
    summary.rows.push_back(row);
  }
  // With no accounts at all nothing is out of balance, whatever the weights say.
  if (summary.total_accounts == 0) summary.imbalance = 0;
  return summary;
}

std::vector<planned_move> plan_drain(std::vector<store_load> stores, std::size_t from,
                                     const std::vector<std::string>& accounts,
                                     std::size_t* unplaced) {
  std::vector<planned_move> plan;
  if (unplaced != nullptr) *unplaced = 0;
  if (from >= stores.size()) return plan;
  const std::string source = stores[from].name;
  // The drained store takes nothing: whatever its state says, it is not a destination.
  stores[from].state = store_state::draining;
  for (const auto& account : accounts) {
    const auto to = choose_store(stores);
    if (!to) {
      if (unplaced != nullptr) ++*unplaced;
      continue;
    }
    ++stores[*to].accounts;
    plan.push_back({account, source, stores[*to].name});
  }
  return plan;
}

std::vector<planned_move> plan_rebalance(std::vector<store_load> stores,
                                         std::vector<std::vector<std::string>> accounts,
                                         double tolerance, std::size_t max_moves) {
  std::vector<planned_move> plan;
  accounts.resize(stores.size());
  std::uint64_t total = 0, weights = 0;
  for (const auto& s : stores) {
    if (!eligible_for_placement(s)) continue;
    total += s.accounts;
    weights += std::min(s.weight, max_weight);
  }
  if (total == 0 || weights == 0) return plan;
  // Excess over the weight share, in accounts: count - total * weight / weights.
  auto excess = [&](const store_load& s) {
    return static_cast<double>(s.accounts) -
           static_cast<double>(total) * static_cast<double>(std::min(s.weight, max_weight)) /
               static_cast<double>(weights);
  };
  const double allowed = tolerance * static_cast<double>(total);
  while (plan.size() < max_moves) {
    std::optional<std::size_t> donor;
    double worst = 0;
    for (std::size_t i = 0; i < stores.size(); ++i) {
      if (!eligible_for_placement(stores[i])) continue;
      const double d = std::fabs(excess(stores[i]));
      if (d > worst) worst = d;
      if (accounts[i].empty() || stores[i].accounts == 0) continue;
      if (!donor || excess(stores[i]) > excess(stores[*donor]) ||
          (excess(stores[i]) == excess(stores[*donor]) && stores[i].name < stores[*donor].name)) {
        donor = i;
      }
    }
    if (worst <= allowed || !donor) break;
    // The destination: the placement policy among the eligible stores but the donor.
    const store_state donor_state = stores[*donor].state;
    stores[*donor].state = store_state::draining;
    const auto to = choose_store(stores);
    stores[*donor].state = donor_state;
    if (!to) break;
    // Only a move that leaves both stores closer to their shares than the donor was.
    const double before = excess(stores[*donor]);
    const double after_to = excess(stores[*to]) + 1;
    if (before <= 0 || after_to >= before) break;
    --stores[*donor].accounts;
    ++stores[*to].accounts;
    plan.push_back({accounts[*donor].back(), stores[*donor].name, stores[*to].name});
    accounts[*donor].pop_back();
  }
  return plan;
}

}  // namespace hamail::admin

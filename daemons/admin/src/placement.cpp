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

}  // namespace hamail::admin

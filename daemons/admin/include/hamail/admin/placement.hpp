#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hamail/admin/validate.hpp"

namespace hamail::admin {

/// What placement needs to know about one store.
struct store_load {
  std::string name;                       ///< hamailStoreName
  std::uint64_t weight = 0;               ///< hamailCapacityWeight (absent = 0: never chosen)
  store_state state = store_state::open;  ///< hamailStoreState (absent = open)
  std::uint64_t accounts = 0;             ///< accounts whose hamailOwningStore names this store
};

/// True when the placement policy may put a new account on `store`: it is open
/// and its weight is > 0.
bool eligible_for_placement(const store_load& store) noexcept;

/// The placement policy: among eligible stores, the index of the one minimising
/// (accounts + 1) / weight, ties broken by the smaller name; nullopt when no store
/// is eligible. Deterministic given the directory's contents. Weights above
/// max_weight count as max_weight.
std::optional<std::size_t> choose_store(const std::vector<store_load>& stores) noexcept;

/// One store's line in a placement report.
struct placement_row {
  std::string name;                       ///< the store
  store_state state = store_state::open;  ///< its state
  std::uint64_t weight = 0;               ///< its capacity weight
  bool eligible = false;                  ///< whether placement may choose it
  std::uint64_t accounts = 0;             ///< accounts it owns
  double share = 0;                       ///< accounts / all accounts (0 when there are none)
  double weight_share = 0;  ///< weight / sum of eligible weights (0 when not eligible)
  double deviation = 0;     ///< share - weight_share
};

/// How accounts are spread over stores compared with their weights.
struct placement_summary {
  std::vector<placement_row> rows;    ///< one per store, in the input order
  std::uint64_t total_accounts = 0;   ///< accounts on all stores
  std::uint64_t eligible_weight = 0;  ///< sum of eligible stores' weights
  double imbalance = 0;               ///< max over stores of |share - weight_share|
};

/// Summarises `stores` for `placement report`.
placement_summary summarise_placement(const std::vector<store_load>& stores);

/// One account move a plan asks for.
struct planned_move {
  std::string account;
  std::string from;
  std::string to;
  bool operator==(const planned_move&) const = default;
};

/// `store drain`: every account of store `stores[from]` (`accounts`, in the order given) to the
/// store the placement policy chooses among the others, each choice counting the moves planned
/// before it. The drained store itself is never a destination. Empty when `accounts` is; the
/// accounts that found no eligible store are left out and counted in `unplaced`.
std::vector<planned_move> plan_drain(std::vector<store_load> stores, std::size_t from,
                                     const std::vector<std::string>& accounts,
                                     std::size_t* unplaced = nullptr);

/// `placement rebalance`: moves between eligible stores (open, weight > 0; accounts on other
/// stores stay where they are) until every eligible store's share of the eligible stores'
/// accounts is within `tolerance` (a fraction, e.g. 0.02) of its weight share, or no move
/// brings a store closer, or `max_moves` moves are planned. Each move takes an account from
/// the store furthest above its share (`accounts[i]` lists store i's accounts; the last one
/// goes first) to the store the placement policy chooses among the others. Deterministic.
std::vector<planned_move> plan_rebalance(std::vector<store_load> stores,
                                         std::vector<std::vector<std::string>> accounts,
                                         double tolerance, std::size_t max_moves);

}  // namespace hamail::admin

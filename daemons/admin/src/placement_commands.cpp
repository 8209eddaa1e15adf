// placement report

#include <cstdio>

#include "directory_model.hpp"
#include "hamail/admin/commands.hpp"
#include "hamail/admin/validate.hpp"

namespace hamail::admin {
namespace {

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", fraction * 100.0);
  return buf;
}

std::string signed_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", fraction * 100.0);
  return buf;
}

}  // namespace

command_output placement_report(command_context& ctx) {
  const auto stores = detail::load_stores(ctx);
  auto counts = detail::count_accounts(ctx);
  std::vector<store_load> loads;
  for (const auto& s : stores) {
    const auto it = counts.find(lower_ascii(s.name));
    loads.push_back({s.name, s.weight, s.state, it == counts.end() ? 0 : it->second});
    if (it != counts.end()) counts.erase(it);
  }
  // Accounts whose owning store has no store entry: a directory inconsistency.
  std::uint64_t orphans = 0;
  json_value::object orphan_json;
  for (const auto& [name, n] : counts) {
    orphans += n;
    orphan_json.emplace_back(name, n);
  }
  const placement_summary summary = summarise_placement(loads);

  std::vector<std::vector<std::string>> rows;
  json_value::array rows_json;
  for (const auto& r : summary.rows) {
    rows.push_back({r.name, std::string(to_string(r.state)), std::to_string(r.weight),
                    r.eligible ? "yes" : "no", std::to_string(r.accounts), percent(r.share),
                    percent(r.weight_share), signed_percent(r.deviation)});
    rows_json.push_back(json_value::object{{"name", r.name},
                                           {"state", to_string(r.state)},
                                           {"weight", r.weight},
                                           {"eligible", r.eligible},
                                           {"accounts", r.accounts},
                                           {"share", r.share},
                                           {"weight_share", r.weight_share},
                                           {"deviation", r.deviation},
                                           {"bytes", json_value()}});
  }
  std::string text = format_table(
      {"STORE", "STATE", "WEIGHT", "ELIGIBLE", "ACCOUNTS", "SHARE", "WEIGHT SHARE", "DEVIATION"},
      rows);
  text += "\naccounts: " + std::to_string(summary.total_accounts) + "\n";
  text += "imbalance: " + percent(summary.imbalance) +
          " (largest |share - weight share| over stores)\n";
  if (orphans > 0) {
    text += "accounts on unknown stores: " + std::to_string(orphans) + "\n";
  }
  text += "bytes: n/a (reported by stores)\n";
  return {text, json_value::object{{"stores", rows_json},
                                   {"total_accounts", summary.total_accounts},
                                   {"eligible_weight", summary.eligible_weight},
                                   {"imbalance", summary.imbalance},
                                   {"accounts_on_unknown_stores", orphans},
                                   {"unknown_stores", orphan_json},
                                   {"bytes", json_value()},
                                   {"bytes_note", "n/a (reported by stores)"}}};
}

}  // namespace hamail::admin

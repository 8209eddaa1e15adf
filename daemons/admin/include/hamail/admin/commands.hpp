#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/admin/ldap_connection.hpp"
#include "hamail/admin/output.hpp"
#include "hamail/admin/placement.hpp"
#include "hamail/admin/settings.hpp"

// hamail-admin's commands. Each one validates every input before it writes,
// writes each entry with one add or one modify, and returns what it did as text
// and JSON; failures throw admin_error (errors.hpp) with the documented exit status.

namespace hamail::admin {

/// What every command works with: the bound connection and the settings.
struct command_context {
  directory_connection& dir;     ///< the bound directory connection
  connection_settings settings;  ///< the resolved settings (base DN, default scheme)

  /// ou=stores,<base>
  std::string stores_dn() const { return "ou=stores," + settings.base_dn; }
  /// ou=accounts,<base>
  std::string accounts_dn() const { return "ou=accounts," + settings.base_dn; }
  /// hamailStoreName=<name>,ou=stores,<base>, the name DN-escaped.
  std::string store_dn(const std::string& name) const;
  /// uid=<id>,ou=accounts,<base>, the id DN-escaped.
  std::string account_dn(const std::string& id) const;
};

/// A store as given to `store add`; numbers as typed, validated by store_add().
struct store_spec {
  std::string name;                                        ///< hamailStoreName
  std::string host;                                        ///< hamailServiceHost
  std::string address;                                     ///< hamailServiceAddress; empty = none
  std::string smtp_port, lmtp_port, imap_port, pop3_port;  ///< empty = not set
  std::string sync_port;                                   ///< empty = not set (no moves)
  std::string weight = "1";                                ///< hamailCapacityWeight
  std::string state = "open";                              ///< hamailStoreState
};

/// `store add`: creates the store entry.
command_output store_add(command_context& ctx, const store_spec& spec);
/// `store list`: every store with its account count.
command_output store_list(command_context& ctx);
/// `store show NAME`.
command_output store_show(command_context& ctx, const std::string& name);
/// `store set-state NAME STATE`.
command_output store_set_state(command_context& ctx, const std::string& name,
                               const std::string& state);
/// `store set-weight NAME N`.
command_output store_set_weight(command_context& ctx, const std::string& name,
                                const std::string& weight);
/// `store set-sync-port NAME PORT`: where account moves reach the store (docs/sync.md).
command_output store_set_sync_port(command_context& ctx, const std::string& name,
                                   const std::string& port);
/// `store remove NAME`: refused (exit_status::refused) while accounts are placed on it.
command_output store_remove(command_context& ctx, const std::string& name);

/// An account as given to `account add`; sizes and counts as typed.
struct account_spec {
  std::string id;                       ///< uid
  std::string address;                  ///< primary address (mail)
  std::vector<std::string> aliases;     ///< further addresses
  std::optional<std::string> password;  ///< clear text; hashed before it is sent
  std::string scheme;                   ///< password scheme; empty = the configured default
  std::string store;                    ///< empty = chosen by the placement policy
  std::string quota_bytes;              ///< empty = not set
  std::string quota_messages;           ///< empty = not set
  std::string name;                     ///< cn; empty = the id
};

/// `account add`: validates, checks the id and every address are unused, places
/// the account (explicit store or policy) and creates it with one add.
command_output account_add(command_context& ctx, const account_spec& spec);
/// `account add --batch FILE`: one "ID ADDRESS [ALIAS...]" per line ('#' comments),
/// `common` supplying store, quotas and scheme. Validates every line and checks
/// every id and address before the first write.
command_output account_add_batch(command_context& ctx, const std::filesystem::path& file,
                                 const account_spec& common);
/// `account remove ID`.
command_output account_remove(command_context& ctx, const std::string& id);
/// `account show ID`.
command_output account_show(command_context& ctx, const std::string& id);
/// `account list [--store NAME]`.
command_output account_list(command_context& ctx, const std::string& store);
/// `account passwd ID`: replaces userPassword with a fresh hash of `password`.
command_output account_passwd(command_context& ctx, const std::string& id,
                              const std::string& password, const std::string& scheme);
/// `account quota ID [--bytes SIZE] [--messages N]`: shows, or sets what is given
/// ("0" = the store's default).
command_output account_quota(command_context& ctx, const std::string& id,
                             const std::optional<std::string>& bytes,
                             const std::optional<std::string>& messages);
/// `account alias add ID ADDRESS`.
command_output account_alias_add(command_context& ctx, const std::string& id,
                                 const std::string& address);
/// `account alias remove ID ADDRESS`.
command_output account_alias_remove(command_context& ctx, const std::string& id,
                                    const std::string& address);
/// `account lock ID` / `account unlock ID`; refused while the account is moving.
command_output account_lock(command_context& ctx, const std::string& id, bool lock);
/// `account set-state ID STATE`.
command_output account_set_state(command_context& ctx, const std::string& id,
                                 const std::string& state);
/// What `account move` is asked to do.
struct move_options {
  std::string to;                   ///< --to: the destination store (a new move)
  bool placement_only = false;      ///< --placement-only: record the placement, copy nothing
  bool resume = false;              ///< --resume: continue the move the journal records
  bool abort = false;               ///< --abort: undo a move that has not switched
  std::chrono::seconds grace{600};  ///< --grace: keep the old copy this long after the switch
  std::uint64_t rate = 0;           ///< --rate: bytes/s cap of the copy; 0 = the store's default
  std::chrono::seconds lock_lease{60};  ///< --lock-lease: the source's lock gives up after this
  /// Progress lines (a terminal's stderr); empty: none.
  std::function<void(std::string_view)> progress;
};

/// `account move ID --to STORE`: moves the account's mail to STORE while it stays in use
/// (docs/adr/0005-account-moves.md): copy passes, a brief lock, the switch, the old copy
/// deleted after the grace period. `--placement-only` records the placement change only (state
/// moving, then owning store and mailHost, then the previous state back). `--resume` and
/// `--abort` act on the move the account's journal records.
command_output account_move(command_context& ctx, const std::string& id, const move_options& o);

/// What `store drain` and `placement rebalance` are asked to do besides their plan.
struct bulk_move_options {
  bool dry_run = false;             ///< print the plan, move nothing
  unsigned concurrency = 2;         ///< moves at once (each one copies, locks and switches)
  std::uint64_t rate = 0;           ///< bytes/s for all moves together (shared out); 0 = none
  std::chrono::seconds grace{600};  ///< as account move --grace
  double tolerance = 0.02;          ///< rebalance: allowed |share - weight share|
  std::size_t max_moves = 1000;     ///< rebalance: at most this many moves per run
  /// Progress lines (a terminal's stderr); empty: none.
  std::function<void(std::string_view)> progress;
};

/// `store drain NAME`: marks the store draining (no new accounts) and moves every account off
/// it to the stores the placement policy chooses; accounts with a move in progress are resumed.
/// Exit refused when a move failed (the others still ran); --dry-run prints the plan only.
command_output store_drain(command_context& ctx, const std::string& name,
                           const bulk_move_options& o);

/// `placement rebalance`: moves accounts between open stores until each is within the
/// tolerance of its weight share (plan_rebalance); accounts with a move in progress stay.
command_output placement_rebalance(command_context& ctx, const bulk_move_options& o);

/// `placement report`: accounts per store against the weights.
command_output placement_report(command_context& ctx);

}  // namespace hamail::admin

// account add | remove | show | list | passwd | quota | alias | lock | unlock | set-state | move

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "directory_model.hpp"
#include "hamail/admin/commands.hpp"
#include "hamail/admin/errors.hpp"
#include "hamail/admin/validate.hpp"
#include "hamail/directory/account.hpp"
#include "hamail/directory/ldap_escape.hpp"
#include "hamail/directory/password.hpp"
#include "move_commands.hpp"

namespace hamail::admin {
namespace {

using namespace detail;
using op = attribute_change::operation;

/// An account, validated and ready to write.
struct new_account {
  std::string id;
  std::string address;
  std::vector<std::string> aliases;
  std::string name;
  std::string password_hash;  // empty = none
  std::optional<std::uint64_t> quota_bytes, quota_messages;
  std::string store;
  std::string mail_host;
};

std::uint64_t checked_size(const std::string& text) {
  const auto size = parse_size(text);
  if (!size) {
    throw admin_error(exit_status::invalid_input,
                      "invalid quota size \"" + text +
                          "\": use a number of bytes with an optional k, M, G or T (KiB, MiB, "
                          "GiB, TiB) suffix, e.g. 512M");
  }
  return *size;
}

std::uint64_t checked_messages(const std::string& text) {
  const auto n = parse_count(text);
  if (!n) {
    throw admin_error(exit_status::invalid_input,
                      "invalid message quota \"" + text + "\": use a non-negative integer");
  }
  return *n;
}

directory::password_scheme checked_scheme(const std::string& text) {
  directory::password_scheme scheme{};
  if (!directory::parse_password_scheme(text, scheme)) {
    throw admin_error(exit_status::invalid_input,
                      "unknown password scheme \"" + text +
                          "\": use SSHA, SSHA256, SSHA512, SHA512-CRYPT, YESCRYPT or ARGON2ID");
  }
  return scheme;
}

std::string hash(const std::string& password, directory::password_scheme scheme) {
  if (password.empty()) throw admin_error(exit_status::invalid_input, "the password is empty");
  auto h = directory::hash_password(scheme, password);
  if (!h) throw admin_error(exit_status::ldap_error, "hashing failed: " + h.err().describe());
  return *h;
}

std::string checked_name(const std::string& name) {
  for (const char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw admin_error(exit_status::invalid_input, "the name contains control characters");
    }
  }
  if (name.size() > 256) throw admin_error(exit_status::invalid_input, "the name is too long");
  return name;
}

/// Primary + aliases, validated, lower-cased, without repeats (a repeat is an error).
std::vector<std::string> checked_addresses(const std::string& primary,
                                           const std::vector<std::string>& aliases) {
  std::vector<std::string> all{checked_address(primary)};
  for (const auto& a : aliases) {
    std::string addr = checked_address(a);
    if (std::find(all.begin(), all.end(), addr) != all.end()) {
      throw admin_error(exit_status::invalid_input, "address \"" + addr + "\" is given twice");
    }
    all.push_back(std::move(addr));
  }
  return all;
}

/// Throws conflict when `address` is any entry's mail or mailLocalAddress.
void check_address_unused(command_context& ctx, const std::string& address) {
  const std::string v = directory::escape_filter_value(address);
  const auto hits = ctx.dir.search(ctx.settings.base_dn, search_scope::subtree,
                                   "(|(mail=" + v + ")(mailLocalAddress=" + v + "))", {"uid"});
  if (!hits.empty()) {
    const std::string owner = hits.front().first("uid");
    throw admin_error(
        exit_status::conflict,
        "address \"" + address + "\" is in use already" +
            (owner.empty() ? " (by " + hits.front().dn + ")" : " (by account \"" + owner + "\")"));
  }
}

[[noreturn]] void no_open_store() {
  throw admin_error(exit_status::refused,
                    "no store takes new accounts: none is open with a weight above 0 "
                    "(store set-state NAME open; store set-weight NAME N)");
}

void check_explicit_store(const store_record& s) {
  if (s.state != store_state::open) {
    throw admin_error(exit_status::refused, "store \"" + s.name + "\" is " +
                                                std::string(to_string(s.state)) +
                                                " and takes no new accounts");
  }
}

std::vector<attribute_change> entry_for(const new_account& a) {
  std::vector<std::string> local{a.address};
  local.insert(local.end(), a.aliases.begin(), a.aliases.end());
  std::vector<attribute_change> attrs{
      {op::add, "objectClass", {"inetOrgPerson", "hamailAccount", "inetLocalMailRecipient"}},
      {op::add, "uid", {a.id}},
      {op::add, "cn", {a.name}},
      {op::add, "sn", {a.name}},
      {op::add, "mail", {a.address}},
      {op::add, "mailLocalAddress", local},
      {op::add, "mailHost", {a.mail_host}},
      {op::add, "hamailOwningStore", {a.store}},
      {op::add, "hamailAccountState", {"active"}},
  };
  if (!a.password_hash.empty()) attrs.push_back({op::add, "userPassword", {a.password_hash}});
  if (a.quota_bytes && *a.quota_bytes > 0) {
    attrs.push_back({op::add, "hamailQuotaBytes", {std::to_string(*a.quota_bytes)}});
  }
  if (a.quota_messages && *a.quota_messages > 0) {
    attrs.push_back({op::add, "hamailQuotaMessages", {std::to_string(*a.quota_messages)}});
  }
  return attrs;
}

std::string state_of(const ldap_entry& e) {
  return e.has("hamailAccountState") ? lower_ascii(e.first("hamailAccountState")) : "active";
}

std::string account_text(const ldap_entry& e) {
  std::string aliases;
  for (const auto& a : aliases_of(e)) aliases += (aliases.empty() ? "" : ", ") + a;
  auto quota = [&](std::string_view attr) {
    const auto n = number_attribute(e, attr).value_or(0);
    return n == 0 ? std::string("store default") : std::to_string(n);
  };
  return format_fields({{"id", e.first("uid")},
                        {"name", e.first("cn")},
                        {"address", e.first("mail")},
                        {"aliases", aliases.empty() ? "-" : aliases},
                        {"store", e.first("hamailOwningStore")},
                        {"mail host", e.first("mailHost")},
                        {"quota bytes", quota("hamailQuotaBytes")},
                        {"quota messages", quota("hamailQuotaMessages")},
                        {"state", state_of(e)},
                        {"password", e.has("userPassword") ? "set" : "not set"}});
}

/// Validates everything about `spec` that needs no directory access.
new_account validate_spec(const account_spec& spec, const std::string& default_scheme,
                          bool with_password) {
  new_account a;
  check_account_id(spec.id);
  a.id = spec.id;
  auto addresses = checked_addresses(spec.address, spec.aliases);
  a.address = addresses.front();
  a.aliases.assign(addresses.begin() + 1, addresses.end());
  a.name = checked_name(spec.name.empty() ? spec.id : spec.name);
  if (!spec.quota_bytes.empty()) a.quota_bytes = checked_size(spec.quota_bytes);
  if (!spec.quota_messages.empty()) a.quota_messages = checked_messages(spec.quota_messages);
  const auto scheme = checked_scheme(spec.scheme.empty() ? default_scheme : spec.scheme);
  if (!spec.store.empty()) check_store_name(spec.store);
  if (with_password && spec.password) a.password_hash = hash(*spec.password, scheme);
  return a;
}

json_value::array string_array(const std::vector<std::string>& v) {
  json_value::array out;
  for (const auto& s : v) out.emplace_back(s);
  return out;
}

}  // namespace

command_output account_add(command_context& ctx, const account_spec& spec) {
  // Validate every input first (the password is hashed last, after the checks).
  new_account a = validate_spec(spec, ctx.settings.password_scheme, false);
  if (ctx.dir.read(ctx.account_dn(a.id), {"1.1"})) {
    throw admin_error(exit_status::conflict, "account \"" + a.id + "\" exists already");
  }
  check_address_unused(ctx, a.address);
  for (const auto& alias : a.aliases) check_address_unused(ctx, alias);

  bool placed_by_policy = false;
  if (!spec.store.empty()) {
    const store_record s = require_store(ctx, spec.store);
    check_explicit_store(s);
    a.store = s.name;
    a.mail_host = s.host;
  } else {
    const auto stores = load_stores(ctx);
    const auto choice = choose_store(loads_of(stores, count_accounts(ctx)));
    if (!choice) no_open_store();
    a.store = stores[*choice].name;
    a.mail_host = stores[*choice].host;
    placed_by_policy = true;
  }
  if (spec.password) {
    a.password_hash =
        hash(*spec.password,
             checked_scheme(spec.scheme.empty() ? ctx.settings.password_scheme : spec.scheme));
  }
  ctx.dir.add(ctx.account_dn(a.id), entry_for(a));
  auto entry = ctx.dir.read(ctx.account_dn(a.id), account_attributes());
  if (!entry) throw admin_error(exit_status::ldap_error, "account vanished right after its add");
  return {"added account " + a.id + " on store " + a.store +
              (placed_by_policy ? " (placement policy)" : "") + "\n" + account_text(*entry),
          json_value::object{{"added", account_json(*entry)},
                             {"placed_by", placed_by_policy ? "policy" : "operator"}}};
}

command_output account_add_batch(command_context& ctx, const std::filesystem::path& file,
                                 const account_spec& common) {
  std::ifstream in(file);
  if (!in) {
    throw admin_error(exit_status::invalid_input, file.string() + ": cannot read the batch file");
  }
  // 1. Parse and validate every line; collect every problem.
  std::vector<new_account> accounts;
  std::vector<std::string> problems;
  std::set<std::string> ids;
  std::set<std::string> addresses;
  exit_status worst = exit_status::invalid_input;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    std::istringstream fields(line);
    std::vector<std::string> words;
    for (std::string w; fields >> w;) words.push_back(w);
    if (words.empty() || words.front().front() == '#') continue;
    const std::string where = file.string() + ":" + std::to_string(line_no) + ": ";
    if (words.size() < 2) {
      problems.push_back(where + "expected \"ID ADDRESS [ALIAS...]\"");
      continue;
    }
    account_spec spec = common;
    spec.id = words[0];
    spec.address = words[1];
    spec.aliases.assign(words.begin() + 2, words.end());
    try {
      new_account a = validate_spec(spec, ctx.settings.password_scheme, false);
      if (!ids.insert(a.id).second) {
        problems.push_back(where + "account \"" + a.id + "\" appears twice");
        continue;
      }
      bool repeated = false;
      std::vector<std::string> all{a.address};
      all.insert(all.end(), a.aliases.begin(), a.aliases.end());
      for (const auto& addr : all) {
        if (!addresses.insert(addr).second) {
          problems.push_back(where + "address \"" + addr + "\" appears twice");
          repeated = true;
        }
      }
      if (!repeated) accounts.push_back(std::move(a));
    } catch (const admin_error& e) {
      problems.push_back(where + e.what());
    }
  }
  // 2. Check every id and address against the directory, in one read.
  if (problems.empty()) {
    std::set<std::string> taken_ids;
    std::map<std::string, std::string> taken_addresses;
    for (const auto& e : ctx.dir.search(ctx.settings.base_dn, search_scope::subtree,
                                        "(|(mail=*)(mailLocalAddress=*)(uid=*))",
                                        {"uid", "mail", "mailLocalAddress"})) {
      for (const auto& u : e.values("uid")) taken_ids.insert(lower_ascii(u));
      for (const auto& m : e.values("mail")) taken_addresses[lower_ascii(m)] = e.first("uid");
      for (const auto& m : e.values("mailLocalAddress")) {
        taken_addresses[lower_ascii(m)] = e.first("uid");
      }
    }
    for (const auto& a : accounts) {
      if (taken_ids.count(a.id) != 0) {
        problems.push_back("account \"" + a.id + "\" exists already");
      }
      std::vector<std::string> all{a.address};
      all.insert(all.end(), a.aliases.begin(), a.aliases.end());
      for (const auto& addr : all) {
        const auto it = taken_addresses.find(addr);
        if (it != taken_addresses.end()) {
          problems.push_back("address \"" + addr + "\" is in use already (by account \"" +
                             it->second + "\")");
        }
      }
    }
    if (!problems.empty()) worst = exit_status::conflict;
  }
  if (!problems.empty()) {
    std::string message = "nothing added; " + std::to_string(problems.size()) + " problem" +
                          (problems.size() == 1 ? "" : "s") + ":";
    const std::size_t shown = std::min<std::size_t>(problems.size(), 50);
    for (std::size_t i = 0; i < shown; ++i) message += "\n  " + problems[i];
    if (shown < problems.size()) {
      message += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
    }
    throw admin_error(worst, message);
  }
  if (accounts.empty()) throw admin_error(exit_status::invalid_input, "the batch file is empty");

  // 3. Placement: the explicit store, or the policy applied one account at a time.
  auto stores = load_stores(ctx);
  std::vector<store_load> loads = loads_of(stores, count_accounts(ctx));
  std::optional<std::size_t> fixed;
  if (!common.store.empty()) {
    const store_record s = require_store(ctx, common.store);
    check_explicit_store(s);
    for (std::size_t i = 0; i < stores.size(); ++i) {
      if (stores[i].name == s.name) fixed = i;
    }
    if (!fixed) throw admin_error(exit_status::not_found, "unknown store \"" + s.name + "\"");
  }
  for (auto& a : accounts) {
    const auto choice = fixed ? fixed : choose_store(loads);
    if (!choice) no_open_store();
    a.store = stores[*choice].name;
    a.mail_host = stores[*choice].host;
    ++loads[*choice].accounts;
  }

  // 4. Write, one add per account.
  std::map<std::string, std::uint64_t> per_store;
  json_value::array added;
  std::size_t done = 0;
  try {
    for (const auto& a : accounts) {
      ctx.dir.add(ctx.account_dn(a.id), entry_for(a));
      ++done;
      ++per_store[a.store];
      added.push_back(json_value::object{{"id", a.id}, {"address", a.address}, {"store", a.store}});
    }
  } catch (const admin_error& e) {
    throw admin_error(e.status(), std::string(e.what()) + "\n" + std::to_string(done) + " of " +
                                      std::to_string(accounts.size()) +
                                      " accounts were added before this failure; the rest were "
                                      "not (each account is written whole or not at all)");
  }
  std::string text = "added " + std::to_string(done) + " accounts\n";
  std::vector<std::vector<std::string>> rows;
  json_value::object stores_json;
  for (const auto& [name, n] : per_store) {
    rows.push_back({name, std::to_string(n)});
    stores_json.emplace_back(name, n);
  }
  text += format_table({"STORE", "ADDED"}, rows);
  return {text, json_value::object{{"added", static_cast<std::uint64_t>(done)},
                                   {"per_store", stores_json},
                                   {"accounts", added}}};
}

command_output account_remove(command_context& ctx, const std::string& id) {
  const ldap_entry e = require_account(ctx, id);
  ctx.dir.remove(e.dn);
  return {"removed account " + id + " (its mail stays on store " + e.first("hamailOwningStore") +
              " until the store purges it)\n",
          json_value::object{{"removed", id}, {"store", e.first("hamailOwningStore")}}};
}

command_output account_show(command_context& ctx, const std::string& id) {
  const ldap_entry e = require_account(ctx, id);
  return {account_text(e), json_value::object{{"account", account_json(e)}}};
}

command_output account_list(command_context& ctx, const std::string& store) {
  std::string filter = "(objectClass=hamailAccount)";
  if (!store.empty()) {
    (void)require_store(ctx, store);
    filter =
        "(&(objectClass=hamailAccount)(hamailOwningStore=" + directory::escape_filter_value(store) +
        "))";
  }
  auto entries =
      ctx.dir.search(ctx.accounts_dn(), search_scope::subtree, filter, account_attributes());
  std::sort(entries.begin(), entries.end(), [](const ldap_entry& a, const ldap_entry& b) {
    return a.first("uid") < b.first("uid");
  });
  std::vector<std::vector<std::string>> rows;
  json_value::array list;
  for (const auto& e : entries) {
    rows.push_back({e.first("uid"), e.first("mail"), e.first("hamailOwningStore"), state_of(e),
                    std::to_string(aliases_of(e).size())});
    list.push_back(account_json(e));
  }
  return {format_table({"ID", "ADDRESS", "STORE", "STATE", "ALIASES"}, rows),
          json_value::object{{"accounts", list}}};
}

command_output account_passwd(command_context& ctx, const std::string& id,
                              const std::string& password, const std::string& scheme_text) {
  check_account_id(id);
  const std::string scheme_name = scheme_text.empty() ? ctx.settings.password_scheme : scheme_text;
  const auto scheme = checked_scheme(scheme_name);
  if (password.empty()) throw admin_error(exit_status::invalid_input, "the password is empty");
  const ldap_entry e = require_account(ctx, id);
  ctx.dir.modify(e.dn, {{op::replace, "userPassword", {hash(password, scheme)}}});
  return {"password of " + id + " changed (" + scheme_name + ")\n",
          json_value::object{{"id", id}, {"scheme", scheme_name}, {"password_changed", true}}};
}

command_output account_quota(command_context& ctx, const std::string& id,
                             const std::optional<std::string>& bytes,
                             const std::optional<std::string>& messages) {
  check_account_id(id);
  std::optional<std::uint64_t> b, m;
  if (bytes) b = checked_size(*bytes);
  if (messages) m = checked_messages(*messages);
  const ldap_entry e = require_account(ctx, id);
  std::vector<attribute_change> changes;
  auto change = [&](const char* attr, std::uint64_t v) {
    // 0 = the store's default, which the schema spells as an absent attribute.
    changes.push_back(
        {op::replace, attr,
         v == 0 ? std::vector<std::string>{} : std::vector<std::string>{std::to_string(v)}});
  };
  if (b) change("hamailQuotaBytes", *b);
  if (m) change("hamailQuotaMessages", *m);
  if (!changes.empty()) ctx.dir.modify(e.dn, changes);
  const std::uint64_t qb = b.value_or(number_attribute(e, "hamailQuotaBytes").value_or(0));
  const std::uint64_t qm = m.value_or(number_attribute(e, "hamailQuotaMessages").value_or(0));
  auto text = [](std::uint64_t v) {
    return v == 0 ? std::string("store default") : std::to_string(v);
  };
  return {
      (changes.empty() ? "" : "quota of " + id + " changed\n") +
          format_fields({{"quota bytes", text(qb)}, {"quota messages", text(qm)}}),
      json_value::object{
          {"id", id}, {"quota_bytes", qb}, {"quota_messages", qm}, {"changed", !changes.empty()}}};
}

command_output account_alias_add(command_context& ctx, const std::string& id,
                                 const std::string& address) {
  check_account_id(id);
  const std::string addr = checked_address(address);
  const ldap_entry e = require_account(ctx, id);
  check_address_unused(ctx, addr);
  ctx.dir.modify(e.dn, {{op::add, "mailLocalAddress", {addr}}});
  auto aliases = aliases_of(e);
  aliases.push_back(addr);
  return {"added alias " + addr + " to " + id + "\n",
          json_value::object{{"id", id}, {"aliases", string_array(aliases)}}};
}

command_output account_alias_remove(command_context& ctx, const std::string& id,
                                    const std::string& address) {
  check_account_id(id);
  const std::string addr = checked_address(address);
  const ldap_entry e = require_account(ctx, id);
  if (lower_ascii(e.first("mail")) == addr) {
    throw admin_error(exit_status::refused,
                      "\"" + addr + "\" is the primary address of " + id + ", not an alias");
  }
  auto aliases = aliases_of(e);
  const auto it = std::find_if(aliases.begin(), aliases.end(),
                               [&](const std::string& a) { return lower_ascii(a) == addr; });
  if (it == aliases.end()) {
    throw admin_error(exit_status::not_found,
                      "\"" + addr + "\" is not an alias of account \"" + id + "\"");
  }
  ctx.dir.modify(e.dn, {{op::remove, "mailLocalAddress", {*it}}});
  aliases.erase(it);
  return {"removed alias " + addr + " from " + id + "\n",
          json_value::object{{"id", id}, {"aliases", string_array(aliases)}}};
}

command_output account_lock(command_context& ctx, const std::string& id, bool lock) {
  const ldap_entry e = require_account(ctx, id);
  const std::string previous = state_of(e);
  if (previous == "moving") {
    throw admin_error(exit_status::refused, "account \"" + id +
                                                "\" is moving; finish the move before " +
                                                (lock ? "locking" : "unlocking") + " it");
  }
  if (!lock && previous == "disabled") {
    throw admin_error(exit_status::refused, "account \"" + id +
                                                "\" is disabled, not locked; use "
                                                "account set-state ID active to enable it");
  }
  const std::string state = lock ? "locked" : "active";
  ctx.dir.modify(e.dn, {{op::replace, "hamailAccountState", {state}}});
  return {"account " + id + ": " + previous + " -> " + state + "\n",
          json_value::object{{"id", id}, {"state", state}, {"previous_state", previous}}};
}

command_output account_set_state(command_context& ctx, const std::string& id,
                                 const std::string& state) {
  check_account_id(id);
  const auto parsed = directory::parse_account_state(state);
  if (!parsed || state != directory::to_string(*parsed)) {
    throw admin_error(exit_status::invalid_input, "invalid account state \"" + state +
                                                      "\": use active, locked, moving or disabled");
  }
  const ldap_entry e = require_account(ctx, id);
  const std::string previous = state_of(e);
  ctx.dir.modify(e.dn, {{op::replace, "hamailAccountState", {state}}});
  return {"account " + id + ": " + previous + " -> " + state + "\n",
          json_value::object{{"id", id}, {"state", state}, {"previous_state", previous}}};
}

command_output account_move(command_context& ctx, const std::string& id, const move_options& o) {
  check_account_id(id);
  const ldap_entry e = require_account(ctx, id);
  const std::string from = e.first("hamailOwningStore");
  const std::string previous = state_of(e);
  if (o.resume || o.abort) {
    if (!e.has("hamailMoveJournal")) {
      throw admin_error(exit_status::refused, "account \"" + id + "\" has no move in progress to " +
                                                  (o.resume ? "resume" : "abort"));
    }
    const auto journal = parse_move_journal(e.first("hamailMoveJournal"));
    if (!journal) {
      throw admin_error(exit_status::invalid_input, "account \"" + id +
                                                        "\" has an unreadable move journal \"" +
                                                        e.first("hamailMoveJournal") + "\"");
    }
    return o.abort ? abort_move(ctx, e, *journal) : resume_move(ctx, e, *journal, o);
  }
  const std::string& to = o.to;
  check_store_name(to);
  const store_record target = require_store(ctx, to);
  if (e.has("hamailMoveJournal")) {
    throw admin_error(exit_status::refused, "account \"" + id + "\" has a move in progress (" +
                                                e.first("hamailMoveJournal") +
                                                "); finish it with --resume or undo it with "
                                                "--abort");
  }
  if (lower_ascii(from) == target.name) {
    return {"account " + id + " is on store " + to + " already\n",
            json_value::object{{"id", id},
                               {"from", from},
                               {"to", target.name},
                               {"state", previous},
                               {"moved", false},
                               {"data_moved", false}}};
  }
  if (previous == "moving") {
    throw admin_error(exit_status::refused, "account \"" + id + "\" is moving already");
  }
  check_explicit_store(target);
  if (!o.placement_only) return start_move(ctx, e, from, target.name, o);
  // Three steps so that readers always see a consistent account: moving (mail is
  // deferred, logins refused temporarily), then the new owning store and mailHost
  // together, then the state it had before. Copying the mail is not done here.
  ctx.dir.modify(e.dn, {{op::replace, "hamailAccountState", {"moving"}}});
  try {
    ctx.dir.modify(e.dn, {{op::replace, "hamailOwningStore", {target.name}},
                          {op::replace, "mailHost", {target.host}}});
    ctx.dir.modify(e.dn, {{op::replace, "hamailAccountState", {previous}}});
  } catch (const admin_error& err) {
    throw admin_error(err.status(), std::string(err.what()) + "\naccount \"" + id +
                                        "\" is left in state moving; run the move again or "
                                        "account set-state " +
                                        id + " " + previous);
  }
  return {"account " + id + ": placement " + from + " -> " + target.name +
              " recorded (--placement-only: no mail was copied, it stays on " + from + ")\n",
          json_value::object{{"id", id},
                             {"from", from},
                             {"to", target.name},
                             {"state", previous},
                             {"moved", true},
                             {"data_moved", false}}};
}

}  // namespace hamail::admin

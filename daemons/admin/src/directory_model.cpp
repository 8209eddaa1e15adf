#include "directory_model.hpp"

#include <algorithm>

#include "hamail/admin/errors.hpp"
#include "hamail/admin/validate.hpp"
#include "hamail/directory/ldap_escape.hpp"

namespace hamail::admin {

namespace {

std::string child_dn(std::string_view attribute, const std::string& value,
                     const std::string& parent) {
  auto dn = directory::make_child_dn(attribute, value, parent);
  if (!dn) {
    throw admin_error(exit_status::invalid_input, "cannot make a DN from " +
                                                      std::string(attribute) + " \"" + value +
                                                      "\" under \"" + parent + "\"");
  }
  return std::move(*dn);
}

}  // namespace

std::string command_context::store_dn(const std::string& name) const {
  return child_dn("hamailStoreName", name, stores_dn());
}

std::string command_context::account_dn(const std::string& id) const {
  return child_dn("uid", id, accounts_dn());
}

namespace detail {

const std::vector<std::string>& store_attributes() {
  static const std::vector<std::string> attrs{
      "hamailStoreName",  "hamailServiceHost", "hamailServiceAddress", "hamailSmtpPort",
      "hamailLmtpPort",   "hamailImapPort",    "hamailPop3Port",       "hamailCapacityWeight",
      "hamailStoreState", "hamailSyncPort"};
  return attrs;
}

const std::vector<std::string>& account_attributes() {
  static const std::vector<std::string> attrs{"uid",
                                              "cn",
                                              "mail",
                                              "mailLocalAddress",
                                              "mailHost",
                                              "hamailOwningStore",
                                              "hamailQuotaBytes",
                                              "hamailQuotaMessages",
                                              "hamailAccountState",
                                              "hamailMoveJournal",
                                              "userPassword"};
  return attrs;
}

std::optional<std::uint64_t> number_attribute(const ldap_entry& e, std::string_view attribute) {
  if (!e.has(attribute)) return std::nullopt;
  return parse_count(e.first(attribute));
}

store_record to_store(const ldap_entry& e) {
  store_record s;
  s.name = e.first("hamailStoreName");
  s.host = e.first("hamailServiceHost");
  s.address = e.first("hamailServiceAddress");
  s.smtp_port = number_attribute(e, "hamailSmtpPort");
  s.lmtp_port = number_attribute(e, "hamailLmtpPort");
  s.imap_port = number_attribute(e, "hamailImapPort");
  s.pop3_port = number_attribute(e, "hamailPop3Port");
  s.sync_port = number_attribute(e, "hamailSyncPort");
  s.weight = number_attribute(e, "hamailCapacityWeight").value_or(0);
  // An unknown state takes no new accounts: placement must never guess "open".
  s.state = e.has("hamailStoreState") ? parse_store_state(lower_ascii(e.first("hamailStoreState")))
                                            .value_or(store_state::closed)
                                      : store_state::open;
  return s;
}

std::vector<store_record> load_stores(command_context& ctx) {
  std::vector<store_record> stores;
  for (const auto& e : ctx.dir.search(ctx.stores_dn(), search_scope::subtree,
                                      "(objectClass=hamailStore)", store_attributes())) {
    stores.push_back(to_store(e));
  }
  std::sort(stores.begin(), stores.end(),
            [](const store_record& a, const store_record& b) { return a.name < b.name; });
  return stores;
}

void check_store_name(const std::string& name) {
  if (!valid_store_name(name)) {
    throw admin_error(exit_status::invalid_input,
                      "invalid store name \"" + name +
                          "\": use 1 to 63 of a-z 0-9 - _, starting with a letter or digit");
  }
}

void check_account_id(const std::string& id) {
  if (!valid_account_id(id)) {
    throw admin_error(exit_status::invalid_input,
                      "invalid account id \"" + id +
                          "\": use 1 to 64 of a-z 0-9 . _ - @ +, starting with a letter or digit");
  }
}

std::string checked_address(const std::string& address) {
  if (!valid_address(address)) {
    throw admin_error(exit_status::invalid_input, "invalid address \"" + address + "\"");
  }
  return lower_ascii(address);
}

store_record require_store(command_context& ctx, const std::string& name) {
  check_store_name(name);
  auto e = ctx.dir.read(ctx.store_dn(name), store_attributes());
  if (!e) throw admin_error(exit_status::not_found, "unknown store \"" + name + "\"");
  return to_store(*e);
}

std::vector<store_load> loads_of(const std::vector<store_record>& stores,
                                 const std::map<std::string, std::uint64_t>& counts) {
  std::vector<store_load> loads;
  for (const auto& s : stores) {
    const auto it = counts.find(lower_ascii(s.name));
    loads.push_back({s.name, s.weight, s.state, it == counts.end() ? 0 : it->second});
  }
  return loads;
}

std::map<std::string, std::uint64_t> count_accounts(command_context& ctx) {
  std::map<std::string, std::uint64_t> counts;
  for (const auto& e : ctx.dir.search(ctx.accounts_dn(), search_scope::subtree,
                                      "(objectClass=hamailAccount)", {"hamailOwningStore"})) {
    ++counts[lower_ascii(e.first("hamailOwningStore"))];
  }
  return counts;
}

ldap_entry require_account(command_context& ctx, const std::string& id) {
  check_account_id(id);
  auto e = ctx.dir.read(ctx.account_dn(id), account_attributes());
  if (!e) throw admin_error(exit_status::not_found, "unknown account \"" + id + "\"");
  return std::move(*e);
}

json_value store_json(const store_record& s, std::optional<std::uint64_t> accounts) {
  auto port = [](const std::optional<std::uint64_t>& p) {
    return p ? json_value(*p) : json_value();
  };
  json_value::object o{
      {"name", s.name},
      {"host", s.host},
      {"address", s.address.empty() ? json_value() : json_value(s.address)},
      {"ports", json_value::object{{"smtp", port(s.smtp_port)},
                                   {"lmtp", port(s.lmtp_port)},
                                   {"imap", port(s.imap_port)},
                                   {"pop3", port(s.pop3_port)},
                                   {"sync", port(s.sync_port)}}},
      {"weight", s.weight},
      {"state", to_string(s.state)},
  };
  if (accounts) o.emplace_back("accounts", *accounts);
  return o;
}

std::vector<std::string> aliases_of(const ldap_entry& e) {
  const std::string primary = lower_ascii(e.first("mail"));
  std::vector<std::string> out;
  for (const auto& a : e.values("mailLocalAddress")) {
    if (lower_ascii(a) != primary) out.push_back(a);
  }
  return out;
}

json_value account_json(const ldap_entry& e) {
  json_value::array aliases;
  for (const auto& a : aliases_of(e)) aliases.emplace_back(a);
  return json_value::object{
      {"id", e.first("uid")},
      {"name", e.first("cn")},
      {"address", e.first("mail")},
      {"aliases", aliases},
      {"store", e.first("hamailOwningStore")},
      {"mail_host", e.first("mailHost")},
      {"quota_bytes", number_attribute(e, "hamailQuotaBytes").value_or(0)},
      {"quota_messages", number_attribute(e, "hamailQuotaMessages").value_or(0)},
      {"state", e.has("hamailAccountState") ? e.first("hamailAccountState") : "active"},
      {"has_password", e.has("userPassword")},
      {"move",
       e.has("hamailMoveJournal") ? json_value(e.first("hamailMoveJournal")) : json_value()},
      {"dn", e.dn},
  };
}

}  // namespace detail
}  // namespace hamail::admin

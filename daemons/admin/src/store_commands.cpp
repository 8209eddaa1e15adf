// store add | list | show | set-state | set-weight | remove

#include <string>

#include "directory_model.hpp"
#include "hamail/admin/commands.hpp"
#include "hamail/admin/errors.hpp"
#include "hamail/admin/validate.hpp"
#include "hamail/directory/ldap_escape.hpp"

namespace hamail::admin {
namespace {

using namespace detail;

std::optional<std::uint64_t> checked_port(const std::string& text, const char* which) {
  if (text.empty()) return std::nullopt;
  const auto port = parse_count(text, 65535);
  if (!port || *port == 0) {
    throw admin_error(exit_status::invalid_input,
                      std::string("invalid ") + which + " port \"" + text + "\": use 1 to 65535");
  }
  return port;
}

std::uint64_t checked_weight(const std::string& text) {
  const auto weight = parse_count(text, max_weight);
  if (!weight) {
    throw admin_error(exit_status::invalid_input,
                      "invalid weight \"" + text + "\": use an integer from 0 to " +
                          std::to_string(max_weight) + " (0 = never chosen by placement)");
  }
  return *weight;
}

store_state checked_store_state(const std::string& text) {
  const auto state = parse_store_state(text);
  if (!state) {
    throw admin_error(exit_status::invalid_input, "invalid store state \"" + text +
                                                      "\": use open, draining, closed or readonly");
  }
  return *state;
}

std::string port_text(const std::optional<std::uint64_t>& p) {
  return p ? std::to_string(*p) : "-";
}

std::uint64_t accounts_on(command_context& ctx, const std::string& name) {
  return ctx.dir
      .search(ctx.accounts_dn(), search_scope::subtree,
              "(&(objectClass=hamailAccount)(hamailOwningStore=" +
                  directory::escape_filter_value(name) + "))",
              {"1.1"})
      .size();
}

std::string store_text(const store_record& s, std::uint64_t accounts) {
  return format_fields({{"name", s.name},
                        {"host", s.host},
                        {"address", s.address.empty() ? "-" : s.address},
                        {"smtp port", port_text(s.smtp_port)},
                        {"lmtp port", port_text(s.lmtp_port)},
                        {"imap port", port_text(s.imap_port)},
                        {"pop3 port", port_text(s.pop3_port)},
                        {"sync port", port_text(s.sync_port)},
                        {"weight", std::to_string(s.weight)},
                        {"state", std::string(to_string(s.state))},
                        {"accounts", std::to_string(accounts)}});
}

}  // namespace

command_output store_add(command_context& ctx, const store_spec& spec) {
  check_store_name(spec.name);
  if (!valid_host_name(spec.host)) {
    throw admin_error(exit_status::invalid_input, "invalid host name \"" + spec.host + "\"");
  }
  if (!spec.address.empty() && !valid_ip_address(spec.address)) {
    throw admin_error(exit_status::invalid_input,
                      "invalid address \"" + spec.address + "\": use an IPv4 or IPv6 address");
  }
  store_record s;
  s.name = spec.name;
  s.host = lower_ascii(spec.host);
  s.address = spec.address;
  s.smtp_port = checked_port(spec.smtp_port, "SMTP");
  s.lmtp_port = checked_port(spec.lmtp_port, "LMTP");
  s.imap_port = checked_port(spec.imap_port, "IMAP");
  s.pop3_port = checked_port(spec.pop3_port, "POP3");
  s.sync_port = checked_port(spec.sync_port, "sync");
  s.weight = checked_weight(spec.weight);
  s.state = checked_store_state(spec.state);

  if (ctx.dir.read(ctx.store_dn(s.name), {"1.1"})) {
    throw admin_error(exit_status::conflict, "store \"" + s.name + "\" exists already");
  }
  using op = attribute_change::operation;
  std::vector<attribute_change> attrs{
      {op::add, "objectClass", {"hamailStore"}},
      {op::add, "hamailStoreName", {s.name}},
      {op::add, "hamailServiceHost", {s.host}},
      {op::add, "hamailCapacityWeight", {std::to_string(s.weight)}},
      {op::add, "hamailStoreState", {std::string(to_string(s.state))}},
  };
  if (!s.address.empty()) attrs.push_back({op::add, "hamailServiceAddress", {s.address}});
  const std::pair<const char*, const std::optional<std::uint64_t>*> ports[] = {
      {"hamailSmtpPort", &s.smtp_port},
      {"hamailLmtpPort", &s.lmtp_port},
      {"hamailImapPort", &s.imap_port},
      {"hamailPop3Port", &s.pop3_port},
      {"hamailSyncPort", &s.sync_port}};
  for (const auto& [attr, value] : ports) {
    if (*value) attrs.push_back({op::add, attr, {std::to_string(**value)}});
  }
  ctx.dir.add(ctx.store_dn(s.name), attrs);
  return {"added store " + s.name + "\n" + store_text(s, 0),
          json_value::object{{"added", store_json(s, 0)}}};
}

command_output store_list(command_context& ctx) {
  const auto stores = load_stores(ctx);
  const auto counts = count_accounts(ctx);
  std::vector<std::vector<std::string>> rows;
  json_value::array list;
  for (const auto& s : stores) {
    const auto it = counts.find(lower_ascii(s.name));
    const std::uint64_t n = it == counts.end() ? 0 : it->second;
    rows.push_back({s.name, s.host, s.address.empty() ? "-" : s.address,
                    std::string(to_string(s.state)), std::to_string(s.weight), std::to_string(n)});
    list.push_back(store_json(s, n));
  }
  return {format_table({"NAME", "HOST", "ADDRESS", "STATE", "WEIGHT", "ACCOUNTS"}, rows),
          json_value::object{{"stores", list}}};
}

command_output store_show(command_context& ctx, const std::string& name) {
  const store_record s = require_store(ctx, name);
  const std::uint64_t n = accounts_on(ctx, s.name);
  return {store_text(s, n), json_value::object{{"store", store_json(s, n)}}};
}

command_output store_set_state(command_context& ctx, const std::string& name,
                               const std::string& state) {
  check_store_name(name);
  const store_state new_state = checked_store_state(state);
  const store_record s = require_store(ctx, name);
  using op = attribute_change::operation;
  ctx.dir.modify(ctx.store_dn(name), {{op::replace, "hamailStoreState", {state}}});
  return {"store " + name + ": state " + std::string(to_string(s.state)) + " -> " + state + "\n",
          json_value::object{{"store", name},
                             {"state", to_string(new_state)},
                             {"previous_state", to_string(s.state)}}};
}

command_output store_set_weight(command_context& ctx, const std::string& name,
                                const std::string& weight) {
  check_store_name(name);
  const std::uint64_t w = checked_weight(weight);
  const store_record s = require_store(ctx, name);
  using op = attribute_change::operation;
  ctx.dir.modify(ctx.store_dn(name), {{op::replace, "hamailCapacityWeight", {std::to_string(w)}}});
  return {
      "store " + name + ": weight " + std::to_string(s.weight) + " -> " + std::to_string(w) + "\n",
      json_value::object{{"store", name}, {"weight", w}, {"previous_weight", s.weight}}};
}

command_output store_set_sync_port(command_context& ctx, const std::string& name,
                                   const std::string& port) {
  check_store_name(name);
  const std::optional<std::uint64_t> p = checked_port(port, "sync");
  if (!p) throw admin_error(exit_status::invalid_input, "no sync port given: use 1 to 65535");
  const store_record s = require_store(ctx, name);
  using op = attribute_change::operation;
  ctx.dir.modify(ctx.store_dn(name), {{op::replace, "hamailSyncPort", {std::to_string(*p)}}});
  return {"store " + name + ": sync port " + port_text(s.sync_port) + " -> " + std::to_string(*p) +
              "\n",
          json_value::object{
              {"store", name},
              {"sync_port", *p},
              {"previous_sync_port", s.sync_port ? json_value(*s.sync_port) : json_value()}}};
}

command_output store_remove(command_context& ctx, const std::string& name) {
  const store_record s = require_store(ctx, name);
  const std::uint64_t n = accounts_on(ctx, s.name);
  if (n > 0) {
    throw admin_error(exit_status::refused,
                      "store \"" + name + "\" still owns " + std::to_string(n) + " account" +
                          (n == 1 ? "" : "s") +
                          "; move them away first (account move ID --to STORE)");
  }
  ctx.dir.remove(ctx.store_dn(name));
  return {"removed store " + name + "\n", json_value::object{{"removed", name}}};
}

}  // namespace hamail::admin

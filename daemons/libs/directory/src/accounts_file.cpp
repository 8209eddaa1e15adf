#include "hamail/directory/accounts_file.hpp"

#include <set>
#include <vector>

#include "hamail/core/account_id.hpp"
#include "hamail/core/config.hpp"

namespace hamail::directory {

namespace {

bool plausible_address(const std::string& a) {
  const auto at = a.rfind('@');
  return at != std::string::npos && at > 0 && at + 1 < a.size() &&
         a.find_first_of(" \t\r\n<>") == std::string::npos;
}

}  // namespace

result<void> load_accounts_file(const std::filesystem::path& path, memory_directory& dir) {
  auto doc = config::document::load_file(path);
  if (!doc) return std::move(doc).err();
  auto root = doc->root();
  std::vector<account> accounts;
  std::set<std::string> ids;
  std::set<std::string> addresses;
  for (auto& s : root.tables("account")) {
    account a;
    a.id = s.require_string("id");
    if (const auto why = a.id.empty() ? std::nullopt : account_id_problem(a.id)) {
      s.add_problem("id", "invalid account id: " + std::string(*why) +
                              " (1 to 64 of a-z 0-9 . _ - @ +, starting with a-z or 0-9, "
                              "no \"..\")");
    }
    if (!a.id.empty() && !ids.insert(a.id).second) s.add_problem("id", "duplicate account id");
    a.primary_address = normalize_address(s.require_string("address"));
    a.login = s.get_string("login", "");
    for (auto& alias : s.get_string_list("aliases")) a.aliases.push_back(normalize_address(alias));
    if (!a.primary_address.empty() && !plausible_address(a.primary_address)) {
      s.add_problem("address", "not a mail address");
    }
    for (const auto& addr : a.aliases) {
      if (!plausible_address(addr))
        s.add_problem("aliases", "not a mail address: " + config::quote(addr));
    }
    std::vector<std::string> all = a.aliases;
    all.push_back(a.primary_address);
    for (const auto& addr : all) {
      if (!addr.empty() && !addresses.insert(addr).second) {
        s.add_problem("address", "address " + config::quote(addr) + " belongs to two accounts");
      }
    }
    a.password_hash = s.get_string("password", "");
    a.owning_store = s.require_string("store");
    a.quota_bytes = s.get_size("quota_bytes", 0);
    a.quota_messages = static_cast<std::uint64_t>(s.get_integer("quota_messages", 0, 0, INT64_MAX));
    const auto state = s.get_enum("state", {"active", "locked", "moving", "disabled"}, "active");
    a.state = parse_account_state(state).value_or(account_state::active);
    accounts.push_back(std::move(a));
  }
  doc->finish();
  if (!doc->ok()) {
    return error::permanent(errc::config_error, "invalid accounts file", doc->report());
  }
  for (auto& a : accounts) {
    auto r = dir.put(std::move(a));
    if (!r) return r;
  }
  return ok();
}

}  // namespace hamail::directory

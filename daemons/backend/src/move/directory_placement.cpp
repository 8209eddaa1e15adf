#include "move/directory_placement.hpp"

#include "hamail/directory/memory_directory.hpp"

namespace hamail::backend::account_move {

namespace {

/// One server's answer about `account`: its owning store, nullopt when unknown.
boost::asio::awaitable<placement_answer> ask_one(directory::directory& d, std::string account) {
  auto lookup = d.find_by_login(account);
  auto found = co_await std::move(lookup);
  if (!found) co_return std::move(found).err();
  if (!found->has_value() || (*found)->id != account) co_return std::optional<std::string>{};
  co_return std::optional<std::string>((*found)->owning_store);
}

}  // namespace

result<std::unique_ptr<directory_placement>> directory_placement::open(
    const directory::directory_settings& settings, directory::directory& file_lookups) {
  std::unique_ptr<directory_placement> p(new directory_placement(file_lookups));
  if (settings.type != "ldap") return p;
  p->ldap_ = true;
  for (const auto& uri : settings.ldap.uris) {
    auto one = settings.ldap;
    one.uris = {uri};
    one.pool_size = 1;
    auto client = directory::ldap_directory::create(std::move(one));
    if (!client) return std::move(client).err();
    p->servers_.push_back(std::move(*client));
  }
  return p;
}

boost::asio::awaitable<std::vector<placement_answer>> directory_placement::ask(
    std::string account) {
  std::vector<placement_answer> out;
  if (!ldap_) {
    // The accounts file: logins there default to the primary address, so ask by id.
    if (auto* file = dynamic_cast<directory::memory_directory*>(&file_)) {
      auto found = file->lookup_id(account);
      if (!found) {
        out.push_back(std::move(found).err());
      } else if (!found->has_value()) {
        out.push_back(std::optional<std::string>{});
      } else {
        out.push_back(std::optional<std::string>((*found)->owning_store));
      }
      co_return out;
    }
    auto asking = ask_one(file_, account);
    out.push_back(co_await std::move(asking));
    co_return out;
  }
  // One server after the other: a review is rare and each lookup is bounded by the
  // [directory] timeout.
  for (auto& server : servers_) {
    auto asking = ask_one(*server, account);
    out.push_back(co_await std::move(asking));
  }
  co_return out;
}

void directory_placement::reset() noexcept { servers_.clear(); }

}  // namespace hamail::backend::account_move

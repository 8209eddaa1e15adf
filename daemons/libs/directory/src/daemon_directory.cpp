#include "hamail/directory/daemon_directory.hpp"

#include "hamail/core/log.hpp"
#include "hamail/directory/accounts_file.hpp"

namespace hamail::directory {

result<std::unique_ptr<daemon_directory>> daemon_directory::open(
    const directory_settings& settings) {
  std::unique_ptr<daemon_directory> d(new daemon_directory(settings));
  if (settings.type == "file") {
    if (auto r = load_accounts_file(settings.accounts_file, d->accounts_); !r) {
      return error::permanent(errc::config_error, "accounts file", r.err().detail);
    }
    return d;
  }
  auto l = ldap_directory::create(settings.ldap);
  if (!l) return std::move(l).err();
  d->ldap_ = std::move(*l);
  d->cache_ = std::make_unique<cached_directory>(*d->ldap_, settings.ldap.cache);
  d->dir_ = d->cache_.get();
  return d;
}

void daemon_directory::reload() {
  if (cache_) {
    cache_->clear();
    log::notice("SIGHUP: directory cache cleared");
    return;
  }
  memory_directory fresh;
  if (auto r = load_accounts_file(settings_.accounts_file, fresh); !r) {
    log::error("SIGHUP: accounts file not reloaded: {}", r.err().detail);
    return;
  }
  // Valid: re-read into the live directory (accounts are replaced one by one).
  if (auto r = load_accounts_file(settings_.accounts_file, accounts_); !r) {
    log::error("SIGHUP: accounts file reload failed: {}", r.err().detail);
    return;
  }
  log::notice("SIGHUP: accounts file reloaded");
}

void daemon_directory::reset() noexcept {
  cache_.reset();
  ldap_.reset();
  dir_ = &accounts_;
}

}  // namespace hamail::directory

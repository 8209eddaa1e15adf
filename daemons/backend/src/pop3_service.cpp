#include "hamail/backend/pop3_service.hpp"

#include "pop3/session.hpp"

namespace hamail::backend {

bool pop3_accounts::try_lock(const std::string& account) {
  std::lock_guard lock(mutex_);
  return locked_.insert(account).second;
}

void pop3_accounts::unlock(const std::string& account) {
  std::lock_guard lock(mutex_);
  locked_.erase(account);
}

std::chrono::seconds pop3_accounts::record_login(const std::string& account,
                                                 std::chrono::seconds delay,
                                                 clock::time_point now) {
  if (delay.count() <= 0) return std::chrono::seconds(0);
  std::lock_guard lock(mutex_);
  // Forget logins old enough not to matter, so the map holds only recent ones.
  if (last_login_.size() > 4096) {
    std::erase_if(last_login_, [&](const auto& kv) { return now - kv.second >= delay; });
  }
  auto [it, fresh] = last_login_.try_emplace(account, now);
  if (!fresh) {
    const auto since = now - it->second;
    if (since < delay) {
      return std::chrono::ceil<std::chrono::seconds>(delay - since);
    }
    it->second = now;
  }
  return std::chrono::seconds(0);
}

namespace {

class pop3_protocol final : public net::protocol {
 public:
  explicit pop3_protocol(pop3_context& ctx) : ctx_(ctx) {}

  boost::asio::awaitable<void> run(net::connection& conn) override {
    pop3_session_detail::session s(ctx_, conn);
    co_await s.run();
  }
  std::string busy_reply() const override {
    return "-ERR [SYS/TEMP] Too many connections, try again later\r\n";
  }
  std::string shutdown_reply() const override {
    return "-ERR [SYS/TEMP] Server shutting down, reconnect later\r\n";
  }

 private:
  pop3_context& ctx_;
};

}  // namespace

net::protocol_factories pop3_protocols(pop3_context& ctx) {
  net::protocol_factories f;
  f["pop3"] = [&ctx](const listener_settings&) { return std::make_shared<pop3_protocol>(ctx); };
  return f;
}

}  // namespace hamail::backend

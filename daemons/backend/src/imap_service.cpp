#include "hamail/backend/imap_service.hpp"

#include "imap/session.hpp"

namespace hamail::backend {

namespace {

class imap_protocol final : public net::protocol {
 public:
  explicit imap_protocol(imap_context& ctx) : ctx_(ctx) {}

  boost::asio::awaitable<void> run(net::connection& conn) override {
    imap_session_detail::session s(ctx_, conn);
    co_await s.run();
  }
  std::string busy_reply() const override {
    return "* BYE [UNAVAILABLE] Too many connections, try again later\r\n";
  }
  std::string shutdown_reply() const override {
    return "* BYE [UNAVAILABLE] Server shutting down, reconnect later\r\n";
  }

 private:
  imap_context& ctx_;
};

}  // namespace

net::protocol_factories imap_protocols(imap_context& ctx) {
  net::protocol_factories f;
  f["imap"] = [&ctx](const listener_settings&) { return std::make_shared<imap_protocol>(ctx); };
  return f;
}

}  // namespace hamail::backend

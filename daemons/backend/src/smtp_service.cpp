#include "hamail/backend/smtp_service.hpp"

#include "smtp/session.hpp"

namespace hamail::backend {

namespace {

using smtp_session_detail::flavour;

class smtp_protocol final : public net::protocol {
 public:
  smtp_protocol(smtp_context& ctx, flavour f) : ctx_(ctx), flavour_(f) {}

  boost::asio::awaitable<void> run(net::connection& conn) override {
    smtp_session_detail::session s(ctx_, flavour_, conn);
    co_await s.run();
  }
  std::string busy_reply() const override {
    return "421 4.7.0 " + ctx_.config.store.hostname + " Too many connections, try again later\r\n";
  }
  std::string shutdown_reply() const override {
    return "421 4.3.2 " + ctx_.config.store.hostname +
           " Service shutting down, try again later\r\n";
  }

 private:
  smtp_context& ctx_;
  flavour flavour_;
};

}  // namespace

net::protocol_factories smtp_protocols(smtp_context& ctx) {
  net::protocol_factories f;
  f["smtp"] = [&ctx](const listener_settings&) {
    return std::make_shared<smtp_protocol>(ctx, flavour::smtp);
  };
  f["submission"] = [&ctx](const listener_settings&) {
    return std::make_shared<smtp_protocol>(ctx, flavour::submission);
  };
  f["lmtp"] = [&ctx](const listener_settings&) {
    return std::make_shared<smtp_protocol>(ctx, flavour::lmtp);
  };
  return f;
}

}  // namespace hamail::backend

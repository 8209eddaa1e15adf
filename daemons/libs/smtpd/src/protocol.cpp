// The SMTP, submission and LMTP listener protocols: each connection gets a
// session and a fresh mail_handler from the daemon's factory.

#include "hamail/smtpd/session.hpp"

namespace hamail::smtpd {

namespace {

class smtp_protocol final : public net::protocol {
 public:
  struct shared {
    services svc;
    handler_factory make;
  };
  smtp_protocol(std::shared_ptr<const shared> s, flavour f) : s_(std::move(s)), flavour_(f) {}

  awaitable<void> run(net::connection& conn) override {
    co_await run_session(s_->svc, s_->make, flavour_, conn);
  }
  std::string busy_reply() const override {
    return "421 4.7.0 " + s_->svc.hostname + " Too many connections, try again later\r\n";
  }
  std::string shutdown_reply() const override {
    return "421 4.3.2 " + s_->svc.hostname + " Service shutting down, try again later\r\n";
  }

 private:
  std::shared_ptr<const shared> s_;
  flavour flavour_;
};

}  // namespace

awaitable<void> run_session(const services& svc, const handler_factory& make, flavour f,
                            net::connection& conn) {
  auto handler = make(f);
  session s(svc, *handler, f, conn);
  co_await s.run();
}

net::protocol_factories protocols(services svc, handler_factory make,
                                  const std::vector<std::string>& names) {
  auto shared = std::make_shared<const smtp_protocol::shared>(
      smtp_protocol::shared{std::move(svc), std::move(make)});
  net::protocol_factories out;
  for (const auto& name : names) {
    flavour f = flavour::smtp;
    if (name == "submission") {
      f = flavour::submission;
    } else if (name == "lmtp") {
      f = flavour::lmtp;
    }
    out[name] = [shared, f](const listener_settings&) {
      return std::make_shared<smtp_protocol>(shared, f);
    };
  }
  return out;
}

}  // namespace hamail::smtpd

#include "hamail/backend/smtp_service.hpp"

namespace hamail::backend {

net::protocol_factories smtp_protocols(smtp_context& ctx) {
  return smtpd::protocols(smtp_services(ctx), smtp_handlers(ctx), {"smtp", "submission", "lmtp"});
}

}  // namespace hamail::backend

// What hamail-backend does with SMTP/LMTP recipients and messages: a
// recipient must be an account placed on this store (and have room); the
// message is received into the store's temporary file (body_spool) and
// committed to every recipient's INBOX at once (store::mail_store::deliver).

#include <algorithm>
#include <map>

#include "hamail/backend/smtp_service.hpp"
#include "hamail/net/run_blocking.hpp"
#include "smtp/body_spool.hpp"

namespace hamail::backend {

namespace {

using boost::asio::awaitable;
using smtpd::flavour;
using smtpd::session;

/// The reply for one failed target.
smtp::reply failure_reply(const smtp_context& ctx, const error& e) {
  if (e.code == errc::quota_exceeded) {
    if (e.is_permanent() || ctx.config.quota.permanent)
      return smtp::reply(smtp::status::over_quota_perm);
    return smtp::reply(smtp::status::over_quota_temp);
  }
  if (e.code == errc::limit_exceeded && e.is_permanent()) return smtp::reply(smtp::status::too_big);
  if (e.is_permanent()) return smtp::reply(smtp::status::transaction_failed);
  return smtp::reply(smtp::status::local_error);
}

class store_handler final : public smtpd::mail_handler {
 public:
  explicit store_handler(smtp_context& ctx) : ctx_(ctx) {}

  awaitable<std::optional<smtpd::recipient>> add_recipient(session& s, const std::string& address,
                                                           const smtp::rcpt_command&) override {
    auto found = co_await smtpd::look_up_recipient(s, address);
    if (found.refusal) {
      s.reply(*found.refusal);
      co_return std::nullopt;
    }
    if (!found.account) {
      smtpd::refuse_unknown_recipient(s, address);
      co_return std::nullopt;
    }
    const directory::account& acct = *found.account;
    if (acct.owning_store != ctx_.config.store.name && !ctx_.config.accept_other_stores) {
      s.conn.log().warning("<{}> belongs to store {}, not {}", address, acct.owning_store,
                           ctx_.config.store.name);
      s.reply(smtp::reply(451, "4.3.0")
                  .add_line("Mailbox is served by another store, try again later"));
      co_return std::nullopt;
    }
    // Held until the transaction ends (after DATA's commit): a move's fence waits for it.
    gate_token token;
    if (ctx_.gate != nullptr) {
      auto admitted = ctx_.gate->enter(acct.id, &s.conn);
      switch (admitted.refused) {
        case fence_state::kind_t::none:
          token = std::move(admitted.token);
          break;
        case fence_state::kind_t::locked:
          s.conn.log().info("<{}> deferred at RCPT: {} is being moved", address, acct.id);
          s.reply(smtp::reply(451, "4.2.1").add_line("Mailbox is being moved, try again later"));
          co_return std::nullopt;
        case fence_state::kind_t::moved:
          s.conn.log().warning("<{}> belongs to store {} now (moved), not {}", address,
                               admitted.store, ctx_.config.store.name);
          s.reply(smtp::reply(451, "4.3.0")
                      .add_line("Mailbox is served by another store, try again later"));
          co_return std::nullopt;
      }
    }
    const auto quota = quota_for(acct);
    if (auto refusal = co_await check_quota(s, acct.id, quota)) {
      s.conn.log().info("<{}> refused at RCPT: {} over quota", address, acct.id);
      s.reply(*refusal);
      co_return std::nullopt;
    }
    quotas_.push_back(quota);
    tokens_.push_back(std::move(token));
    s.reply(smtp::status::recipient_ok);
    co_return smtpd::recipient{address, acct.id, {}};
  }

  awaitable<result<std::unique_ptr<smtpd::message_body>>> open_body(session&) override {
    auto body = std::make_unique<smtp_session_detail::body_spool>(ctx_.blocking);
    if (auto opened = co_await body->open(ctx_.store); !opened) co_return std::move(opened).err();
    co_return std::unique_ptr<smtpd::message_body>(std::move(body));
  }

  awaitable<void> deliver(session& s, smtpd::message_body& received,
                          const std::string& id) override {
    // open_body made it.
    auto& body = static_cast<smtp_session_detail::body_spool&>(received);
    auto sealed = co_await body.finish();
    if (!sealed) {
      s.conn.log().error("message {} not stored: {}", id, sealed.err().describe());
      s.refuse_message(smtp::reply(smtp::status::local_error));
      co_return;
    }
    // One target per account: an account named by two addresses gets one copy.
    std::vector<store::delivery_target> targets;
    std::vector<std::size_t> target_of(s.tx->recipients.size());
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < s.tx->recipients.size(); ++i) {
      const auto& r = s.tx->recipients[i];
      auto [it, fresh] = index.emplace(r.account, targets.size());
      if (fresh) {
        store::delivery_target t;
        t.account = r.account;
        t.quota = quotas_[i];
        targets.push_back(std::move(t));
      }
      target_of[i] = it->second;
    }
    auto commit = [this, &sealed, &targets] { return ctx_.store.deliver(*sealed, targets); };
    auto results = co_await net::run_blocking(ctx_.blocking, std::move(commit));

    if (s.kind == flavour::lmtp) {
      for (std::size_t i = 0; i < s.tx->recipients.size(); ++i) {
        const auto& res = results[target_of[i]];
        if (res) {
          s.reply(smtp::reply(smtp::status::message_accepted,
                              "<" + s.tx->recipients[i].address + "> delivered as " + id));
        } else {
          s.conn.log().warning("{}: <{}> not delivered: {}", id, s.tx->recipients[i].address,
                               res.err().describe());
          s.reply(failure_reply(ctx_, res.err()));
        }
      }
      for (std::size_t t = 0; t < targets.size(); ++t) {
        if (results[t])
          s.conn.log().info("{}: delivered to {} uid {}", id, targets[t].account, results[t]->uid);
      }
      co_return;
    }

    // SMTP has one reply for the whole message (RFC 5321 §4.2.5 and §6.1):
    //  - every target committed: 250;
    //  - some target failed temporarily: the copies already committed are
    //    withdrawn and the reply is that 4xx, so the client's retry neither loses
    //    nor duplicates anyone;
    //  - the only failures are permanent and nothing was committed: that 5xx (the
    //    client bounces, correctly, for every recipient);
    //  - the only failures are permanent and some targets got the message: 250,
    //    because a 5xx would bounce the recipients who did get it. The failed ones
    //    are logged; the store sends no DSN (it has no outbound queue).
    const error* temporary = nullptr;
    const error* permanent = nullptr;
    std::size_t committed = 0;
    for (const auto& r : results) {
      if (r) {
        ++committed;
      } else if (failure_reply(ctx_, r.err()).code() >= 500) {
        if (permanent == nullptr) permanent = &r.err();
      } else if (temporary == nullptr) {
        temporary = &r.err();
      }
    }
    if (temporary == nullptr && committed > 0) {
      for (std::size_t i = 0; i < s.tx->recipients.size(); ++i) {
        const auto& res = results[target_of[i]];
        if (res) {
          s.conn.log().info("{}: <{}> delivered to {} uid {} ({} octets) {}", id,
                            s.tx->recipients[i].address, s.tx->recipients[i].account, res->uid,
                            sealed->size(), s.dsn_summary(i));
        } else {
          s.conn.log().warning(
              "{}: <{}> accepted but not delivered, no DSN sent (the store generates none): {} {}",
              id, s.tx->recipients[i].address, res.err().describe(), s.dsn_summary(i));
        }
      }
      s.reply(smtp::reply(smtp::status::message_accepted, "Ok: queued as " + id));
      co_return;
    }
    const error* failure = temporary != nullptr ? temporary : permanent;
    for (std::size_t t = 0; t < targets.size(); ++t) {
      if (!results[t]) continue;
      const auto uid = results[t]->uid;
      const auto account = targets[t].account;
      auto withdraw = [this, account, uid]() -> result<void> {
        auto mbox = ctx_.store.open_mailbox(account, "INBOX");
        if (!mbox) return std::move(mbox).err();
        const store::imap_uid uids[] = {uid};
        auto r = (*mbox)->expunge(uids);
        if (!r) return std::move(r).err();
        return ok();
      };
      auto undone = co_await net::run_blocking(ctx_.blocking, std::move(withdraw));
      if (!undone) {
        s.conn.log().error("{}: could not withdraw uid {} of {}: {}", id, uid, account,
                           undone.err().describe());
      }
    }
    s.conn.log().warning("{}: not delivered: {}", id, failure->describe());
    s.reply(failure_reply(ctx_, *failure));
  }

  void reset() override {
    quotas_.clear();
    tokens_.clear();
  }

 private:
  store::quota_limits quota_for(const directory::account& a) const {
    store::quota_limits q;
    q.bytes = a.quota_bytes != 0 ? a.quota_bytes : ctx_.config.quota.default_bytes;
    q.messages = a.quota_messages != 0 ? a.quota_messages : ctx_.config.quota.default_messages;
    return q;
  }

  /// The quota check RCPT can make before the message is known: refuses when the
  /// account is already full, or when the size the client declared (SIZE=) cannot
  /// fit. Advisory: the commit checks again with the real size. Returns the reply
  /// to refuse with, or nullopt to accept.
  awaitable<std::optional<smtp::reply>> check_quota(session& s, const std::string& account,
                                                    const store::quota_limits& q) {
    if (q.unlimited()) co_return std::nullopt;
    const std::uint64_t declared = s.tx->mail.params.size.value_or(0);
    if (q.bytes != 0 && declared > q.bytes) {
      co_return smtp::reply(smtp::status::over_quota_perm, "Message exceeds the mailbox's quota");
    }
    auto read = [this, &account] { return ctx_.store.quota_usage(account); };
    auto usage = co_await net::run_blocking(ctx_.blocking, std::move(read));
    if (!usage) {
      s.conn.log().debug("quota usage of {} unknown: {}", account, usage.err().describe());
      co_return std::nullopt;
    }
    if (!usage->has_value()) co_return std::nullopt;
    const auto& u = **usage;
    const bool full = (q.messages != 0 && u.messages + 1 > q.messages) ||
                      (q.bytes != 0 && u.bytes + std::max<std::uint64_t>(declared, 1) > q.bytes);
    if (!full) co_return std::nullopt;
    co_return smtp::reply(ctx_.config.quota.permanent ? smtp::status::over_quota_perm
                                                      : smtp::status::over_quota_temp);
  }

  smtp_context& ctx_;
  std::vector<store::quota_limits> quotas_;  // of s.tx->recipients, in order
  std::vector<gate_token> tokens_;           // the accepted recipients' places in the gate
};

}  // namespace

smtpd::services smtp_services(smtp_context& ctx) {
  smtpd::services svc{
      ctx.config.smtp, ctx.config.store.hostname, "hamail store " + ctx.config.store.name,
      auth::login_services{ctx.directory, ctx.throttle, ctx.passwords, ctx.bind_auth}};
  svc.trusted_proxies = ctx.config.smtp_trusted_proxies;
  return svc;
}

smtpd::handler_factory smtp_handlers(smtp_context& ctx) {
  return [&ctx](flavour) { return std::make_unique<store_handler>(ctx); };
}

}  // namespace hamail::backend

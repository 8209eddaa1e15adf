// GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208). Every account has one quota
// root, "", covering all its mailboxes, with the resources STORAGE (in units
// of 1024 octets) and MESSAGE, each only when the account's quota limits it.
// An account without limits has no quota root: GETQUOTAROOT answers
// "* QUOTAROOT <mailbox>" with no root and GETQUOTA "" is NO [NONEXISTENT].
// Limits come from the directory (or the [quota] defaults), so SETQUOTA is
// refused with NO [NOPERM].

#include "hamail/store/mailbox_name.hpp"
#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

namespace {

/// What the account uses, and whether the mailbox asked about exists.
struct usage_answer {
  bool exists = true;
  store::quota_usage usage;
};

/// The account's usage as the store tracks it, or summed over its mailboxes
/// when the store keeps no record. Checks first that `mailbox` (when not
/// empty) exists. Blocking.
result<usage_answer> read_usage(store::mail_store& st, const std::string& account,
                                const std::string& mailbox, bool want_usage) {
  usage_answer a;
  std::optional<std::vector<store::mailbox_list_entry>> list;
  if (!mailbox.empty()) {
    auto l = st.list_mailboxes(account);
    if (!l) return std::move(l).err();
    a.exists = false;
    for (const auto& e : *l) a.exists = a.exists || (e.name == mailbox && e.selectable);
    if (!a.exists) return a;
    list = std::move(*l);
  }
  if (!want_usage) return a;
  auto recorded = st.quota_usage(account);
  if (!recorded) return std::move(recorded).err();
  if (*recorded) {
    a.usage = **recorded;
    return a;
  }
  if (!list) {
    auto l = st.list_mailboxes(account);
    if (!l) return std::move(l).err();
    list = std::move(*l);
  }
  for (const auto& e : *list) {
    if (!e.selectable) continue;
    auto status = st.status(account, e.name);
    if (!status) {
      if (status.err().code == errc::not_found) continue;  // deleted meanwhile
      return std::move(status).err();
    }
    a.usage.bytes += status->size;
    a.usage.messages += status->messages;
  }
  return a;
}

/// "QUOTA "" (STORAGE used limit MESSAGE used limit)" for the limited resources.
std::string quota_text(const store::quota_limits& limits, const store::quota_usage& used) {
  std::string out = "QUOTA \"\" (";
  if (limits.bytes != 0) {
    // Octets to units of 1024 octets, rounded up: a few octets count as one unit.
    out += "STORAGE " + std::to_string((used.bytes + 1023) / 1024) + " " +
           std::to_string((limits.bytes + 1023) / 1024);
  }
  if (limits.messages != 0) {
    if (limits.bytes != 0) out += ' ';
    out += "MESSAGE " + std::to_string(used.messages) + " " + std::to_string(limits.messages);
  }
  out += ')';
  return out;
}

}  // namespace

awaitable<void> cmd_quota(session& s, const imap::command& c) {
  if (c.name == "SETQUOTA") {
    if (c.args.size() != 2 || !c.args[0].is_astring() || c.args[1].kind != imap::value_kind::list) {
      s.bad(c, "SETQUOTA takes a quota root and a list of limits");
      co_return;
    }
    s.no(c, "Quotas are set in the account directory", "NOPERM");
    co_return;
  }
  const bool root_query = c.name == "GETQUOTA";
  if (c.args.size() != 1 || !c.args[0].is_astring()) {
    s.bad(c, root_query ? "GETQUOTA takes a quota root" : "GETQUOTAROOT takes a mailbox name");
    co_return;
  }
  std::string mailbox;
  if (root_query) {
    if (!c.args[0].text.empty() || s.quota.unlimited()) {
      s.no(c, "No such quota root", "NONEXISTENT");
      co_return;
    }
  } else {
    auto canonical = s.existing_mailbox_argument(c, c.args[0]);
    if (!canonical) co_return;
    mailbox = *canonical;
  }
  store::mail_store* st = &s.ctx.store;
  const std::string account = s.user();
  const bool want_usage = !s.quota.unlimited();
  auto read = [st, account, mailbox, want_usage] {
    return read_usage(*st, account, mailbox, want_usage);
  };
  auto answer = co_await s.blocking(std::move(read));
  if (!answer) {
    s.no_for(c, answer.err(), "Cannot read quota usage");
    co_return;
  }
  if (!answer->exists) {
    s.no_such_mailbox(c);
    co_return;
  }
  if (!root_query) {
    s.untagged("QUOTAROOT " + s.mailbox_text(mailbox) + (want_usage ? " \"\"" : ""));
  }
  if (want_usage) s.untagged(quota_text(s.quota, answer->usage));
  s.ok(c, root_query ? "GETQUOTA completed" : "GETQUOTAROOT completed");
}

}  // namespace hamail::backend::imap_session_detail

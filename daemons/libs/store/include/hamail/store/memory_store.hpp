#pragma once

#include <memory>

#include "hamail/store/store.hpp"

namespace hamail::store {

/// A mail_store kept in memory, with the same semantics as maildir_store
/// (UIDs, modseqs, \Recent, quota, notifications, name rules) and no
/// durability, for protocol tests. Thread-safe.
class memory_store final : public mail_store {
 public:
  /// An empty store; `default_quota` applies to targets that carry none.
  explicit memory_store(quota_limits default_quota = {});
  ~memory_store() override;
  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  result<incoming_message> begin_delivery() override;
  std::vector<result<delivered>> deliver(const sealed_message& message,
                                         std::span<const delivery_target> targets) override;
  result<void> create_mailbox(std::string_view account, std::string_view name) override;
  result<void> delete_mailbox(std::string_view account, std::string_view name) override;
  result<void> rename_mailbox(std::string_view account, std::string_view from,
                              std::string_view to) override;
  result<std::vector<mailbox_list_entry>> list_mailboxes(std::string_view account) override;
  result<mailbox_status> status(std::string_view account, std::string_view name) override;
  result<std::shared_ptr<mailbox>> open_mailbox(std::string_view account,
                                                std::string_view name) override;
  result<std::optional<store::quota_usage>> quota_usage(std::string_view account) override;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace hamail::store

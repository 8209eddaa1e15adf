#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hamail::directory {

/// Whether a store takes new accounts and serves its own, as the directory records it.
enum class store_state {
  open,      ///< serves its accounts and receives new ones
  draining,  ///< serves its accounts; placement moves accounts away and puts none here
  closed,    ///< out of service: its accounts are temporarily unavailable
  readonly,  ///< serves reads; deliveries and changes are deferred
};

/// A store name: 1 to 63 of a-z 0-9 '-' '_', starting with a letter or digit. The one rule
/// for hamail-admin (which creates stores), the backend's [store] name and the OCF agent.
bool valid_store_name(std::string_view name) noexcept;

/// Parses "open", "draining", "closed", "readonly".
std::optional<store_state> parse_store_state(std::string_view text) noexcept;
/// The directory's spelling of a state.
std::string_view to_string(store_state state) noexcept;

/// A store as the directory describes it (`objectClass: hamailStore`): where the
/// frontends reach the backend instance that serves it.
struct store_record {
  std::string name;                       ///< hamailStoreName
  std::string service_host;               ///< hamailServiceHost: the mailHost of its accounts
  std::string service_address;            ///< hamailServiceAddress: floating IP; empty when unset
  std::uint16_t smtp_port = 0;            ///< 0 when unset
  std::uint16_t lmtp_port = 0;            ///< 0 when unset
  std::uint16_t imap_port = 0;            ///< 0 when unset
  std::uint16_t pop3_port = 0;            ///< 0 when unset
  std::uint32_t capacity_weight = 0;      ///< placement weight; 0 when unset
  store_state state = store_state::open;  ///< absent in the directory = open
  std::string description;                ///< free text; may be empty
};

}  // namespace hamail::directory

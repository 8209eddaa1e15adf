#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hamail/core/account_id.hpp"
#include "hamail/directory/store_record.hpp"

namespace hamail::admin {

/// A store's placement state (hamailStoreState), the directory library's type: only `open`
/// stores (with a weight > 0) take new accounts.
using directory::parse_store_state;
using directory::store_state;
using directory::to_string;

/// Largest capacity weight a store may have (keeps placement arithmetic exact).
inline constexpr std::uint64_t max_weight = 1'000'000;

/// Parses a byte count: decimal digits with an optional binary multiple "k"/"KiB",
/// "M"/"MiB", "G"/"GiB", "T"/"TiB" (case-insensitive unit letter). Returns nullopt
/// for anything else ("10X", "-1", "", "1.5G") and on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

/// Parses a duration in whole seconds: decimal digits with an optional unit "s", "m", "h" or
/// "d" ("600", "30s", "10m"); nullopt for anything else and above ten years.
std::optional<std::uint64_t> parse_seconds(std::string_view text) noexcept;

/// Parses a plain non-negative decimal integer no larger than `max`; nullopt otherwise.
std::optional<std::uint64_t> parse_count(std::string_view text,
                                         std::uint64_t max = UINT64_MAX) noexcept;

using directory::valid_store_name;

/// The tree's one account-id rule (core/account_id.hpp): 1 to 64 of a-z 0-9 '.' '_'
/// '-' '@' '+', starting with a letter or digit, no "..".
using hamail::valid_account_id;

/// True for a mail address "local@domain": ASCII dot-atom local part (at most 64
/// octets), a domain of LDH labels (at most 253 octets), at most 254 octets in all.
bool valid_address(std::string_view address) noexcept;

/// True for a DNS host name made of LDH labels (at most 253 octets).
bool valid_host_name(std::string_view host) noexcept;

/// True for a literal IPv4 or IPv6 address.
bool valid_ip_address(std::string_view address) noexcept;

/// `text` with ASCII letters lower-cased.
std::string lower_ascii(std::string_view text);

}  // namespace hamail::admin

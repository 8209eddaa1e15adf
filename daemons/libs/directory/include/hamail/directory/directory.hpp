#pragma once

#include <optional>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "hamail/core/result.hpp"
#include "hamail/directory/account.hpp"

namespace hamail::directory {

/// Where accounts, aliases and placement are looked up. Implementations must not
/// block the calling executor. An account that does not exist is an empty optional;
/// an error means the directory could not answer (a temporary condition for clients).
class directory {
 public:
  virtual ~directory() = default;

  /// Finds the account that receives mail for `address` (primary address or alias).
  virtual boost::asio::awaitable<result<std::optional<account>>> find_by_address(
      std::string_view address) = 0;

  /// Finds the account whose login name is `login`; logins may also be given as
  /// the primary address.
  virtual boost::asio::awaitable<result<std::optional<account>>> find_by_login(
      std::string_view login) = 0;
};

}  // namespace hamail::directory

#pragma once

#include <cassert>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "hamail/core/error.hpp"

namespace hamail {

/// A value or an error: how fallible operations on the data path return.
/// Accessing the value of an error result aborts (a broken invariant).
template <class T>
class [[nodiscard]] result {
  static_assert(!std::is_same_v<std::remove_cvref_t<T>, error>);

 public:
  result(T value)
      : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error err)
      : v_(std::in_place_index<1>, std::move(err)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return check(), std::get<0>(v_); }
  const T& value() const& { return check(), std::get<0>(v_); }
  T&& value() && { return check(), std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; only valid when !has_value().
  const error& err() const& {
    assert(!has_value());
    return std::get<1>(v_);
  }
  error&& err() && {
    assert(!has_value());
    return std::get<1>(std::move(v_));
  }

 private:
  void check() const {
    if (!has_value()) __builtin_trap();
  }
  std::variant<T, error> v_;
};

/// Success or an error, for operations with no value.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : e_(std::move(err)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const noexcept { return !e_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  const error& err() const& {
    assert(e_.has_value());
    return *e_;
  }
  error&& err() && {
    assert(e_.has_value());
    return std::move(*e_);
  }

 private:
  std::optional<error> e_;
};

/// A successful result<void>.
inline result<void> ok() { return {}; }

}  // namespace hamail

// Status and Result<T>: errors as values at every API boundary.
//
// A Status is an ErrorCode plus an optional human-readable message; Ok
// carries no message and costs no allocation. Result<T> holds either a T or
// a non-Ok Status. Neither throws: reading the value of a failed Result is a
// broken invariant and aborts through COORD_ASSERT.
// Thread safety: value types; distinct objects may be used from any thread.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "coord/base/assert.h"
#include "coord/base/error.h"

namespace coord {

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code) : code_(code) {}  // NOLINT: implicit by design
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == ErrorCode::Ok; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NoNode" or "NoNode: /a/b".
  std::string to_string() const;

  friend bool operator==(const Status& a, const Status& b) { return a.code_ == b.code_; }
  friend bool operator==(const Status& a, ErrorCode b) { return a.code_ == b; }

 private:
  ErrorCode code_ = ErrorCode::Ok;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& s);
std::ostream& operator<<(std::ostream& os, ErrorCode c);

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "use Status for Result<void>");

 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}        // NOLINT: implicit
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {  // NOLINT: implicit
    COORD_ASSERT(!std::get<1>(v_).ok(), "a Result built from a Status must carry an error");
  }
  Result(ErrorCode code) : Result(Status(code)) {}  // NOLINT: implicit
  // Builds the value in place: a hot path returning a large T avoids a copy
  // through a temporary.
  template <typename... Args>
  explicit Result(std::in_place_t, Args&&... args)
      : v_(std::in_place_index<0>, std::forward<Args>(args)...) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  ErrorCode code() const { return ok() ? ErrorCode::Ok : std::get<1>(v_).code(); }
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

  T& value() & {
    COORD_ASSERT(ok(), "value() of a failed Result: ", std::get<1>(v_).to_string());
    return std::get<0>(v_);
  }
  const T& value() const& {
    COORD_ASSERT(ok(), "value() of a failed Result: ", std::get<1>(v_).to_string());
    return std::get<0>(v_);
  }
  T&& value() && {
    COORD_ASSERT(ok(), "value() of a failed Result: ", std::get<1>(v_).to_string());
    return std::get<0>(std::move(v_));
  }
  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace coord

// Returns the Status of `expr` from the enclosing function when it is not Ok.
#define COORD_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::coord::Status coord_status_ = (expr);        \
    if (!coord_status_.ok()) return coord_status_; \
  } while (0)

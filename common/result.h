#pragma once
// Result<T>: either a value or a non-OK Status.
//
// REQUIRES: a Result is constructed from a non-OK Status only; value() may be
// called only when ok().

#include <cassert>
#include <optional>
#include <utility>

#include "common/status.h"

namespace tern {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.isOk());
    if (status_.isOk()) status_ = Status::internal("Result built from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tern

#define TERN_CONCAT_INNER(a, b) a##b
#define TERN_CONCAT(a, b) TERN_CONCAT_INNER(a, b)
// TERN_ASSIGN_OR_RETURN(auto x, expr): unwraps a Result or returns its Status.
#define TERN_ASSIGN_OR_RETURN(lhs, expr)                 \
  auto TERN_CONCAT(tern_result_, __LINE__) = (expr);     \
  if (!TERN_CONCAT(tern_result_, __LINE__).ok())         \
    return TERN_CONCAT(tern_result_, __LINE__).status(); \
  lhs = std::move(TERN_CONCAT(tern_result_, __LINE__)).value()

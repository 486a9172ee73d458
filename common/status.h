#pragma once
// Status: the outcome of an operation that can fail, as a value.
//
// Errors on the request and purge paths are values, never exceptions. A
// Status carries a code, the source of the error (who is to blame: the client,
// the origin, storage, or Tern itself) and a message for logs. The source picks
// the HTTP status code and the Cache-Status detail at the rim.
//
// Thread-safety: a Status is a plain value; distinct objects may be used from
// distinct threads freely.

#include <string>
#include <string_view>
#include <utility>

namespace tern {

enum class StatusCode {
  kOk = 0,
  kNotFound,
  kInvalidArgument,
  kCorruption,
  kIoError,
  kResourceExhausted,  // budget, disk full, limits
  kUnavailable,        // try again later
  kTimeout,
  kUnauthenticated,
  kPermissionDenied,  // authenticated, but not allowed to do this
  kFailedPrecondition,
  kInternal,
};

// Who caused an error. Used to choose the status code shown to a client and
// the detail of the Cache-Status header.
enum class ErrorSource { kNone, kClient, kOrigin, kStorage, kInternal };

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status ok() { return Status(); }
  static Status notFound(std::string msg = {}) {
    return {StatusCode::kNotFound, ErrorSource::kNone, std::move(msg)};
  }
  static Status invalidArgument(std::string msg) {
    return {StatusCode::kInvalidArgument, ErrorSource::kClient, std::move(msg)};
  }
  static Status corruption(std::string msg) {
    return {StatusCode::kCorruption, ErrorSource::kStorage, std::move(msg)};
  }
  static Status ioError(std::string msg) {
    return {StatusCode::kIoError, ErrorSource::kStorage, std::move(msg)};
  }
  static Status resourceExhausted(std::string msg) {
    return {StatusCode::kResourceExhausted, ErrorSource::kStorage, std::move(msg)};
  }
  static Status unavailable(std::string msg) {
    return {StatusCode::kUnavailable, ErrorSource::kInternal, std::move(msg)};
  }
  static Status timeout(std::string msg) {
    return {StatusCode::kTimeout, ErrorSource::kInternal, std::move(msg)};
  }
  static Status unauthenticated(std::string msg) {
    return {StatusCode::kUnauthenticated, ErrorSource::kClient, std::move(msg)};
  }
  static Status permissionDenied(std::string msg) {
    return {StatusCode::kPermissionDenied, ErrorSource::kClient, std::move(msg)};
  }
  static Status failedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, ErrorSource::kInternal, std::move(msg)};
  }
  static Status internal(std::string msg) {
    return {StatusCode::kInternal, ErrorSource::kInternal, std::move(msg)};
  }

  Status(StatusCode code, ErrorSource source, std::string msg)
      : code_(code), source_(source), message_(std::move(msg)) {}

  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  bool isNotFound() const { return code_ == StatusCode::kNotFound; }
  bool isCorruption() const { return code_ == StatusCode::kCorruption; }

  StatusCode code() const { return code_; }
  ErrorSource source() const { return source_; }
  const std::string& message() const { return message_; }

  // Returns a copy blamed on `source`.
  Status withSource(ErrorSource source) const { return {code_, source, message_}; }

  // "NotFound: message" for logs.
  std::string toString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  ErrorSource source_ = ErrorSource::kNone;
  std::string message_;
};

std::string_view statusCodeName(StatusCode code);
std::string_view errorSourceName(ErrorSource source);

}  // namespace tern

// Returns early from the enclosing function if `expr` is not OK.
#define TERN_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::tern::Status tern_status_ = (expr);          \
    if (!tern_status_.isOk()) return tern_status_; \
  } while (0)

#include "common/status.h"

namespace tern {

std::string_view statusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kCorruption:
      return "Corruption";
    case StatusCode::kIoError:
      return "IoError";
    case StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kTimeout:
      return "Timeout";
    case StatusCode::kUnauthenticated:
      return "Unauthenticated";
    case StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case StatusCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::string_view errorSourceName(ErrorSource source) {
  switch (source) {
    case ErrorSource::kNone:
      return "none";
    case ErrorSource::kClient:
      return "client";
    case ErrorSource::kOrigin:
      return "origin";
    case ErrorSource::kStorage:
      return "storage";
    case ErrorSource::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Status::toString() const {
  std::string out(statusCodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace tern

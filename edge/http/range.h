#pragma once
// Range requests on a stored full response (RFC 9110 section 14). One byte
// range is served as 206; several ranges are answered with the whole
// representation (200), which the RFC allows. Pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edge/http/fields.h"

namespace tern::edge::http {

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};

enum class RangeOutcome { kFull, kPartial, kUnsatisfiable };

struct RangeDecision {
  RangeOutcome outcome = RangeOutcome::kFull;
  ByteRange range;
  std::string content_range;  // for 206 and 416
};

// Evaluates Range (and If-Range against the stored ETag/Last-Modified) for a
// GET of a stored representation of `length` bytes.
RangeDecision decideRange(std::string_view method, const Fields& request_headers,
                          const Fields& stored_headers, uint64_t length);

}  // namespace tern::edge::http

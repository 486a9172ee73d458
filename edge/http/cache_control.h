#pragma once
// Cache-Control (RFC 9111 section 5.2) and CDN-Cache-Control (RFC 9213),
// parsed into one value type. Pure functions.
//
// Delta-seconds larger than 2^31 are taken as 2^31 (RFC 9111 section 1.2.2).
// A freshness directive with an invalid or conflicting value makes `invalid`
// true; the response is then treated as stale (section 4.2.1).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/http/fields.h"

namespace tern::edge::http {

inline constexpr int64_t kMaxDeltaSeconds = 2147483648LL;

struct CacheControl {
  std::optional<int64_t> max_age;                 // seconds
  std::optional<int64_t> s_maxage;                // seconds
  std::optional<int64_t> min_fresh;               // seconds (request)
  bool max_stale = false;                         // request: accept stale responses ...
  std::optional<int64_t> max_stale_limit;         // ... up to this many seconds (none: any)
  std::optional<int64_t> stale_while_revalidate;  // seconds (RFC 5861)
  std::optional<int64_t> stale_if_error;          // seconds (RFC 5861)
  bool no_store = false;
  bool no_cache = false;  // unqualified, or with field names below
  std::vector<std::string> no_cache_fields;
  bool is_private = false;  // unqualified, or with field names below
  std::vector<std::string> private_fields;
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool only_if_cached = false;
  bool immutable = false;
  bool no_transform = false;
  bool must_understand = false;
  bool invalid = false;  // malformed or conflicting freshness information
  bool present = false;  // at least one directive was seen
};

// Parses the combined field value (all lines joined by commas).
CacheControl parseCacheControl(std::string_view value);

// CDN-Cache-Control and other targeted fields (RFC 9213): a Structured
// Fields Dictionary, parsed strictly (RFC 8941); `invalid` when it is not.
CacheControl parseTargetedCacheControl(std::string_view value);

// The directives a shared cache obeys for a response: CDN-Cache-Control when
// present (RFC 9213 section 2.1: it then replaces Cache-Control for caching),
// else Cache-Control.
CacheControl effectiveResponseCacheControl(const Fields& response_headers);

// Request directives, with "Pragma: no-cache" as no-cache when the request
// has no Cache-Control (RFC 9111 section 5.4).
CacheControl requestCacheControl(const Fields& request_headers);

}  // namespace tern::edge::http

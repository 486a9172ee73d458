#pragma once
// Storing and reusing responses in a shared cache (RFC 9111 sections 3 and 4,
// RFC 5861, RFC 9213). Pure functions: time is passed in, in milliseconds
// since the Unix epoch.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edge/http/cache_control.h"
#include "edge/http/fields.h"

namespace tern::edge::http {

struct CachePolicy {
  // Heuristic freshness (section 4.2.2): this share of the time since
  // Last-Modified, at most heuristic_max_ms.
  int64_t heuristic_percent = 10;
  int64_t heuristic_max_ms = 24LL * 3600 * 1000;
  // When the origin fails (section 4.2.4): how long past expiry a stored
  // response that says nothing about it (no stale-if-error) may be served,
  // and the most any stale-if-error (RFC 5861) may ask for.
  int64_t stale_on_error_ms = 0;
  int64_t stale_if_error_max_ms = 24LL * 3600 * 1000;
};

struct StoreDecision {
  bool store = false;
  std::string reason;  // why not, for Cache-Status detail and logs
};

// Section 3: may a shared cache store this response to this request?
StoreDecision decideStore(std::string_view method, const Fields& request_headers, int status,
                          const Fields& response_headers);

// Status codes that are heuristically cacheable (RFC 9110 section 15.1).
bool isHeuristicallyCacheable(int status);

// Section 4.2.1: freshness lifetime of a response, in ms (0 if none).
int64_t freshnessLifetimeMs(int status, const Fields& response_headers, int64_t response_time_ms,
                            const CachePolicy& policy = {});

// Section 4.2.3: current age in ms.
int64_t currentAgeMs(const Fields& response_headers, int64_t request_time_ms,
                     int64_t response_time_ms, int64_t now_ms);

enum class Reuse {
  kFresh,                 // serve from cache
  kStaleAllowed,          // stale, but the request's max-stale allows it
  kStaleWhileRevalidate,  // serve stale now, refresh in the background (RFC 5861)
  kRevalidate,            // must be validated with the origin first
};

struct ReuseDecision {
  Reuse reuse = Reuse::kRevalidate;
  int64_t age_ms = 0;
  int64_t ttl_ms = 0;  // freshness lifetime minus age; negative when stale
  // How long past expiry a stored response may still be served if the
  // origin fails, in ms; 0 if never. Never with no-cache, must-revalidate,
  // proxy-revalidate or s-maxage; else stale-if-error of the response or the
  // request (the larger), or the policy's stale_on_error_ms without one,
  // capped by stale_if_error_max_ms.
  int64_t stale_if_error_ms = 0;
};

// What section 4 needs of a response's own fields, parsed once (a cache
// keeps it with the stored response; a hit then parses none of them).
struct ResponseFreshness {
  int64_t lifetime_ms = 0;     // section 4.2.1
  int64_t initial_age_ms = 0;  // corrected_initial_age (4.2.3)
  bool no_cache = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool s_maxage = false;  // present
  bool immutable = false;
  std::optional<int64_t> stale_while_revalidate;  // seconds (RFC 5861)
  std::optional<int64_t> stale_if_error;          // seconds (RFC 5861)
  bool operator==(const ResponseFreshness&) const = default;
};

ResponseFreshness responseFreshness(int status, const Fields& response_headers,
                                    int64_t request_time_ms, int64_t response_time_ms,
                                    const CachePolicy& policy = {});

// Section 4: can a stored response be reused for this request?
// `force_revalidate` is set for soft-purged entries and fenced edges.
ReuseDecision decideReuse(const Fields& request_headers, const ResponseFreshness& response,
                          int64_t response_time_ms, int64_t now_ms, bool force_revalidate,
                          const CachePolicy& policy = {});
// The same from the response's fields (parsed here).
ReuseDecision decideReuse(const Fields& request_headers, int status, const Fields& response_headers,
                          int64_t request_time_ms, int64_t response_time_ms, int64_t now_ms,
                          bool force_revalidate, const CachePolicy& policy = {});

}  // namespace tern::edge::http

#include "edge/http/freshness.h"

#include <algorithm>
#include <charconv>

#include "edge/http/date.h"

namespace tern::edge::http {
namespace {

std::optional<int64_t> dateField(const Fields& h, std::string_view name) {
  // Multiple lines for a singleton date field are invalid (section 4.2.1).
  if (countField(h, name) != 1) return std::nullopt;
  return parseHttpDate(trim(*findField(h, name)));
}

}  // namespace

bool isHeuristicallyCacheable(int status) {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

StoreDecision decideStore(std::string_view method, const Fields& request_headers, int status,
                          const Fields& response_headers) {
  if (method != "GET") return {false, "method"};
  if (status < 200 || status == 206 || status == 304) return {false, "status"};
  CacheControl req = requestCacheControl(request_headers);
  if (req.no_store) return {false, "request no-store"};
  CacheControl cc = effectiveResponseCacheControl(response_headers);
  if (cc.no_store) return {false, "no-store"};
  if (cc.is_private) return {false, "private"};
  const std::string vary = combinedField(response_headers, "vary");
  for (auto v : splitList(vary)) {
    if (v == "*") return {false, "vary *"};
  }
  // Section 3.5: a request with Authorization only with explicit permission.
  if (hasField(request_headers, "authorization") &&
      !(cc.is_public || cc.s_maxage || cc.must_revalidate)) {
    return {false, "authorization"};
  }
  // Set-Cookie makes a response personal unless the origin explicitly
  // allows shared caching (the stored copy then drops Set-Cookie).
  if (hasField(response_headers, "set-cookie") && !(cc.is_public || cc.s_maxage)) {
    return {false, "set-cookie"};
  }
  if (cc.is_public || cc.max_age || cc.s_maxage || hasField(response_headers, "expires") ||
      isHeuristicallyCacheable(status)) {
    return {true, {}};
  }
  return {false, "no freshness information"};
}

namespace {

// Section 4.2.1 from directives already parsed.
int64_t lifetimeFrom(const CacheControl& cc, int status, const Fields& h, int64_t response_time_ms,
                     const CachePolicy& policy) {
  if (cc.invalid) return 0;
  if (cc.s_maxage) return *cc.s_maxage * 1000;
  if (cc.max_age) return *cc.max_age * 1000;
  if (hasField(h, "expires")) {
    auto expires = dateField(h, "expires");
    if (!expires) return 0;  // invalid Expires means already expired
    int64_t date = dateField(h, "date").value_or(response_time_ms);
    return std::max<int64_t>(0, *expires - date);
  }
  if (cc.is_public || isHeuristicallyCacheable(status)) {
    if (auto lm = dateField(h, "last-modified")) {
      int64_t date = dateField(h, "date").value_or(response_time_ms);
      if (*lm < date) {
        return std::min(policy.heuristic_max_ms, (date - *lm) * policy.heuristic_percent / 100);
      }
    }
  }
  return 0;
}

}  // namespace

int64_t freshnessLifetimeMs(int status, const Fields& h, int64_t response_time_ms,
                            const CachePolicy& policy) {
  return lifetimeFrom(effectiveResponseCacheControl(h), status, h, response_time_ms, policy);
}

namespace {

// Section 4.2.3: corrected_initial_age; the current age adds the time
// since the response arrived.
int64_t initialAgeMs(const Fields& h, int64_t request_time_ms, int64_t response_time_ms) {
  int64_t date = dateField(h, "date").value_or(response_time_ms);
  int64_t age_value = 0;
  if (auto age = findField(h, "age")) {
    auto v = trim(*age);
    int64_t secs = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
    if (ec == std::errc() && p == v.data() + v.size() && secs >= 0) {
      age_value = std::min(secs, kMaxDeltaSeconds) * 1000;
    }
  }
  int64_t apparent_age = std::max<int64_t>(0, response_time_ms - date);
  int64_t response_delay = std::max<int64_t>(0, response_time_ms - request_time_ms);
  int64_t corrected_age_value = age_value + response_delay;
  return std::max(apparent_age, corrected_age_value);
}

}  // namespace

int64_t currentAgeMs(const Fields& h, int64_t request_time_ms, int64_t response_time_ms,
                     int64_t now_ms) {
  int64_t resident_time = std::max<int64_t>(0, now_ms - response_time_ms);
  return initialAgeMs(h, request_time_ms, response_time_ms) + resident_time;
}

ResponseFreshness responseFreshness(int status, const Fields& h, int64_t request_time_ms,
                                    int64_t response_time_ms, const CachePolicy& policy) {
  CacheControl cc = effectiveResponseCacheControl(h);
  ResponseFreshness f;
  f.lifetime_ms = lifetimeFrom(cc, status, h, response_time_ms, policy);
  f.initial_age_ms = initialAgeMs(h, request_time_ms, response_time_ms);
  f.no_cache = cc.no_cache;
  f.must_revalidate = cc.must_revalidate;
  f.proxy_revalidate = cc.proxy_revalidate;
  f.s_maxage = cc.s_maxage.has_value();
  f.immutable = cc.immutable;
  f.stale_while_revalidate = cc.stale_while_revalidate;
  f.stale_if_error = cc.stale_if_error;
  return f;
}

ReuseDecision decideReuse(const Fields& request_headers, const ResponseFreshness& f,
                          int64_t response_time_ms, int64_t now_ms, bool force_revalidate,
                          const CachePolicy& policy) {
  ReuseDecision d;
  CacheControl req = requestCacheControl(request_headers);
  d.age_ms = f.initial_age_ms + std::max<int64_t>(0, now_ms - response_time_ms);
  d.ttl_ms = f.lifetime_ms - d.age_ms;
  // Section 4.2.4: no stale response where a directive forbids it; s-maxage
  // implies proxy-revalidate for shared caches (section 5.2.2.10).
  const bool no_stale = f.no_cache || f.must_revalidate || f.proxy_revalidate || f.s_maxage;
  if (!no_stale) {
    int64_t allowed = policy.stale_on_error_ms;
    if (f.stale_if_error || req.stale_if_error) {
      allowed = std::max(f.stale_if_error.value_or(0), req.stale_if_error.value_or(0)) * 1000;
    }
    d.stale_if_error_ms = std::clamp<int64_t>(allowed, 0, policy.stale_if_error_max_ms);
  }

  if (force_revalidate || f.no_cache || req.no_cache) {
    d.reuse = Reuse::kRevalidate;
    return d;
  }
  bool fresh = d.ttl_ms > 0;
  // Request max-age / min-fresh narrow what counts as fresh (5.2.1.1, 5.2.1.3).
  // A reload (max-age=0) does not revalidate a fresh immutable response
  // (RFC 8246 2); a forced reload (no-cache, above) still does.
  if (req.max_age && d.age_ms > *req.max_age * 1000 && !(f.immutable && fresh)) fresh = false;
  if (req.min_fresh && d.ttl_ms < *req.min_fresh * 1000) fresh = false;
  if (fresh) {
    d.reuse = Reuse::kFresh;
    return d;
  }
  if (no_stale) {
    d.reuse = Reuse::kRevalidate;
    return d;
  }
  int64_t staleness = -d.ttl_ms;
  if (req.max_stale && d.ttl_ms <= 0 &&
      (!req.max_stale_limit || staleness <= *req.max_stale_limit * 1000)) {
    d.reuse = Reuse::kStaleAllowed;
    return d;
  }
  if (f.stale_while_revalidate && d.ttl_ms <= 0 && staleness <= *f.stale_while_revalidate * 1000 &&
      !req.max_age && !req.min_fresh) {
    d.reuse = Reuse::kStaleWhileRevalidate;
    return d;
  }
  d.reuse = Reuse::kRevalidate;
  return d;
}

ReuseDecision decideReuse(const Fields& request_headers, int status, const Fields& h,
                          int64_t request_time_ms, int64_t response_time_ms, int64_t now_ms,
                          bool force_revalidate, const CachePolicy& policy) {
  return decideReuse(request_headers,
                     responseFreshness(status, h, request_time_ms, response_time_ms, policy),
                     response_time_ms, now_ms, force_revalidate, policy);
}

}  // namespace tern::edge::http

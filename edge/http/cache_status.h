#pragma once
// The Cache-Status response field (RFC 9211), one entry for this cache.
// Pure functions.

#include <cstdint>
#include <optional>
#include <string>

namespace tern::edge::http {

struct CacheStatus {
  bool hit = false;
  // fwd parameter when not a hit: "uri-miss", "vary-miss", "miss", "stale",
  // "request" (the client asked to bypass), "bypass" (not cacheable).
  std::string fwd;
  std::optional<int> fwd_status;
  std::optional<int64_t> ttl_s;  // remaining freshness, may be negative
  bool stored = false;
  bool collapsed = false;
  std::string key;     // the cache key, when configured to expose it
  std::string detail;  // implementation-specific detail, e.g. "stale-while-revalidate"
};

// "tern; hit; ttl=42" / "tern; fwd=miss; fwd-status=200; stored".
std::string formatCacheStatus(const CacheStatus& status, std::string_view cache_name = "tern");
// The same, appended to `out` (which keeps its room).
void appendCacheStatus(const CacheStatus& status, std::string* out,
                       std::string_view cache_name = "tern");

}  // namespace tern::edge::http

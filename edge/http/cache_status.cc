#include "edge/http/cache_status.h"

namespace tern::edge::http {
namespace {

// sf-string serialization (RFC 8941 section 4.1.6).
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c >= 0x20 && c < 0x7f) out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string formatCacheStatus(const CacheStatus& s, std::string_view cache_name) {
  std::string out(cache_name);
  if (s.hit) {
    out.append("; hit");
  } else if (!s.fwd.empty()) {
    out.append("; fwd=").append(s.fwd);
  }
  if (s.fwd_status) out.append("; fwd-status=").append(std::to_string(*s.fwd_status));
  if (s.ttl_s) out.append("; ttl=").append(std::to_string(*s.ttl_s));
  if (s.stored) out.append("; stored");
  if (s.collapsed) out.append("; collapsed");
  if (!s.key.empty()) out.append("; key=").append(quote(s.key));
  if (!s.detail.empty()) out.append("; detail=").append(quote(s.detail));
  return out;
}

}  // namespace tern::edge::http

#include "edge/http/cache_status.h"

#include <charconv>

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
  std::string out;
  appendCacheStatus(s, &out, cache_name);
  return out;
}

void appendCacheStatus(const CacheStatus& s, std::string* out_ptr, std::string_view cache_name) {
  std::string& out = *out_ptr;
  char num[24];
  auto number = [&](int64_t v) { out.append(num, std::to_chars(num, num + sizeof num, v).ptr); };
  out.append(cache_name);
  if (s.hit) {
    out.append("; hit");
  } else if (!s.fwd.empty()) {
    out.append("; fwd=").append(s.fwd);
  }
  if (s.fwd_status) {
    out.append("; fwd-status=");
    number(*s.fwd_status);
  }
  if (s.ttl_s) {
    out.append("; ttl=");
    number(*s.ttl_s);
  }
  if (s.stored) out.append("; stored");
  if (s.collapsed) out.append("; collapsed");
  if (!s.key.empty()) out.append("; key=").append(quote(s.key));
  if (!s.detail.empty()) out.append("; detail=").append(quote(s.detail));
}

}  // namespace tern::edge::http

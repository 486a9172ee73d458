// Cache-Control (RFC 9111 5.2) and CDN-Cache-Control (RFC 9213) parsing,
// and the freshness decisions that use them, on arbitrary field values.
#include "edge/http/cache_control.h"
#include "edge/http/freshness.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern::edge::http;
  tern::fuzz::Input in(data, size);
  std::string_view v = in.piece();
  CacheControl cc = parseCacheControl(v);
  CacheControl t = parseTargetedCacheControl(v);
  if (t.invalid && t.present) __builtin_trap();  // an invalid field has no directives
  if (cc.max_age && (*cc.max_age < 0 || *cc.max_age > kMaxDeltaSeconds)) __builtin_trap();
  Fields req = in.fields();
  Fields resp = in.fields();
  const int64_t now = 1'700'000'000'000;
  (void)decideStore("GET", req, 200, resp);
  auto d = decideReuse(req, 200, resp, now - 1000, now - 500, now, false, {});
  (void)d;
  (void)freshnessLifetimeMs(200, resp, now, {});
  return 0;
}

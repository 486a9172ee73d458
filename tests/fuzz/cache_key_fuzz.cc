// Cache keys of request targets (RFC 3986 normalization, the plain fast
// path): never a crash; a key that is built is a fixed point, and its urlId
// reads back as a URL.
#include "storage/cache_key.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern::storage;
  tern::fuzz::Input in(data, size);
  std::string_view host = in.piece();
  std::string_view target = in.piece();
  auto k = CacheKey::fromRequest("http", host, target);
  if (k.ok()) {
    auto again = CacheKey::fromUrl(k->toString());
    if (!again.ok() || again->toString() != k->toString()) __builtin_trap();
    // The urlId (what a purge selector holds) reads back as a URL: an edge
    // checks a logged selector that way (storage::checkNormalizedSelector).
    if (!CacheKey::fromUrl(k->urlId()).ok()) __builtin_trap();
  }
  (void)CacheKey::fromUrl(in.rest());
  return 0;
}

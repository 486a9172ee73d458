// Surrogate keys from every header CDNs use, and Cache-Group-Invalidation.
#include "edge/http/surrogate_keys.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern::edge::http;
  tern::fuzz::Input in(data, size);
  Fields resp = in.fields();
  for (const auto& k : surrogateKeys(resp)) {
    if (k.empty()) __builtin_trap();
  }
  (void)groupInvalidations(resp);
  return 0;
}

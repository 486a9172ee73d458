// Range (RFC 9110 14): any header, any length: a partial answer lies within
// the representation.
#include "edge/http/range.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern::edge::http;
  tern::fuzz::Input in(data, size);
  const uint64_t length = in.number() % (1ULL << 40);
  Fields req = in.fields();
  Fields resp = in.fields();
  auto d = decideRange("GET", req, resp, length);
  if (d.outcome == RangeOutcome::kPartial &&
      (d.range.first > d.range.last || d.range.last >= length))
    __builtin_trap();
  return 0;
}

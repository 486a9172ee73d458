// Vary: fields of a response, variant ids of requests, Accept-Encoding.
#include "edge/http/vary.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern::edge::http;
  tern::fuzz::Input in(data, size);
  Fields resp = in.fields();
  Fields req = in.fields();
  std::string_view coding = in.piece();
  auto fields = varyFields(resp);
  if (fields) {
    std::string id = variantId(req, *fields);
    if (!fields->empty() && id.size() != 16) __builtin_trap();
    if (variantId(req, *fields) != id) __builtin_trap();  // stable
  }
  std::string ae = normalizeAcceptEncoding(combinedField(req, "accept-encoding"));
  if (ae.empty()) __builtin_trap();
  (void)acceptsCoding(combinedField(req, "accept-encoding"), coding);
  return 0;
}

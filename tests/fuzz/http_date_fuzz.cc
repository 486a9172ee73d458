// HTTP-date (RFC 9110 5.6.7): whatever parses, formats back to an
// IMF-fixdate that parses to the same instant.
#include "edge/http/date.h"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern::edge::http;
  auto t = parseHttpDate(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!t) return 0;
  if (*t < 0 || *t > 253402300799000) return 0;  // years 1970..9999 format as 4 digits
  if (parseHttpDate(formatHttpDate(*t)) != t) __builtin_trap();
  return 0;
}

// RFC 8941 Dictionaries: the parser never crashes, and what it accepts has
// well-formed keys.
#include "edge/http/structured_fields.h"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view v(reinterpret_cast<const char*>(data), size);
  auto d = tern::edge::http::sf::parseDictionary(v);
  if (!d) return 0;
  for (const auto& [key, member] : *d) {
    if (key.empty() || !((key[0] >= 'a' && key[0] <= 'z') || key[0] == '*')) __builtin_trap();
  }
  return 0;
}

#pragma once
// The workload shared by the crash writer and its checker: which bytes an
// object (key i, version v, size n) must contain.

#include <cstdint>
#include <string>

namespace tern::testing {

inline std::string crashBody(uint64_t key, uint64_t version, size_t size) {
  std::string out(size, '\0');
  uint64_t x = (key * 0x9e3779b97f4a7c15ULL) ^ (version * 0xbf58476d1ce4e5b9ULL) ^ 0x1234567;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

inline std::string crashUrl(uint64_t key) {
  return "http://crash.example/obj/" + std::to_string(key);
}

}  // namespace tern::testing

#pragma once
// Fast non-cryptographic hashing (XXH3) for checksums and table keys.
// Stable across processes and versions of Tern: used in on-disk formats.
// Thread-safe: pure functions.

#include <cstdint>
#include <string_view>

namespace tern {

uint64_t hash64(std::string_view data, uint64_t seed = 0);

// Streaming form for bodies that arrive in pieces.
class Hasher64 {
 public:
  Hasher64();
  ~Hasher64();
  Hasher64(const Hasher64&) = delete;
  Hasher64& operator=(const Hasher64&) = delete;
  void update(std::string_view data);
  uint64_t digest() const;

 private:
  void* state_;
};

// 32-bit checksum of a record: the low half of hash64 with a fixed seed.
inline uint32_t checksum32(std::string_view data) {
  return static_cast<uint32_t>(hash64(data, 0x7465726eULL));  // "tern"
}

}  // namespace tern

// The on-disk encoding: decoding arbitrary bytes never crashes, and what
// decodes re-encodes to bytes that decode the same.
#include "storage/format/codec.h"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern::storage;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto meta = format::decodeMeta(bytes);
  if (meta.ok()) {
    auto again = format::decodeMeta(format::encodeMeta(*meta));
    if (!again.ok()) __builtin_trap();
  }
  (void)format::decodeChunk(bytes);
  format::MetaKeyParts parts;
  (void)format::parseMetaKey(bytes, &parts);
  auto split = bytes.find('\n');
  if (split != std::string_view::npos)
    (void)format::decodeMarker(bytes.substr(0, split), bytes.substr(split + 1));
  return 0;
}

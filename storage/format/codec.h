#pragma once
// Encoding of keys and records of the persistent store. Pure functions; see
// FORMAT.md for the layout. Decoders never trust their input: every length is
// bounds-checked and every record carries a checksum.
// Thread-safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/cache_key.h"
#include "storage/entry.h"
#include "storage/purge_filter.h"

namespace tern::storage::format {

// Metadata key: host \0 path[?query] \0 scheme \0 variant. All variants of a
// URL share the prefix urlPrefix(); all URLs of a host share hostPrefix().
std::string metaKey(const ObjectKey& key);
// The same, appended to `out` (a buffer kept by the caller, no allocation).
void appendMetaKey(const ObjectKey& key, std::string* out);
std::string urlPrefix(const CacheKey& url);
std::string hostPrefix(std::string_view host);
// The key prefix holding every URL whose urlId starts with `url_id_prefix`
// ("host/path-prefix").
std::string prefixPrefix(std::string_view url_id_prefix);

// Splits a metadata key back into host and urlId (for purge checks).
struct MetaKeyParts {
  std::string_view host;
  std::string_view path_query;
};
bool parseMetaKey(std::string_view key, MetaKeyParts* out);

// Body chunk key: object id (8 bytes big-endian) + chunk index (4 bytes BE).
std::string chunkKey(uint64_t object_id, uint32_t index);
std::string encodeChunk(std::string_view data);
// Verifies the checksum and returns the data part of a stored chunk.
Result<std::string_view> decodeChunk(std::string_view stored);
// The data part of a stored chunk, unchecked: for a caller that verifies it
// otherwise (an object of one chunk is covered by its body hash).
Result<std::string_view> chunkData(std::string_view stored);

// Tag index key: tag \0 metaKey; value: object id.
std::string tagKey(std::string_view tag, std::string_view meta_key);
std::string tagPrefix(std::string_view tag);

// Where a body written to a body file lies (format 3): contiguous from
// `offset` in segment `segment`, with the checksum32 of each chunk for a
// body of more than one chunk (one chunk is covered by the body hash).
struct BodyFileRef {
  uint64_t segment = 0;
  uint64_t offset = 0;
  std::vector<uint32_t> chunk_sums;
  bool operator==(const BodyFileRef&) const = default;
};

// A metadata record: the entry plus where its body lives (body files, or
// chunks in the body family keyed by object id when `file` is empty).
struct MetaRecord {
  EntryMeta meta;
  uint64_t object_id = 0;
  uint32_t chunk_bytes = 0;
  std::optional<BodyFileRef> file;
};
std::string encodeMeta(const MetaRecord& record);
Result<MetaRecord> decodeMeta(std::string_view data);

std::string encodeFixed64(uint64_t v);
bool decodeFixed64(std::string_view data, uint64_t* v);
std::string encodeBigEndian64(uint64_t v);

std::string markerKey(SelectorKind kind, std::string_view value);
std::string encodeMark(const PurgeMark& mark);
Result<PurgeMarker> decodeMarker(std::string_view key, std::string_view value);

std::string pendingKey(uint64_t object_id);

}  // namespace tern::storage::format

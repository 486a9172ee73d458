#pragma once
// On-disk format constants of the persistent store. Changing any of these is a
// format change: bump kFormatVersion and say so in storage/format/FORMAT.md.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tern::storage::format {

inline constexpr uint32_t kFormatVersion = 3;
// The oldest version this one reads (and upgrades in place): a store of
// version 1 or 2 holds records of its version, which stay readable.
inline constexpr uint32_t kOldestReadableVersion = 1;
// Written first in every metadata record: "TRN" + the record layout's
// version (2 since format 2: sections; format 3 added a section).
inline constexpr uint32_t kMetaMagic = 0x54524e02u;
inline constexpr uint32_t kMetaMagicV1 = 0x54524e01u;

// Column families.
inline constexpr std::string_view kMetaFamily = "meta";
inline constexpr std::string_view kBodyFamily = "body";
inline constexpr std::string_view kTagFamily = "tags";
// The default family holds the "sys" records below.

// Keys in the default family.
inline constexpr std::string_view kAppliedSeqKey = "applied_seq";
inline constexpr std::string_view kPurgeFloorKey = "purge_floor";
inline constexpr std::string_view kObjectIdKey = "object_id_hwm";
inline constexpr std::string_view kBytesCounterKey = "counter/bytes";
inline constexpr std::string_view kObjectsCounterKey = "counter/objects";
inline constexpr std::string_view kFormatKey = "format_version";
inline constexpr std::string_view kMarkerPrefix = "marker/";    // + kind byte + value
inline constexpr std::string_view kPendingPrefix = "pending/";  // + object id (8 bytes BE)

// Object ids are reserved in blocks so that restarts never reuse one.
inline constexpr uint64_t kObjectIdBlock = 1 << 20;

// Body chunking.
inline constexpr size_t kDefaultChunkBytes = 64 * 1024;
inline constexpr size_t kChunkHeaderBytes = 4;  // checksum32 of the chunk data

// Body files (storage/rocksdb/body_files.h): the folder inside the store,
// and the alignment of a body's first byte in its segment.
inline constexpr std::string_view kBodyFilesDir = "bodies";
inline constexpr uint64_t kBodyAlignment = 4096;

// Separator inside composite keys; never part of a host, path or tag.
inline constexpr char kSep = '\0';

}  // namespace tern::storage::format

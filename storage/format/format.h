#pragma once
// On-disk format constants of the persistent store. Changing any of these is a
// format change: bump kFormatVersion and say so in storage/format/FORMAT.md.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tern::storage::format {

inline constexpr uint32_t kFormatVersion = 2;
// The oldest version this one reads (and upgrades in place): a store of
// version 1 holds records of version 1, which stay readable, and new ones.
inline constexpr uint32_t kOldestReadableVersion = 1;
// Written first in every metadata record: "TRN" + version.
inline constexpr uint32_t kMetaMagic = 0x54524e00u | kFormatVersion;
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

// Separator inside composite keys; never part of a host, path or tag.
inline constexpr char kSep = '\0';

}  // namespace tern::storage::format

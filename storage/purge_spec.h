#pragma once
// PurgeSpec: one purge as it is applied to a store. It is what the coordinator
// logs under a sequence number and what an edge applies in that order.
//
// Selector values are normalized by `normalizeSelector` before they reach a
// store:
//   url     "host/path?query" (CacheKey::urlId), every Vary variant
//   prefix  "host/path-prefix": every URL whose urlId starts with it
//   host    "host[:port]"
//   tag     a surrogate key, as stored
//   all     (no value)
//
// Thread-safety: plain values.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tern::storage {

enum class SelectorKind : uint8_t { kUrl = 0, kPrefix = 1, kHost = 2, kTag = 3, kAll = 4 };
enum class PurgeMode : uint8_t { kHard = 0, kSoft = 1 };

struct PurgeSelector {
  SelectorKind kind = SelectorKind::kAll;
  std::string value;
  bool operator==(const PurgeSelector&) const = default;
};

struct PurgeSpec {
  uint64_t seq = 0;  // > 0; purges are applied in increasing order
  PurgeMode mode = PurgeMode::kHard;
  std::vector<PurgeSelector> selectors;
};

// Limits that keep a purge and a stored object bounded.
inline constexpr size_t kMaxTagBytes = 1024;
inline constexpr size_t kMaxSelectorBytes = 8192;

// Validates and normalizes a selector given by a user: a url or prefix may be
// given with or without scheme; hosts are lower-cased; tags must be non-empty,
// printable and at most kMaxTagBytes.
Result<PurgeSelector> normalizeSelector(SelectorKind kind, std::string_view value);

// A selector as the coordinator logged it, already normalized: checked as
// strictly, but never changed. (Normalizing a url again is not always the
// same: "https://h:80/a" is "h:80/a", which read without its scheme is
// "h/a"; an edge must match what the coordinator decided.)
Result<PurgeSelector> checkNormalizedSelector(SelectorKind kind, std::string_view value);

std::string_view selectorKindName(SelectorKind kind);
bool parseSelectorKind(std::string_view name, SelectorKind* out);
std::string_view purgeModeName(PurgeMode mode);

// True if `tag` may be stored (non-empty, no control characters or spaces,
// at most kMaxTagBytes).
bool isValidTag(std::string_view tag);

}  // namespace tern::storage

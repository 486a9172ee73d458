#pragma once
// PurgeFilter: the index of purge markers that makes a purge cost O(1) no
// matter how many objects it matches.
//
// A purge adds one marker per selector: (kind, value) -> the highest hard and
// soft purge sequence seen for it. An object stored at `store_seq` is purged
// by a marker that matches it with a higher sequence. check() looks up only
// the markers that can match the object — `all`, its host, its URL, the
// prefixes of its URL that have markers, its tags — each a hash lookup; there
// is no list to scan.
//
// Markers are retired by the owning store's background clean-up once every
// object they match has been deleted or flagged stale on its own. Retiring
// raises the "floor": an in-flight write whose fetch started below the floor
// can no longer be judged against retired markers and is stored stale (it
// will be revalidated), which keeps Guarantee 1 without remembering markers
// forever.
//
// Thread-safety: none; the owning store guards it with its lock.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/purge_spec.h"

namespace tern::storage {

struct PurgeMark {
  uint64_t hard_seq = 0;
  uint64_t soft_seq = 0;
  bool operator==(const PurgeMark&) const = default;
};

struct PurgeMarker {
  SelectorKind kind = SelectorKind::kAll;
  std::string value;
  PurgeMark mark;
};

enum class PurgeVerdict { kValid, kStale, kGone };

class PurgeFilter {
 public:
  // Adds the markers of `spec` and returns their new states (for persisting).
  std::vector<PurgeMarker> add(const PurgeSpec& spec);

  // Restores a marker read back from disk.
  void restore(const PurgeMarker& marker);

  PurgeVerdict check(std::string_view host, std::string_view url_id,
                     const std::vector<std::string>& tags, uint64_t store_seq) const;

  // The current mark of one selector (zero when none).
  PurgeMark get(SelectorKind kind, std::string_view value) const;

  // All markers, `all` included when set.
  std::vector<PurgeMarker> markers() const;

  // Removes `marker` if it is unchanged since it was read; raises the floor
  // to its highest sequence. Returns whether it was removed.
  bool retire(const PurgeMarker& marker);

  uint64_t floor() const { return floor_; }
  void setFloor(uint64_t floor) { floor_ = floor; }
  size_t size() const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, PurgeMark, StringHash, std::equal_to<>>;
  Map& mapFor(SelectorKind kind);
  const Map& mapFor(SelectorKind kind) const;

  PurgeMark all_;
  Map hosts_, urls_, prefixes_, tags_;
  std::map<size_t, size_t> prefix_lengths_;  // prefix length -> markers of that length
  uint64_t floor_ = 0;
};

// Combines a mark into a verdict for an object stored at `store_seq`.
inline PurgeVerdict judge(const PurgeMark& mark, uint64_t store_seq) {
  if (store_seq < mark.hard_seq) return PurgeVerdict::kGone;
  if (store_seq < mark.soft_seq) return PurgeVerdict::kStale;
  return PurgeVerdict::kValid;
}

}  // namespace tern::storage

#pragma once
// Eviction policies for a byte budget.
//
// TinyLfuPolicy is W-TinyLFU (Einziger, Friedman, Manes: "TinyLFU: A Highly
// Efficient Cache Admission Policy", 2017), the policy of Caffeine: a small
// LRU window (1% of the budget) admits new objects; objects leaving the window
// become candidates for the main space (segmented LRU, 20% probation, 80%
// protected) and are admitted only if a count-min sketch says they are used
// more often than the object they would displace. It keeps one-hit wonders
// from flushing popular objects, which plain LRU cannot. LruPolicy is the
// baseline it is measured against (bench/eviction_bench, tests).
//
// Weights are bytes. Ids are 64-bit hashes chosen by the store.
//
// Thread-safety: none; the owning store serializes calls.

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace tern::storage {

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  // Adds a new object (or re-adds a replaced one) of `bytes`.
  virtual void insert(uint64_t id, uint64_t bytes) = 0;
  // Records a hit.
  virtual void touch(uint64_t id) = 0;
  // Forgets an object removed for another reason (purge, invalidation).
  virtual void remove(uint64_t id) = 0;
  // An object of `bytes` not held here is wanted (a miss of this tier):
  // records the access and says whether storing it now would pay: true while
  // there is room; with none, TinyLFU compares its frequency with the object
  // next in line for eviction (its admission test, asked before the object is
  // copied in), LRU always takes it.
  virtual bool admits(uint64_t id, uint64_t bytes) = 0;
  // Chooses the next object to evict and forgets it; nullopt when empty.
  virtual std::optional<uint64_t> evict() = 0;
  virtual bool contains(uint64_t id) const = 0;
  virtual uint64_t bytes() const = 0;
  virtual size_t size() const = 0;
};

enum class EvictionKind { kTinyLfu, kLru };

std::unique_ptr<EvictionPolicy> makeEvictionPolicy(EvictionKind kind, uint64_t capacity_bytes);

// Count-min sketch with 4-bit counters and periodic halving ("aging"), as in
// TinyLFU. Blocked, as Caffeine's: the four counters of an id lie in one
// 64-byte block (one word of each pair of words), so counting or estimating
// an id touches one cache line, not four. Exposed for tests.
class FrequencySketch {
 public:
  explicit FrequencySketch(size_t expected_items);
  // table_ points into storage_: a copy would share the original's table.
  FrequencySketch(const FrequencySketch&) = delete;
  FrequencySketch& operator=(const FrequencySketch&) = delete;
  void increment(uint64_t id);
  uint32_t estimate(uint64_t id) const;
  // Grows the sketch (dropping counts) when many more items are tracked.
  void ensureCapacity(size_t items);

 private:
  static constexpr size_t kBlockWords = 8;  // 64 bytes
  void reset();
  // The block of `h` (its first word) and the counter hash for its words.
  uint64_t* block(uint64_t h) const;
  std::vector<uint64_t> storage_;  // 16 four-bit counters per word
  uint64_t* table_ = nullptr;      // storage_, from a 64-byte boundary
  size_t words_ = 0;
  uint64_t block_mask_ = 0;
  size_t sample_size_ = 0;
  size_t additions_ = 0;
};

}  // namespace tern::storage

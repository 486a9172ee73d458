#pragma once
// TieredStore: the memory tier in front of the disk tier. Lookups try memory
// first (never blocks) and then disk (blocks: call from the pool); a disk hit
// small enough is promoted to memory when the memory tier's admission takes
// it (room, or used more often than what it would displace: with a working
// set far bigger than memory, most disk hits are served from disk without
// a copy). Writes and purges go to both tiers.
//
// Thread-safety: thread-safe (both tiers are).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/memory/memory_store.h"
#include "storage/object_store.h"

namespace tern::edge::cache {

class TieredStore {
 public:
  // `disk` may be null (memory only).
  TieredStore(std::unique_ptr<storage::MemoryStore> memory,
              std::unique_ptr<storage::ObjectStore> disk, uint64_t memory_max_object_bytes);

  Result<storage::LookupResult> lookupMemory(const storage::ObjectKey& key);
  // REQUIRES: may block; not on an event loop.
  Result<storage::LookupResult> lookupDisk(const storage::ObjectKey& key);
  bool hasDisk() const { return disk_ != nullptr; }
  // True when lookupDisk (promotion included) may be tried on an event loop
  // inside a storage::NonBlockingReads scope.
  bool diskHonoursNonBlockingReads() const {
    return disk_ != nullptr && disk_->honoursNonBlockingReads();
  }

  // One object written as it arrives: the disk tier takes every chunk at
  // once, the memory tier a copy at commit() when the object is small
  // enough (so at most memory_max_object_bytes are held per writer).
  // Used by one thread at a time; every call may block.
  class Writer {
   public:
    // ResourceExhausted past the store's max_object_bytes (nothing stored).
    Status append(std::shared_ptr<const std::string> chunk);
    // FailedPrecondition if a hard purge matched the object meanwhile.
    Status commit();

   private:
    friend class TieredStore;
    TieredStore* store_ = nullptr;
    storage::ObjectKey key_;
    storage::EntryMeta meta_;
    std::unique_ptr<storage::ObjectWriter> disk_;
    std::vector<std::shared_ptr<const std::string>> small_;  // for the memory tier
    uint64_t size_ = 0;
  };
  // REQUIRES: may block.
  Result<std::unique_ptr<Writer>> beginWrite(const storage::ObjectKey& key,
                                             const storage::EntryMeta& meta);

  // Stores a whole response in both tiers. REQUIRES: may block.
  Status store(const storage::ObjectKey& key, const storage::EntryMeta& meta,
               const std::vector<std::shared_ptr<const std::string>>& chunks);
  // REQUIRES: may block.
  Status updateMeta(const storage::ObjectKey& key, const storage::EntryMeta& meta);
  Status removeUrl(const storage::CacheKey& url);
  Status applyPurge(const storage::PurgeSpec& spec);
  // Consecutive purges, made durable on disk with one sync.
  Status applyPurges(const std::vector<storage::PurgeSpec>& specs);
  // The highest purge applied to both tiers (the disk tier takes a purge
  // first, and until the memory tier has it too, the memory tier may still
  // serve what it purges: the purge is not applied yet).
  uint64_t appliedSeq() const { return applied_seq_.load(std::memory_order_acquire); }
  // A purge decided by this edge alone (standalone edges: no coordinator
  // assigns sequences); it takes the next sequence number.
  Status applyLocal(storage::PurgeSpec spec);

  storage::StoreStats memoryStats() const { return memory_->stats(); }
  storage::StoreStats diskStats() const;
  // Disk hits copied into the memory tier, and disk hits the memory tier's
  // admission declined (served from disk without a copy).
  uint64_t promotions() const { return promotions_.load(); }
  uint64_t promotionsDeclined() const { return declined_.load(); }

 private:
  std::unique_ptr<storage::MemoryStore> memory_;
  std::unique_ptr<storage::ObjectStore> disk_;
  uint64_t memory_max_object_bytes_;
  std::mutex local_mu_;  // serializes applyLocal
  std::atomic<uint64_t> applied_seq_;
  std::atomic<uint64_t> promotions_{0};
  std::atomic<uint64_t> declined_{0};
};

}  // namespace tern::edge::cache

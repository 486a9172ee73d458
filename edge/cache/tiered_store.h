#pragma once
// TieredStore: the memory tier in front of the disk tier. Lookups try memory
// first (never blocks) and then disk (blocks: call from the pool); a disk hit
// small enough is promoted to memory. Writes and purges go to both tiers.
//
// Thread-safety: thread-safe (both tiers are).

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

  // Stores a whole response in both tiers. REQUIRES: may block.
  Status store(const storage::ObjectKey& key, const storage::EntryMeta& meta,
               const std::vector<std::shared_ptr<const std::string>>& chunks);
  // REQUIRES: may block.
  Status updateMeta(const storage::ObjectKey& key, const storage::EntryMeta& meta);
  Status removeUrl(const storage::CacheKey& url);
  Status applyPurge(const storage::PurgeSpec& spec);
  // Consecutive purges, made durable on disk with one sync.
  Status applyPurges(const std::vector<storage::PurgeSpec>& specs);
  uint64_t appliedSeq() const;
  // A purge decided by this edge alone (standalone edges: no coordinator
  // assigns sequences); it takes the next sequence number.
  Status applyLocal(storage::PurgeSpec spec);

  storage::StoreStats memoryStats() const { return memory_->stats(); }
  storage::StoreStats diskStats() const;

 private:
  std::unique_ptr<storage::MemoryStore> memory_;
  std::unique_ptr<storage::ObjectStore> disk_;
  uint64_t memory_max_object_bytes_;
  std::mutex local_mu_;  // serializes applyLocal
};

}  // namespace tern::edge::cache

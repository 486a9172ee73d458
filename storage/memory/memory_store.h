#pragma once
// MemoryStore: an ObjectStore in RAM. It is the edge's memory tier in front
// of RocksStore, and the fake store of tests (it passes the same conformance
// suite).
//
// Objects live in shards chosen by URL, each an ordered map under its own
// mutex, so that all variants of a URL sit together and a hit locks only its
// shard. Purge markers work as in RocksStore; a lookup consults them only
// when a purge arrived since the object was last judged (one atomic load on
// the common path). The background sweep walks every shard once per pass and
// then retires the markers it covered.
//
// Thread-safety: all public methods are thread-safe.

#include <boost/unordered/unordered_flat_map.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/eviction.h"
#include "storage/object_store.h"
#include "storage/purge_filter.h"

namespace tern::storage {

struct MemoryStoreOptions {
  uint64_t budget_bytes = 256ULL << 20;
  uint64_t max_object_bytes = 8ULL << 20;
  uint32_t chunk_bytes = 64 * 1024;
  // Bodies of at least this many bytes are kept in an anonymous in-memory
  // file (memfd, sealed), mapped for reading, so that a session can send
  // them with sendfile(2): no copy through user space (0: never).
  uint64_t file_body_bytes = 0;
  // At most this many such files at once (each is an open descriptor);
  // beyond, bodies are kept as chunks.
  size_t max_file_bodies = 1024;
  size_t max_variants_per_url = 32;
  EvictionKind eviction = EvictionKind::kTinyLfu;
  bool background = true;
};

class MemoryStore final : public ObjectStore {
 public:
  explicit MemoryStore(const MemoryStoreOptions& options = {});
  ~MemoryStore() override;

  Result<LookupResult> lookup(const ObjectKey& key) override;
  // Whether an object of `body_bytes` missing here is worth storing now (a
  // promotion from a lower tier): EvictionPolicy::admits.
  bool admits(const ObjectKey& key, uint64_t body_bytes);
  Result<std::unique_ptr<ObjectWriter>> beginWrite(const ObjectKey& key, EntryMeta meta) override;
  Status updateMeta(const ObjectKey& key, EntryMeta meta) override;
  Status removeUrl(const CacheKey& url) override;
  Status applyPurge(const PurgeSpec& spec) override;
  uint64_t appliedSeq() const override { return applied_seq_.load(std::memory_order_acquire); }
  bool honoursNonBlockingReads() const override { return true; }  // never blocks
  StoreStats stats() const override;
  void runMaintenanceForTesting() override;

  struct Object;  // defined in the .cc

 private:
  friend class MemoryObjectWriter;
  static constexpr size_t kShards = 16;
  // Objects ordered by key (the variants of a URL, and every URL under a
  // prefix, are neighbours), with a hash index over the same keys: a lookup
  // is one hash probe instead of a walk of string comparisons down a tree.
  struct Shard {
    using Map = std::map<std::string, std::shared_ptr<Object>, std::less<>>;
    struct Hash {
      using is_transparent = void;
      size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::mutex mu;
    Map objects;  // GUARDED_BY(mu)
    // GUARDED_BY(mu); keys point into `objects`. Open addressing: a lookup
    // probes one group of slots instead of walking bucket and node.
    boost::unordered_flat_map<std::string_view, Map::iterator, Hash, std::equal_to<>> index;

    Map::iterator find(std::string_view key) {
      auto it = index.find(key);
      return it == index.end() ? objects.end() : it->second;
    }
    void insert(const std::string& key, std::shared_ptr<Object> object) {
      auto [it, inserted] = objects.insert_or_assign(key, std::move(object));
      if (inserted) index.emplace(it->first, it);
    }
    void erase(Map::iterator it) {
      index.erase(std::string_view(it->first));
      objects.erase(it);
    }
  };

  Shard& shardFor(std::string_view meta_key);
  Status commit(const std::string& meta_key, std::shared_ptr<Object> object);
  PurgeVerdict judge(std::string_view meta_key, const EntryMeta& meta) const;
  // REQUIRES: shard.mu held. Removes the object and forgets it for eviction.
  void eraseLocked(Shard& shard, Shard::Map::iterator it);
  void evictToBudget();
  void sweep();
  void backgroundLoop();

  MemoryStoreOptions options_;
  std::array<Shard, kShards> shards_;

  mutable std::shared_mutex filter_mu_;
  PurgeFilter filter_;  // GUARDED_BY(filter_mu_)
  std::atomic<uint64_t> filter_version_{1};
  std::atomic<uint64_t> applied_seq_{0};

  std::mutex policy_mu_;
  std::unique_ptr<EvictionPolicy> policy_;                 // GUARDED_BY(policy_mu_)
  std::unordered_map<uint64_t, std::string> policy_keys_;  // GUARDED_BY(policy_mu_)

  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> objects_{0};
  std::atomic<uint64_t> evictions_{0};
  // memfd bodies alive (shared with them: a body may outlive the store)
  std::shared_ptr<std::atomic<size_t>> file_bodies_ = std::make_shared<std::atomic<size_t>>(0);

  std::mutex sweep_mu_;
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool bg_stop_ = false;    // GUARDED_BY(bg_mu_)
  bool bg_wakeup_ = false;  // GUARDED_BY(bg_mu_)
  std::thread bg_thread_;
};

}  // namespace tern::storage

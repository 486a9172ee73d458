#pragma once
// MetaCache: the decoded metadata records of disk objects, kept in memory
// (as nginx keeps its keys_zone) so that a disk-tier hit reads RocksDB once,
// for the body, instead of twice. Bounded in bytes, sharded by key; out
// first is the oldest entry not used since it was last passed over (CLOCK,
// second chance: a hit only sets a flag, it moves nothing in a list).
//
// Coherence with the store: every write of a metadata key goes through one
// place (RocksStore::write), which holds a Writing for the keys of its batch
// from before the write until after it. Those keys are dropped when it
// starts, and while it lasts nothing is inserted into their shards. A reader
// that missed takes a ticket before it reads the store and inserts what it
// read with that ticket; the insert is refused if a write of its shard began
// or ended since. So a value read before a write is never kept after it, and
// while a write is under way every lookup of its keys reads the store: what
// readers see of a key is what RocksDB shows, never older after newer.

#include <boost/unordered/unordered_flat_map.hpp>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/format/codec.h"

namespace tern::storage {

class MetaCache {
 public:
  // capacity_bytes 0: nothing is kept (every lookup reads the store).
  explicit MetaCache(uint64_t capacity_bytes);

  struct Ticket {
    size_t shard = 0;
    uint64_t generation = 0;
  };

  bool enabled() const { return capacity_ > 0; }
  // The record kept for `key`, or null; a record found is marked used.
  std::shared_ptr<const format::MetaRecord> find(std::string_view key);
  // Taken before reading `key` from the store.
  Ticket ticket(std::string_view key);
  // Keeps `record` (charged `charge` bytes) unless its shard forgot a key
  // since `t` was taken.
  void insert(const Ticket& t, std::string_view key,
              std::shared_ptr<const format::MetaRecord> record, size_t charge);
  // A write of some keys under way (see above); ends when destroyed.
  class Writing {
   public:
    Writing() = default;
    Writing(Writing&& o) noexcept : cache_(o.cache_), shards_(o.shards_) { o.cache_ = nullptr; }
    Writing& operator=(Writing&&) = delete;
    ~Writing();

   private:
    friend class MetaCache;
    MetaCache* cache_ = nullptr;
    uint32_t shards_ = 0;  // bit i: shard i
  };
  // Before writing `keys`; `every_key`: the write may touch keys not listed.
  Writing writing(const std::vector<std::string_view>& keys, bool every_key = false);

  uint64_t bytes() const;
  size_t size() const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    std::shared_ptr<const format::MetaRecord> record;
    size_t charge = 0;
    bool used = false;                     // found since it was last passed over
    std::list<std::string>::iterator lru;  // holds the key
  };
  struct Shard {
    mutable std::mutex mu;
    uint64_t generation = 0;  // bumped as each write begins and ends
    uint32_t writers = 0;     // writes under way
    uint64_t bytes = 0;
    // Keys point into `lru`'s strings (list nodes never move). Open
    // addressing: a lookup probes one group, then compares one key.
    boost::unordered_flat_map<std::string_view, Entry, Hash> map;
    std::list<std::string> lru;  // the keys; front: newest, or passed over last
  };
  static constexpr size_t kShards = 16;
  static_assert(kShards <= 32);

  void endWriting(uint32_t shards);

  Shard& shardOf(std::string_view key, size_t* index = nullptr);

  uint64_t capacity_;
  uint64_t shard_capacity_;
  std::vector<Shard> shards_;
};

}  // namespace tern::storage

#pragma once
// RocksStore: the persistent disk tier, an ObjectStore on RocksDB.
//
// Layout (see storage/format/FORMAT.md): metadata in family "meta" keyed by
// host/path/scheme/variant so that URL, prefix and host purges are range
// scans for the background clean-up; bodies in body files beside the
// database (storage/rocksdb/body_files.h), their place in the metadata
// record (or, for objects stored with body_files off or by format 2, in
// family "body" as checksummed chunks keyed by a never-reused object id); a
// tag index in family "tags"; applied_seq, purge markers and byte/object
// counters in the default family.
// Counters are RocksDB merge operands written in the same batch as the change
// they count, so they are exact after a crash and need no scan at start-up.
//
// Crash safety: an object becomes visible in one atomic batch (metadata, last
// chunk, tag index, counters); a body file's bytes are written before it.
// Chunks of an object that was being written when the process died are
// found through a "pending" record and removed at open; bytes of body files
// that no record holds are freed once the index is loaded. Every chunk and
// every metadata record carries a checksum; a record that fails it is
// removed and reported as a miss.
//
// Start-up: opening needs no scan. The eviction index is rebuilt by a
// background thread; until it is loaded the budget is enforced only for new
// objects.
//
// Thread-safety: all public methods are thread-safe. Lookups take no lock
// shared with writers except a reader lock on the purge markers and a
// try-lock to record the hit for eviction. Readers and writers must not
// outlive the store.

#include <atomic>
#include <condition_variable>
#include <cstdint>
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
#include "storage/rocksdb/body_files.h"
#include "storage/rocksdb/meta_cache.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
class Env;
}  // namespace rocksdb

namespace tern::storage {

struct RocksStoreOptions {
  std::string path;                         // folder of the store
  uint64_t budget_bytes = 1ULL << 30;       // logical bytes kept at most
  uint64_t max_object_bytes = 64ULL << 20;  // larger objects are not stored
  uint32_t chunk_bytes = 64 * 1024;
  size_t max_variants_per_url = 32;
  EvictionKind eviction = EvictionKind::kTinyLfu;
  uint64_t block_cache_bytes = 64ULL << 20;
  // Writes are refused (ResourceExhausted) while the file system holding the
  // store has less free space than this: the store never runs the disk
  // full, where RocksDB cannot be trusted to fail gracefully.
  uint64_t min_free_disk_bytes = 64ULL << 20;
  // Background thread for clean-up, eviction and index loading. Tests may
  // turn it off and call runMaintenanceForTesting().
  bool background = true;
  // Object ids reserved by one synced write (the reservation's end is what
  // is persisted; ids never repeat across a crash).
  uint64_t object_id_block = 1 << 20;
  // The file system RocksDB runs on (null: the default). Tests hand in one
  // that fails writes on demand.
  rocksdb::Env* env = nullptr;
  // Reads inside a storage::NonBlockingReads scope are served from the page
  // cache or refused (preadv2 RWF_NOWAIT), so that an event loop may try a
  // lookup itself (default file system only).
  bool nonblocking_reads = true;
  // Memory for the decoded metadata of disk objects (storage/rocksdb/
  // meta_cache.h): a hit on a key kept there reads RocksDB once, for the
  // body. 0 turns it off.
  uint64_t meta_cache_bytes = 64ULL << 20;
  // Bodies of new objects go to body files (storage/rocksdb/body_files.h),
  // appended to segments of about this size; false keeps them in RocksDB
  // as chunks. Objects stored either way stay readable either way.
  bool body_files = true;
  uint64_t body_segment_bytes = 64ULL << 20;
  // A body smaller than this (one block of a body file), written in one
  // piece, stays in RocksDB: a file would give it a 4 KiB block of its own,
  // and a RocksDB write is one step fewer than a file write plus one.
  uint64_t min_file_body_bytes = 4096;
  // A checked body in the page cache may be handed out as a file region for
  // sendfile(2) (BodyReader::fileReady, body_files.h): no copy through user
  // space and no checksum pass on each hit.
  bool send_body_files = true;
  // A removed body's blocks are punched out only this long after a body of
  // its segment was last out for sending: the socket may still hold the
  // pages until the peer acknowledges them (body_files.h). 0: at once.
  uint64_t sent_body_grace_ms = 60'000;
};

// Whether an error from opening a store says another process (or another
// open in this one) holds it: such a store is never moved aside.
bool isHeldElsewhere(const Status& s);

class RocksStore final : public ObjectStore {
 public:
  struct OpenReport {
    bool recreated = false;      // the old store could not be opened
    std::string moved_aside_to;  // where it was moved
    std::string reason;
    uint64_t pending_removed = 0;  // half-written objects removed at open
  };

  // Opens the store at options.path, creating it if missing. A store that
  // cannot be opened (corrupt files, unknown format) is moved aside to
  // "<path>.broken-<unix-ms>" with an error log line and a fresh one is
  // created; a store locked by another process is an error.
  static Result<std::unique_ptr<RocksStore>> open(const RocksStoreOptions& options);
  ~RocksStore() override;

  Result<LookupResult> lookup(const ObjectKey& key) override;
  Result<std::unique_ptr<ObjectWriter>> beginWrite(const ObjectKey& key, EntryMeta meta) override;
  Status updateMeta(const ObjectKey& key, EntryMeta meta) override;
  Status removeUrl(const CacheKey& url) override;
  Status applyPurge(const PurgeSpec& spec) override;
  // Applies several purges with one synced write.
  Status applyPurges(const std::vector<PurgeSpec>& specs) override;
  uint64_t appliedSeq() const override { return applied_seq_.load(std::memory_order_acquire); }
  // Its files are read with RWF_NOWAIT inside a scope (not with options.env).
  bool honoursNonBlockingReads() const override { return nowait_env_ != nullptr; }
  StoreStats stats() const override;
  void runMaintenanceForTesting() override;

  const OpenReport& openReport() const { return report_; }
  bool indexLoaded() const { return index_loaded_.load(); }
  // Blocks until the background index load finished (tests, benchmarks).
  void waitForIndex();

  // Writes a raw value into a family ("meta", "body", "tags", "default"),
  // bypassing every check: for corruption tests only.
  Status putRawForTesting(std::string_view family, std::string_view key, std::string_view value);

 private:
  friend class RocksObjectWriter;
  friend class RocksBodyReader;
  friend class FileBodyReader;

  struct IndexEntry {
    std::string meta_key;
    uint64_t bytes;
  };

  explicit RocksStore(const RocksStoreOptions& options);
  Status openDb(OpenReport* report);
  Status load();
  void backgroundLoop();
  void loadIndex();
  void cleanupMarkers();
  void evictToBudget();  // REQUIRES: mu_ held

  // What the deletions in a batch take from the counters and the index:
  // applied once the batch is written (a failed write changes nothing).
  struct Removals {
    int64_t bytes = 0;
    int64_t objects = 0;
    std::vector<uint64_t> hashes;
    std::vector<BodyFiles::Extent> extents;  // bodies in body files
  };
  // Adds to `batch` the deletion of the object whose metadata is `meta_key`,
  // and to `removals` what it takes away.  REQUIRES: mu_ held.
  void deleteObjectLocked(rocksdb::WriteBatch* batch, const std::string& meta_key,
                          const std::string& meta_value, Removals* removals);
  void applyRemovalsLocked(const Removals& removals);  // REQUIRES: mu_ held
  // Writes `batch`; a failure is logged (with `what`) and counted. Every
  // write of a metadata key goes through here: the keys the batch touched
  // are then forgotten by meta_cache_.
  Status write(rocksdb::WriteBatch* batch, const char* what);
  // Removes the object of `meta_key` if it is still the one of `object_id`
  // (a reader found its body damaged); false when it was replaced or
  // removed already (the reader raced that, nothing is damaged).
  bool reportCorrupt(const std::string& meta_key, uint64_t object_id);
  // The next object id. Ids are handed out from blocks whose end is synced
  // first, so that none is handed out twice across a crash: when that sync
  // fails, so does the allocation.  REQUIRES: mu_ held.
  Result<uint64_t> allocateObjectId();
  // OK while the disk has room for `bytes` more above the reserve.
  Status checkDiskSpace(uint64_t bytes);
  PurgeVerdict judgeLocked(const std::string& meta_key, const EntryMeta& meta) const;

  RocksStoreOptions options_;
  OpenReport report_;
  std::unique_ptr<rocksdb::Env> nowait_env_;  // outlives db_; null with options_.env
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* sys_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* body_ = nullptr;
  rocksdb::ColumnFamilyHandle* tags_ = nullptr;
  std::unique_ptr<BodyFiles> files_;  // the folder is opened even when new bodies go to chunks

  // Purge markers and the applied sequence.
  mutable std::shared_mutex filter_mu_;
  PurgeFilter filter_;   // GUARDED_BY(filter_mu_)
  std::mutex purge_mu_;  // serializes applyPurges
  std::atomic<uint64_t> applied_seq_{0};

  // Objects: commits, deletions, eviction index.
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, IndexEntry> index_;  // GUARDED_BY(mu_)
  std::unique_ptr<EvictionPolicy> policy_;          // GUARDED_BY(mu_)
  uint64_t next_object_id_ = 0;                     // GUARDED_BY(mu_)
  uint64_t object_id_limit_ = 0;                    // GUARDED_BY(mu_)

  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> objects_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> corrupt_{0};
  std::atomic<uint64_t> write_failures_{0};
  std::atomic<uint64_t> meta_cache_hits_{0};
  std::atomic<uint64_t> meta_cache_misses_{0};
  MetaCache meta_cache_;
  std::atomic<bool> index_loaded_{false};
  std::atomic<int64_t> disk_free_bytes_{0};  // last statvfs reading
  std::atomic<int64_t> disk_checked_us_{0};  // when it was taken

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool bg_stop_ = false;       // GUARDED_BY(bg_mu_)
  bool bg_wakeup_ = false;     // GUARDED_BY(bg_mu_)
  std::mutex maintenance_mu_;  // one clean-up pass at a time
  std::thread bg_thread_;
};

}  // namespace tern::storage

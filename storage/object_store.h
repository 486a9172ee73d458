#pragma once
// ObjectStore: where an edge keeps cached responses. Two implementations pass
// the same conformance suite (tests/unit/storage/object_store_conformance_test):
//   storage/rocksdb/RocksStore  persistent, the disk tier
//   storage/memory/MemoryStore  the memory tier, and the fake for tests
//
// Purges are markers, not scans: applyPurge() records (selector, mode, seq) in
// an index consulted by lookup(), so it costs the same whether it matches one
// object or a million; physical clean-up runs later in the background. A
// lookup reports a hard-purged object as NotFound and a soft-purged one with
// `must_revalidate` set.
//
// Bodies are streams of chunks: written with an ObjectWriter and read with a
// BodyReader, never held whole by the store's callers.
//
// Errors: NotFound for a miss; Corruption for an object that failed its
// checksum (the store has removed it; treat as a miss); ResourceExhausted for
// an object over the size limit; IoError for the disk.
//
// Thread-safety: every method may be called from any thread concurrently.
// Calls may block on disk (RocksStore); run them off event loops. Readers and
// writers are used by one thread at a time.

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/result.h"
#include "common/status.h"
#include "storage/cache_key.h"
#include "storage/entry.h"
#include "storage/purge_spec.h"

namespace tern::storage {

// Bytes of an open file, for sendfile(2). The file stays open, and its
// bytes unchanged (sealed), for as long as the reader that gave it lives.
struct FileRegion {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Streams a stored body chunk by chunk.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // Returns the next chunk, or an empty view at the end of the body. The view
  // stays valid until the next call or the reader's destruction.
  // Corruption if the chunk fails its checksum (the object is then removed).
  virtual Result<std::string_view> next() = 0;
  // True when the next call to next() does no I/O: its chunk is in memory,
  // or the body has ended. A caller on an event loop may then make it
  // inline instead of handing it to a thread that may block.
  virtual bool nextIsInMemory() const = 0;
  // True when takeFile() will give the rest of the body as a file region
  // whose bytes are in memory now: a large body of the memory tier, or a
  // disk-tier body that was checked before and is in the page cache (whose
  // first chunk is then also readable with next() without waiting). Never
  // blocks; asked before reading ahead.
  virtual bool fileReady() { return false; }
  // When the rest of the body lies in a file (see fileReady): fills `out`
  // with it and moves the reader to the end of the body. False (and nothing
  // moved) when it does not.
  virtual bool takeFile(FileRegion* out) {
    (void)out;
    return false;
  }
};

// Writes one object. Nothing is visible to lookups until commit().
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;  // aborts if not committed
  // Appends body bytes. ResourceExhausted once the object exceeds the
  // store's max_object_bytes; the writer is then aborted.
  virtual Status append(std::string_view data) = 0;
  // Makes the object visible atomically, replacing an older version.
  // If a hard purge that matches the object was applied after `store_seq`,
  // the object is dropped and FailedPrecondition returned.
  virtual Status commit() = 0;
  virtual void abort() = 0;
};

struct LookupResult {
  // Shared with the store, never copied per lookup (an object may carry
  // 1,000 surrogate keys). `meta->stale` is the flag as stored; whether a
  // purge applied since then is `must_revalidate`.
  std::shared_ptr<const EntryMeta> meta;
  // A soft purge (or an unknown one, see docs/storage.md) matched the object:
  // it may be served only after revalidation with the origin.
  bool must_revalidate = false;
  // Body of a kResponse entry.
  std::unique_ptr<BodyReader> body;
};

struct StoreStats {
  uint64_t objects = 0;
  uint64_t bytes = 0;  // logical bytes: bodies plus encoded metadata
  uint64_t budget_bytes = 0;
  uint64_t evictions = 0;      // since open
  uint64_t purge_markers = 0;  // markers not yet cleaned up
  uint64_t corrupt_objects = 0;
  uint64_t write_failures = 0;  // writes the storage refused since open
  uint64_t applied_seq = 0;
  // Lookups answered from metadata kept in memory, and those that read it
  // from the store (stores that keep none count neither).
  uint64_t meta_cache_hits = 0;
  uint64_t meta_cache_misses = 0;
  uint64_t meta_cache_bytes = 0;
  // Body files (RocksStore): how many, and the disk space they hold.
  uint64_t body_files = 0;
  uint64_t body_file_bytes = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual Result<LookupResult> lookup(const ObjectKey& key) = 0;

  // Starts writing `key`. `meta.store_seq` must be the applied_seq read before
  // the origin fetch started.
  virtual Result<std::unique_ptr<ObjectWriter>> beginWrite(const ObjectKey& key,
                                                           EntryMeta meta) = 0;

  // Replaces the metadata of a stored object, keeping its body (a 304
  // revalidation merging headers). NotFound if the object is gone.
  virtual Status updateMeta(const ObjectKey& key, EntryMeta meta) = 0;

  // Removes every variant of a URL, under both schemes, now (invalidation
  // after unsafe methods).
  virtual Status removeUrl(const CacheKey& url) = 0;

  // Applies a purge and durably records spec.seq as the applied sequence, in
  // one atomic step. A spec with seq <= appliedSeq() is a no-op (idempotent).
  virtual Status applyPurge(const PurgeSpec& spec) = 0;
  // Several consecutive purges; stores that can make them durable with one
  // sync override this.
  virtual Status applyPurges(const std::vector<PurgeSpec>& specs) {
    for (const auto& spec : specs) TERN_RETURN_IF_ERROR(applyPurge(spec));
    return Status::ok();
  }
  virtual uint64_t appliedSeq() const = 0;

  // True when lookups and body reads made inside a NonBlockingReads scope
  // (storage/nonblocking.h) never block: they are served from memory or
  // refused. A store that cannot tell says false, and must then not be read
  // from an event loop.
  virtual bool honoursNonBlockingReads() const { return false; }

  virtual StoreStats stats() const = 0;

  // Runs the background clean-up of purge markers now and waits for it.
  virtual void runMaintenanceForTesting() = 0;
};

}  // namespace tern::storage

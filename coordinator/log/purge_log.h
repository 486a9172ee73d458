#pragma once
// PurgeLog: the coordinator's durable, ordered purge log in RocksDB.
//
// append() hands an entry to a committer thread that assigns the next
// sequence number and writes it with a synced WriteBatch; appends that arrive
// while a sync is running share the next one (group commit). The callback
// runs only after the entry is on disk, so nothing is acknowledged that a
// crash could lose.
//
// Layout (one column family, keys by prefix):
//   "p" + be64(seq)   LogEntry          the purges, in order
//   "i" + key         be64(seq)         idempotency keys of retained purges
//   "e" + edge_id     EdgeRecord        edges known to the coordinator
//   "m" "head"        be64(seq)         highest sequence ever assigned
// Retention keeps at most `retain_count` purges and none older than
// `retain_age_ms` (the newest one is always kept, so the head survives);
// edges that fell behind the first retained sequence are told to soft-purge
// everything.
//
// Thread-safety: thread-safe.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "tern/internal/coordinator_log.pb.h"

namespace rocksdb {
class DB;
}

namespace tern::coordinator {

using LogEntry = tern::internal::v1::LogEntry;
using EdgeRecord = tern::internal::v1::EdgeRecord;

struct PurgeLogOptions {
  std::string path;
  uint64_t retain_count = 1'000'000;
  int64_t retain_age_ms = 7LL * 24 * 3600 * 1000;
  // Entries kept in memory for fan-out without reading RocksDB.
  size_t memory_entries = 65536;
  // Most entries written by one synced batch.
  size_t max_group = 4096;
};

struct PurgeLogStats {
  uint64_t head_seq = 0;
  uint64_t first_seq = 0;  // 0 when empty
  uint64_t entries = 0;
  uint64_t syncs = 0;     // synced batches written
  uint64_t appended = 0;  // entries appended since open
};

class PurgeLog {
 public:
  using AppendDone = std::function<void(Result<LogEntry>)>;

  static Result<std::unique_ptr<PurgeLog>> open(const PurgeLogOptions& options);
  ~PurgeLog();
  PurgeLog(const PurgeLog&) = delete;
  PurgeLog& operator=(const PurgeLog&) = delete;

  // Logs `entry` (its seq is assigned here). `done` runs on the committer
  // thread once the entry is durable, or with the error that stopped it.
  // An idempotency key already in the log answers with the logged entry.
  void append(LogEntry entry, AppendDone done);

  // Makes the next sequence at least seq + 1 (for an edge that has applied
  // more than this log holds: the log was replaced). `done` gets an entry
  // whose seq is the head afterwards. Durable like append().
  void raiseHead(uint64_t seq, AppendDone done);

  uint64_t headSeq() const;
  // Lowest retained sequence (head + 1 when the log is empty).
  uint64_t firstSeq() const;
  PurgeLogStats stats() const;

  // Appends up to `max` entries with seq >= from, in order.
  Status read(uint64_t from, size_t max, std::vector<LogEntry>* out) const;
  Result<std::optional<LogEntry>> get(uint64_t seq) const;

  // Known edges (not synced: losing the last update only makes a restarted
  // coordinator wait one lease for an edge it would have forgotten).
  Status saveEdge(const EdgeRecord& edge);
  Status removeEdge(const std::string& edge_id);
  Result<std::vector<EdgeRecord>> loadEdges() const;

  // Applies the retention rules now (also done after every commit).
  Status trimForTesting(int64_t now_ms);

 private:
  struct Pending {
    LogEntry entry;
    AppendDone done;
    bool raise = false;  // raiseHead(): entry.seq is the new head, nothing is logged
  };
  explicit PurgeLog(PurgeLogOptions options);
  void commitLoop();
  Status commit(std::vector<Pending>* group, std::vector<Result<LogEntry>>* results);
  Status trim(int64_t now_ms);
  Result<std::optional<LogEntry>> getFromDisk(uint64_t seq) const;

  PurgeLogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> queue_;   // GUARDED_BY(mu_)
  bool stopping_ = false;        // GUARDED_BY(mu_)
  uint64_t head_ = 0;            // GUARDED_BY(mu_)
  uint64_t first_ = 1;           // GUARDED_BY(mu_)
  uint64_t syncs_ = 0;           // GUARDED_BY(mu_)
  uint64_t appended_ = 0;        // GUARDED_BY(mu_)
  std::deque<LogEntry> recent_;  // GUARDED_BY(mu_); the newest entries, consecutive
  std::thread committer_;
};

}  // namespace tern::coordinator

#pragma once
// RocksPurgeLog: the PurgeLog of a single coordinator process, in RocksDB.
//
// append() hands an entry to a committer thread that assigns the next
// sequence number and writes it with a synced WriteBatch; appends that arrive
// while a sync is running share the next one (group commit).
//
// Layout (one column family, keys by prefix):
//   "p" + be64(seq)   LogEntry          the purges, in order
//   "i" + key         be64(seq)         idempotency keys of retained purges
//   "e" + edge_id     EdgeRecord        edges known to the coordinator
//   "m" "head"        be64(seq)         highest sequence ever assigned
// Edge records are not synced.
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

#include "coordinator/log/append_queue.h"
#include "coordinator/log/purge_log.h"

namespace rocksdb {
class DB;
}

namespace tern::coordinator {

class RocksPurgeLog final : public PurgeLog {
 public:
  static Result<std::unique_ptr<PurgeLog>> open(const PurgeLogOptions& options);
  ~RocksPurgeLog() override;
  RocksPurgeLog(const RocksPurgeLog&) = delete;
  RocksPurgeLog& operator=(const RocksPurgeLog&) = delete;

  // Logs `entry` (its seq is assigned here). `done` runs on the committer
  // thread once the entry is durable, or with the error that stopped it.
  // An idempotency key already in the log answers with the logged entry.
  void append(LogEntry entry, AppendDone done) override;

  // Makes the next sequence at least seq + 1 (for an edge that has applied
  // more than this log holds: the log was replaced). `done` gets an entry
  // whose seq is the head afterwards. Durable like append().
  void raiseHead(uint64_t seq, AppendDone done) override;

  uint64_t headSeq() const override;
  // Lowest retained sequence (head + 1 when the log is empty).
  uint64_t firstSeq() const override;
  PurgeLogStats stats() const override;

  // Appends up to `max` entries with seq >= from, in order.
  Status read(uint64_t from, size_t max, std::vector<LogEntry>* out) const override;
  Result<std::optional<LogEntry>> get(uint64_t seq) const override;

  // Known edges (not synced: losing the last update only makes a restarted
  // coordinator wait one lease for an edge it would have forgotten).
  Status saveEdge(const EdgeRecord& edge) override;
  Status removeEdge(const std::string& edge_id) override;
  Result<std::vector<EdgeRecord>> loadEdges() const override;

  // Applies the retention rules now (also done after every commit).
  Status trimForTesting(int64_t now_ms) override;

 private:
  using Pending = AppendQueue::Pending;
  explicit RocksPurgeLog(PurgeLogOptions options);
  void commitLoop();
  Status commit(std::vector<Pending>* group, std::vector<Result<LogEntry>>* results);
  Status trim(int64_t now_ms);
  Result<std::optional<LogEntry>> getFromDisk(uint64_t seq) const;

  PurgeLogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;

  mutable std::mutex mu_;
  AppendQueue queue_;
  uint64_t head_ = 0;            // GUARDED_BY(mu_)
  uint64_t first_ = 1;           // GUARDED_BY(mu_)
  uint64_t syncs_ = 0;           // GUARDED_BY(mu_)
  uint64_t appended_ = 0;        // GUARDED_BY(mu_)
  std::deque<LogEntry> recent_;  // GUARDED_BY(mu_); the newest entries, consecutive
  std::thread committer_;
};

}  // namespace tern::coordinator

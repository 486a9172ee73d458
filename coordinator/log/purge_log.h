#pragma once
// PurgeLog: the coordinator's durable, totally ordered purge log, and the
// registry of the edges it knows. Two implementations pass one conformance
// suite (tests/unit/coordinator/purge_log_conformance_test.cc):
//   log/RocksPurgeLog  the embedded default: one process, RocksDB on disk
//   etcd/EtcdPurgeLog  coordinator replicas: the log lives in etcd
//
// append() assigns the next sequence number (gap-free, in order) and calls
// back only once the entry is durable (synced to disk, or committed by an
// etcd quorum), so nothing is acknowledged that a crash could lose.
// Appends that arrive while one commit is running share the next one (group
// commit). An idempotency key already in the log answers with the logged
// entry instead of logging a second one.
//
// Retention keeps at most `retain_count` purges and none older than
// `retain_age_ms` (the newest is always kept, so the head survives); edges
// behind firstSeq() are told to soft-purge everything.
//
// Thread-safety: thread-safe. Callbacks run on the log's own thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "coordinator/log/log_records.h"

namespace tern::coordinator {

struct PurgeLogOptions {
  std::string path;  // RocksPurgeLog: the RocksDB folder
  uint64_t retain_count = 1'000'000;
  int64_t retain_age_ms = 7LL * 24 * 3600 * 1000;
  // Entries kept in memory for fan-out without reading the backing store.
  size_t memory_entries = 65536;
  // Most entries written by one commit.
  size_t max_group = 4096;
};

struct PurgeLogStats {
  uint64_t head_seq = 0;
  uint64_t first_seq = 0;  // 0 when empty
  uint64_t entries = 0;
  uint64_t syncs = 0;     // commits written (synced batches, etcd transactions)
  uint64_t appended = 0;  // entries appended through this instance since open
};

class PurgeLog {
 public:
  using AppendDone = std::function<void(Result<LogEntry>)>;

  virtual ~PurgeLog() = default;

  // Logs `entry` (its seq is assigned here). `done` runs once the entry is
  // durable, or with the error that stopped it (IoError, Unavailable).
  virtual void append(LogEntry entry, AppendDone done) = 0;

  // Makes the next sequence at least seq + 1 (for an edge that has applied
  // more than this log holds: the log was replaced). `done` gets an entry
  // whose seq is the head afterwards. Durable like append().
  virtual void raiseHead(uint64_t seq, AppendDone done) = 0;

  virtual uint64_t headSeq() const = 0;
  // Lowest retained sequence (head + 1 when the log is empty).
  virtual uint64_t firstSeq() const = 0;
  virtual PurgeLogStats stats() const = 0;

  // Appends up to `max` entries with seq >= from, in order.
  virtual Status read(uint64_t from, size_t max, std::vector<LogEntry>* out) const = 0;
  virtual Result<std::optional<LogEntry>> get(uint64_t seq) const = 0;

  // Known edges (losing the last update only makes a restarted coordinator
  // wait one lease for an edge it would have forgotten).
  virtual Status saveEdge(const EdgeRecord& edge) = 0;
  virtual Status removeEdge(const std::string& edge_id) = 0;
  virtual Result<std::vector<EdgeRecord>> loadEdges() const = 0;

  // Applies the retention rules now (also done after commits).
  virtual Status trimForTesting(int64_t now_ms) = 0;
};

}  // namespace tern::coordinator

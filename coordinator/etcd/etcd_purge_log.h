#pragma once
// EtcdPurgeLog: the PurgeLog of coordinator replicas, kept in etcd so that
// every replica is active and interchangeable and the log survives the loss
// of any one process or etcd member.
//
// Keys under `prefix` (default "/tern/"):
//   head               decimal seq   highest sequence ever assigned
//   log/<16 hex seq>   LogEntry      the purges, in order
//   idem/<key>         decimal seq   idempotency keys of retained purges
//   edges/<edge id>    EdgeRecord    edges known to the cluster
//   replicas/<id>/<session lease>  ReplicaSummary  each replica process's
//                      edges, bound to its session (ReplicaSession)
//
// A commit is one etcd transaction guarded by compares: the head's
// mod_revision is the one this replica last saw, and no idempotency key of
// the group exists yet. So sequence numbers stay gap-free and totally
// ordered across replicas (a replica that lost the race re-reads the head
// and tries again), an idempotency key used through two replicas logs one
// purge, and an append is acknowledged only once etcd (a quorum) committed
// it. Concurrent appends share one transaction (group commit). When a
// commit fails ambiguously (a member died after receiving it), the replica
// looks for its commit id in the log before answering.
//
// Every replica watches head and log/ and keeps the newest entries in
// memory, so entries logged by other replicas become visible through
// headSeq()/read() within a watch round trip; a watch whose revision etcd
// compacted away is restarted after re-reading the state. Retention
// deletes the oldest entries and their idempotency keys; the history of
// revisions is compacted every `compact_every_ms`, keeping that much.
//
// Thread-safety: thread-safe. Callbacks run on the committer thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/etcd/etcd_client.h"
#include "coordinator/log/append_queue.h"
#include "coordinator/log/purge_log.h"

namespace tern::coordinator::etcd {

struct EtcdLogOptions {
  PurgeLogOptions log;  // retention, memory window, group size
  std::string prefix = "/tern/";
  std::string replica_id;  // names this replica's commits (default: random)
  int64_t compact_every_ms = 60'000;
  // etcd's limits per transaction (--max-txn-ops, default 128; requests up
  // to --max-request-bytes, default 1.5 MiB). A single purge larger than
  // max_txn_bytes is still tried alone.
  size_t max_txn_ops = 128;
  size_t max_txn_bytes = 1 << 20;
};

class EtcdPurgeLog final : public PurgeLog {
 public:
  // Reads the head and the retained range; Unavailable when no etcd member
  // answers.
  static Result<std::unique_ptr<EtcdPurgeLog>> open(EtcdClient* client, EtcdLogOptions options);
  ~EtcdPurgeLog() override;
  EtcdPurgeLog(const EtcdPurgeLog&) = delete;
  EtcdPurgeLog& operator=(const EtcdPurgeLog&) = delete;

  void append(LogEntry entry, AppendDone done) override;
  void raiseHead(uint64_t seq, AppendDone done) override;
  uint64_t headSeq() const override;
  uint64_t firstSeq() const override;
  PurgeLogStats stats() const override;
  Status read(uint64_t from, size_t max, std::vector<LogEntry>* out) const override;
  Result<std::optional<LogEntry>> get(uint64_t seq) const override;
  Status saveEdge(const EdgeRecord& edge) override;
  Status removeEdge(const std::string& edge_id) override;
  Result<std::vector<EdgeRecord>> loadEdges() const override;
  Status trimForTesting(int64_t now_ms) override;

  // Called whenever the head moved, whichever replica moved it, on the
  // watch thread, in etcd's order with the changes under replicas/ (so a
  // commit of this replica is announced once the watch reaches it).
  void setOnHead(std::function<void(uint64_t head)> fn);

  // Changes under replicas/ arrive on the same watch as the log, so in
  // etcd's order with the purges: (replica id, value or null when deleted,
  // mod revision). On the watch thread.
  using ReplicaEvent =
      std::function<void(const std::string& id, const std::string* value, int64_t revision)>;
  // Delivers the replicas there are now, then every change.
  Status setOnReplica(ReplicaEvent fn);
  // Highest etcd revision whose changes (log and replicas/) were delivered.
  int64_t watchedRevision() const;
  // The head as announced to setOnHead's callback so far.
  uint64_t announcedHead() const;
  const std::string& replicaPrefix() const { return replica_prefix_; }

 private:
  using Pending = AppendQueue::Pending;
  EtcdPurgeLog(EtcdClient* client, EtcdLogOptions options);
  Status load();
  Status deliverReplicas();
  void startWatch(int64_t from_revision);
  void onWatch(const pb::WatchResponse& r);
  void applyWatched(std::vector<LogEntry> added, uint64_t head, int64_t head_rev,
                    uint64_t trimmed_to);
  void commitLoop();
  void maintenanceLoop();
  // Commits the group; results[i] answers group[i]. After a lost race,
  // `grow` may add to the group before the retry.
  Status commit(std::vector<Pending>* group, std::vector<Result<LogEntry>>* results,
                const std::function<void()>& grow);
  Status trim(int64_t now_ms);
  Status trimRound(int64_t now_ms, bool* more);
  void learn(const std::vector<LogEntry>& entries, uint64_t head);  // REQUIRES: !mu_
  std::string logKey(uint64_t seq) const;
  Result<uint64_t> readHead(int64_t* mod_revision);

  EtcdClient* client_;
  EtcdLogOptions options_;
  const std::string head_key_, log_prefix_, idem_prefix_, edge_prefix_, replica_prefix_;

  mutable std::mutex mu_;
  AppendQueue queue_;
  std::atomic<bool> reload_{false};        // the watch was compacted away
  uint64_t head_ = 0;                      // GUARDED_BY(mu_)
  int64_t head_rev_ = 0;                   // GUARDED_BY(mu_): mod_revision of the head key
  uint64_t first_ = 1;                     // GUARDED_BY(mu_)
  uint64_t entries_ = 0;                   // GUARDED_BY(mu_): at the last count, plus appends
  uint64_t syncs_ = 0;                     // GUARDED_BY(mu_)
  uint64_t appended_ = 0;                  // GUARDED_BY(mu_)
  uint64_t commits_ = 0;                   // GUARDED_BY(mu_)
  std::deque<LogEntry> recent_;            // GUARDED_BY(mu_); the newest entries, consecutive
  std::function<void(uint64_t)> on_head_;  // GUARDED_BY(mu_)
  ReplicaEvent on_replica_;                // GUARDED_BY(mu_)
  uint64_t delivered_head_ = 0;            // GUARDED_BY(mu_): announced to on_head_
  std::set<std::string> replicas_seen_;    // GUARDED_BY(mu_)
  std::atomic<int64_t> watched_rev_{0};

  std::unique_ptr<EtcdClient::Watcher> watcher_;  // committer thread / open only
  std::thread committer_;
  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool maintenance_stop_ = false;  // GUARDED_BY(maintenance_mu_)
  std::thread maintenance_;
};

}  // namespace tern::coordinator::etcd

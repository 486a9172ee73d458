#pragma once
// Coordinator: the purge engine behind both APIs and the edge link.
//
// A purge is validated, rate-limited, appended to the durable log (the
// callback of PurgeLog::append is the commit point), tracked per registered
// edge and pulled by every edge stream. It completes when each edge that was
// registered when it was logged has acknowledged it or has been fenced (its
// lease expired). Leases: each heartbeat renews an edge's lease for
// `lease_ms` counted from when the coordinator granted it; the edge counts
// from when it sent the heartbeat, so it always believes itself fenced no
// later than the coordinator does.
//
// Replicas (enableReplication, etcd mode): every replica tracks every purge
// of the shared log and waits for every edge, wherever it is held. Each
// replica publishes a summary of the edges it holds (ReplicaSummary) and
// applies the others'; an edge is "live" while some replica holds an
// unexpired lease for it, and has applied what any replica saw it
// acknowledge (an applied purge stays applied). A new stream is welcomed, and given its first
// lease, only once this replica's summary naming it is in etcd and this
// replica has seen the log up to that revision: a purge logged before is
// replayed to the edge before it is unfenced, and any replica that logs one
// after waits for it. Leases never outlast the replica's etcd session
// (lease_limit_us), so the edges of a replica that loses etcd are fenced by
// the time its summary expires.
//
// Streams are pull-based: the engine calls EdgeStream::wake() when there is
// something new, and the transport calls nextMessage() whenever it can write,
// so a slow edge gets larger batches rather than an unbounded queue.
//
// Where each job lives: purge_request.* checks a call, rate_limiter.* is
// the API's token bucket, engine_metrics.* the metrics, views.h the plain
// types of what the engine answers (the APIs make their messages of them:
// coordinator/api/proto_views.h), coordinator/log/log_records.h the plain
// records of the log, edge_wire.* the bytes sent to edges; coordinator.cc holds
// the purge API and the tracking of logged purges, edge_link.cc the streams
// (attach, leases, batches, fencing), replication.cc the cluster view
// (viewOf, settling purges by it, replica summaries).
//
// Thread-safety: thread-safe. Neither the log nor etcd is read or written
// under the engine's lock (a stream's batch is read from the log outside it).
// Callbacks (purge results, wake, watchers) run
// without the engine's lock held, on the thread that caused them (the log
// committer, a transport thread, or the ticker); a new purge wakes the
// streams from the engine's waker thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "coordinator/core/edge_wire.h"
#include "coordinator/core/engine_metrics.h"
#include "coordinator/core/purge_request.h"
#include "coordinator/core/rate_limiter.h"
#include "coordinator/core/views.h"
#include "coordinator/log/purge_log.h"

namespace tern::coordinator {

struct CoordinatorOptions {
  uint32_t lease_ms = 3000;
  uint32_t default_wait_timeout_ms = 10000;
  uint32_t max_wait_timeout_ms = 120000;
  // Disconnected edges not seen for this long are forgotten.
  int64_t retire_after_ms = 24LL * 3600 * 1000;
  // Purges whose per-edge progress is kept in memory (older ones are
  // answered from the log and the edges' applied sequences).
  size_t tracked_purges = 4096;
  // Most purges in one PurgeBatch.
  size_t batch_max = 256;
  // Purge calls per second (token bucket) and burst; 0 disables the limit.
  double rate_per_sec = 2000;
  double rate_burst = 4000;
  // Purge calls with wait=all held at once; more are refused with
  // ResourceExhausted (429) until some are answered.
  size_t max_waiting_calls = 10000;
  // How often leases, wait deadlines and retirement are checked.
  uint32_t tick_ms = 5;
};

// The engine's view of one edge stream (a gRPC reactor in production).
class EdgeStream {
 public:
  virtual ~EdgeStream() = default;
  // Something may be ready: call Coordinator::nextMessage until it is false.
  virtual void wake() = 0;
  // The engine ends the stream (lease lapsed, superseded by a newer one).
  virtual void close(const std::string& reason) = 0;
};

// How an engine takes part in a group of replicas (see above).
struct Replication {
  std::string replica_id;
  std::string address;  // for humans (status page, ListEdges)
  // Steady-clock microseconds until which this replica may grant leases.
  std::function<int64_t()> lease_limit_us;
  // This replica's summary changed: publish it (coalesced) and then call
  // summaryPublished(). Called without the engine's lock held.
  std::function<void()> summary_changed;
  // The log's head as its watch announced it (in etcd's order).
  std::function<uint64_t()> announced_head;
  // The etcd members as last probed (ListEdges, the status page).
  std::function<std::vector<EtcdMemberStatus>()> etcd_members;
};

class Coordinator {
 public:
  using PurgeDone = std::function<void(Result<PurgeStatus>)>;
  using SteadyClock = std::function<int64_t()>;  // microseconds

  Coordinator(PurgeLog* log, CoordinatorOptions options, metrics::Registry* registry,
              SteadyClock clock = {});
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Loads the known edges (each is given one lease from now, as it may hold
  // one from before a restart) and starts the ticker (unless !run_ticker).
  Status start(bool run_ticker = true);
  // Stops the ticker and answers every waiting purge call with Unavailable
  // (the purges themselves are durable and will still reach the edges).
  void stop();

  // --- Purge API -----------------------------------------------------------
  // `done` gets ACCEPTED once durable (wait none), COMPLETE or TIMEOUT
  // (wait all), or an error: InvalidArgument (bad request), ResourceExhausted
  // (rate limited: see retryAfterMs), IoError (log write failed).
  // `requester` is logged with the purge (the audit trail).
  void purge(const PurgeCall& call, const Requester& requester, PurgeDone done);
  void purge(const PurgeCall& call, PurgeDone done) { purge(call, Requester{}, std::move(done)); }
  Result<PurgeStatus> getPurge(uint64_t seq);
  EdgeList listEdges();
  // The newest purges, newest first.
  std::vector<PurgeStatus> recentPurges(size_t n);
  // After a rate-limited call: how long until one more purge is allowed.
  int64_t retryAfterMs();

  // Calls `fn` for each purge as it completes or times out, starting with
  // tracked ones at or after from_seq (0: only new ones). Returns an id.
  uint64_t watch(uint64_t from_seq, std::function<void(const PurgeStatus&)> fn);
  void unwatch(uint64_t id);

  // --- Edge link -------------------------------------------------------------
  // A stream opened with `hello`; returns its session id. Welcome, the first
  // lease and the backlog become available through nextMessage().
  Result<uint64_t> attach(const EdgeHello& hello, std::shared_ptr<EdgeStream> stream);
  // A heartbeat is answered with a lease; an ack settles purges.
  void heartbeat(uint64_t session, const EdgeHeartbeat& heartbeat);
  void acked(uint64_t session, const EdgeAck& ack);
  // A message of no kind this engine knows (logged; the edge was heard).
  void unexpected(uint64_t session);
  void detach(uint64_t session);
  // The message, encoded, is shared and immutable: streams at the same
  // position get the same batch, built once (see edge_wire.h).
  bool nextMessage(uint64_t session, WireMessage* out);

  // --- Replicas ---------------------------------------------------------------
  // Before start().
  void enableReplication(Replication replication);
  // Once the listener's port is known.
  void setReplicaAddress(const std::string& address);
  // This replica's summary now; `generation` names it for summaryPublished.
  ReplicaSummary summary(uint64_t* generation);
  // The summary of `generation` is in etcd and this replica has seen the
  // log up to its revision: streams that waited for it are welcomed.
  void summaryPublished(uint64_t generation);
  // Another replica's summary at etcd revision `revision` (null: the
  // replica is gone: its session expired). Older revisions are ignored.
  void replicaSummary(const std::string& replica_id, const ReplicaSummary* summary,
                      int64_t revision);

  // Another replica's edges' positions straight from it (ReplicaLink), as
  // soon as they acknowledge: only applied_seq is taken (it only grows, so
  // a wait=all call through this replica completes without waiting for the
  // summary to go through etcd); which edges exist and whose lease runs
  // comes from the summaries in etcd alone. Edges not known yet are skipped.
  void replicaProgress(const ReplicaSummary& progress);
  // What to stream to them: this replica's edges whose applied_seq moved
  // after `since` (0: all of them), edge ids and applied_seq only;
  // `*generation` is where the next call starts.
  ReplicaSummary progressSince(uint64_t since, uint64_t* generation);
  // Called (without the engine's lock) whenever this replica's summary
  // changed, for ReplicaLink streams; returns an id for removeProgressListener.
  uint64_t addProgressListener(std::function<void()> fn);
  void removeProgressListener(uint64_t id);
  // Replica id and gRPC address of every other replica with a session.
  std::vector<std::pair<std::string, std::string>> peerAddresses();

  // The log's head moved to `head` (replicas: another one logged purges):
  // the new entries are read from the log, tracked and sent to the edges.
  void learnHead(uint64_t head);

  // Runs the periodic checks once (tests drive time with their own clock).
  void tick();

 private:
  struct Edge {
    std::string id;
    std::string address;
    uint64_t incarnation = 0;
    int64_t stream_opened_ms = 0;  // of its stream here
    uint64_t applied_seq = 0;
    int64_t lease_until_us = 0;
    bool fence_seen = false;  // lease expiry has been processed
    uint64_t session = 0;     // 0: not connected
    bool catching_up = false;
    uint64_t catch_up_to = 0;
    int64_t last_seen_ms = 0;
    int64_t last_seen_us = 0;
    uint64_t last_apply_us = 0;
    bool retired = false;
    // Tracked purges up to here have their slot for this edge settled.
    uint64_t settled_to = 0;
    bool fenced_settled = false;  // its pending slots were marked fenced
    // Held by other replicas (from their summaries).
    struct Remote {
      std::string peer;     // its summary's key (replica id / session)
      std::string replica;  // replica id
      uint64_t applied_seq = 0;
      bool connected = false;
      bool catching_up = false;
      int64_t stream_opened_ms = 0;
    };
    std::vector<Remote> remote;
    uint64_t direct_applied = 0;  // from other replicas' progress streams
    uint64_t progress_gen = 0;    // progress_gen_ when applied_seq last moved
    EdgeMetrics metrics;
  };
  struct Session {
    size_t edge = 0;
    std::shared_ptr<EdgeStream> stream;
    std::deque<WireMessage> control;  // welcome, leases: encoded (edge_wire.h)
    uint64_t sent_seq = 0;
    uint64_t reset_to = 0;  // > 0: send ResetSoftAll(reset_to) first
    bool welcomed = false;  // Welcome and the first lease are queued
    uint64_t hello_applied = 0;
    uint64_t summary_gen = 0;  // replicas: welcomed once this one is published
  };
  // What the cluster knows about one edge, over every replica that holds it.
  struct View {
    bool live = false;       // some replica's lease for it runs on
    bool connected = false;  // its stream is open somewhere
    uint64_t applied = 0;    // the highest applied_seq any replica saw
    std::string replica;     // the replica with its stream ("" : this one)
    bool catching_up = false;
  };
  // A purge call of this replica whose entry the watch has not delivered.
  struct Parked {
    int64_t api_in_us;
    int64_t deadline_us;
    PurgeDone done;  // null: wait=none, answered already
    LogEntry entry;  // for an answer before it is tracked (wait=all only)
  };
  struct Peer {
    int64_t revision = 0;
    bool gone = false;
    ReplicaSummary summary;
  };
  struct Slot {
    size_t edge;
    EdgePurgeState state;
    uint64_t latency_us;
  };
  struct Waiter {
    int64_t deadline_us;
    PurgeDone done;
  };
  struct Tracked {
    LogEntry entry;
    std::string wire;  // encodeBatchedPurge(entry), for the streams
    int64_t api_in_us = 0;
    int64_t logged_us = 0;
    bool local = false;       // a purge call of this process waits on it or logged it
    std::vector<Slot> slots;  // sorted by edge index
    size_t pending = 0;
    PurgeState state = PurgeState::kAccepted;
    uint64_t complete_latency_us = 0;
    std::vector<Waiter> waiters;
  };
  using Deferred = std::vector<std::function<void()>>;

  int64_t now() const { return clock_(); }
  void onLogged(Result<LogEntry> entry, int64_t api_in_us, WaitMode wait, uint32_t timeout_ms,
                PurgeDone done);
  Tracked* tracked(uint64_t seq);
  // Tracks the next entry of the log (e.seq == logged_head_ + 1).
  // `wire` is encodeBatchedPurge(e) (empty: encoded here).
  Tracked* track(LogEntry e, std::string wire, int64_t api_in_us, bool local,
                 Deferred* deferred);  // REQUIRES: mu_
  // The log has a gap up to `head` (trimmed, or the head was raised).
  void restartTracking(uint64_t head, Deferred* deferred);  // REQUIRES: mu_
  void markSlot(Tracked& t, size_t edge, EdgePurgeState state, uint64_t latency_us,
                Deferred* deferred);
  void complete(Tracked& t, Deferred* deferred);
  void fence(size_t edge, Deferred* deferred);
  View viewOf(const Edge& e, int64_t now_us) const;  // REQUIRES: mu_
  // Marks the edge's pending slots applied or fenced as its view says.
  void settle(size_t edge, Deferred* deferred);  // REQUIRES: mu_
  void listEdgesLocked(EdgeList* out);           // REQUIRES: mu_
  // The stream's session, its edge marked as heard from now; null when the
  // stream is gone.  REQUIRES: mu_
  Session* heardLocked(uint64_t session, int64_t now_us);
  // Queues Welcome and the first lease for a stream (and starts its lease).
  void welcome(Session& s, Deferred* deferred);  // REQUIRES: mu_
  // Milliseconds of lease that may be granted now (0: none).
  uint32_t grantableMs(int64_t now_us) const;
  void summaryChanged(Deferred* deferred);  // REQUIRES: mu_
  void answerParked(const std::function<bool(uint64_t seq, int64_t deadline)>& which,
                    PurgeState state, Deferred* deferred);  // REQUIRES: mu_
  void onAck(Edge& edge, size_t index, uint64_t applied, uint64_t apply_us, Deferred* deferred);
  // One structured log line per purge this process logged: who, from
  // where, what.
  static void auditLine(const LogEntry& e);
  PurgeStatus resultOf(const Tracked& t) const;
  PurgeStatus resultFromLog(const LogEntry& e) const;
  EdgeState stateOf(const Edge& e, int64_t now_us) const;
  // Every stream is woken once per round, on the waker thread (wakeLoop),
  // not on the thread that logged the purge (the log's committer, which
  // it would stall). Purges logged while a round runs share the next one,
  // so a busy stream gets them in one batch.
  void wakeAll(Deferred* deferred);  // REQUIRES: mu_
  void requestWakeAll();
  void wakeRound();
  void wakeLoop();
  size_t edgeIndex(const std::string& id, const std::string& address);  // REQUIRES: mu_
  void persistEdge(const Edge& e, Deferred* deferred);                  // REQUIRES: mu_
  static void run(Deferred& deferred);

  PurgeLog* log_;
  CoordinatorOptions options_;
  metrics::Registry* registry_;
  SteadyClock clock_;

  EngineMetrics metrics_;
  TokenBucket rate_;

  mutable std::mutex mu_;
  std::vector<Edge> edges_;                         // GUARDED_BY(mu_)
  std::unordered_map<std::string, size_t> by_id_;   // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, Session> sessions_;  // GUARDED_BY(mu_)
  uint64_t next_session_ = 1;                       // GUARDED_BY(mu_)
  uint64_t logged_head_ = 0;                        // GUARDED_BY(mu_)
  std::deque<Tracked> tracked_;                     // GUARDED_BY(mu_); consecutive seqs
  std::map<uint64_t, std::function<void(const PurgeStatus&)>> watchers_;  // GUARDED_BY(mu_)
  uint64_t next_watcher_ = 1;                                             // GUARDED_BY(mu_)
  // The last batch built, for the next stream at the same position.
  WireMessage shared_batch_;  // GUARDED_BY(mu_)
  uint64_t shared_from_ = 0;  // GUARDED_BY(mu_)
  uint64_t shared_to_ = 0;    // GUARDED_BY(mu_)

  std::atomic<size_t> waiting_calls_{0};  // wait=all calls not answered yet
  std::atomic<bool> refusing_{false};     // stop() began: no new purges or streams

  std::mutex progress_mu_;
  std::map<uint64_t, std::function<void()>> progress_listeners_;  // GUARDED_BY(progress_mu_)
  uint64_t next_progress_listener_ = 1;                           // GUARDED_BY(progress_mu_)
  bool replicated_ = false;
  Replication replication_;
  std::map<std::string, Peer> peers_;               // GUARDED_BY(mu_)
  std::map<uint64_t, std::vector<Parked>> parked_;  // GUARDED_BY(mu_)
  uint64_t summary_gen_ = 0;                        // GUARDED_BY(mu_)
  // The head in the summary last built, and when the summary last changed:
  // a replica whose edges do not move still shows a current head (once a
  // second at most).
  uint64_t summary_head_ = 0;       // GUARDED_BY(mu_)
  int64_t summary_changed_us_ = 0;  // GUARDED_BY(mu_)
  uint64_t progress_gen_ = 0;       // GUARDED_BY(mu_): stamps applied_seq moves

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_pending_ = false;   // GUARDED_BY(wake_mu_): run one more round
  bool wake_stopping_ = false;  // GUARDED_BY(wake_mu_)
  std::thread waker_;

  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool stopping_ = false;  // GUARDED_BY(tick_mu_)
  std::thread ticker_;
};

}  // namespace tern::coordinator

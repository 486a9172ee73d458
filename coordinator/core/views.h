#pragma once
// What the engine answers about purges and edges, and what an edge says
// on its stream, in plain types. The APIs and the transport turn them into
// their own forms and back (coordinator/api/proto_views.h: the tern.v1
// messages of gRPC and of the HTTP API's JSON; the edge link's messages are
// parsed in coordinator/server/grpc_service.cc).

#include <cstdint>
#include <string>
#include <vector>

#include "storage/purge_spec.h"

namespace tern::coordinator {

enum class PurgeState : uint8_t {
  kAccepted,  // durable in the log; edges may still be applying it
  kComplete,  // every registered edge applied it or is fenced
  kTimeout,   // the wait ended with edges pending
};

enum class EdgePurgeState : uint8_t { kPending, kApplied, kFenced };

struct EdgePurgeStatus {
  std::string edge_id;
  EdgePurgeState state = EdgePurgeState::kPending;
  uint64_t apply_latency_us = 0;  // from entering the log to the edge's ack
};

struct PurgeStatus {
  uint64_t seq = 0;
  PurgeState state = PurgeState::kAccepted;
  std::vector<EdgePurgeStatus> edges;  // per registered edge, when known
  int64_t accepted_at_ms = 0;          // wall time it entered the log
  uint64_t complete_latency_us = 0;    // 0 until complete
  std::vector<storage::PurgeSelector> selectors;
  storage::PurgeMode mode = storage::PurgeMode::kHard;
  std::string requested_by;
  std::string requested_from;
};

enum class EdgeState : uint8_t { kConnected, kCatchingUp, kFenced, kRetired };

struct EdgeStatus {
  std::string edge_id;
  std::string address;  // for humans
  EdgeState state = EdgeState::kFenced;
  uint64_t applied_seq = 0;
  uint64_t lag = 0;  // log head minus applied_seq
  int64_t last_seen_ms = 0;
  uint64_t incarnation = 0;
  std::string replica_id;  // the replica holding its stream (empty: none)
};

struct ReplicaStatus {
  std::string replica_id;
  std::string address;
  uint32_t edges_connected = 0;
  uint64_t head_seq = 0;
  bool self = false;  // the replica answering
};

// One etcd member as last probed.
struct EtcdMemberStatus {
  std::string endpoint;
  bool reachable = false;
  bool leader = false;
  std::string version;
  uint64_t raft_term = 0;
  uint64_t raft_index = 0;
  int64_t db_size_bytes = 0;
  std::string error;  // why it did not answer
  int64_t probed_at_ms = 0;
};

struct EdgeList {
  std::vector<EdgeStatus> edges;
  uint64_t head_seq = 0;
  std::vector<ReplicaStatus> replicas;  // empty without etcd
  std::vector<EtcdMemberStatus> etcd_members;
};

enum class WaitMode : uint8_t {
  kNone,  // answered once the purge is durable
  kAll,   // answered once every edge applied it or is fenced (or at the timeout)
};

// A purge call as an API parsed it (coordinator/api/proto_views.h); the
// engine checks it again (coordinator/core/purge_request.h).
struct PurgeCall {
  std::vector<storage::PurgeSelector> selectors;  // normalized
  storage::PurgeMode mode = storage::PurgeMode::kHard;
  WaitMode wait = WaitMode::kNone;
  uint32_t timeout_ms = 0;  // how long a wait=all call is held (0: the default)
  std::string idempotency_key;
};

// An edge opening its stream.
struct EdgeHello {
  std::string edge_id;       // stable identity (e.g. the pod's name)
  uint64_t incarnation = 0;  // random per process start
  uint64_t applied_seq = 0;  // highest purge it applied durably
  std::string address;       // for humans
  uint32_t protocol_version = 0;
  int64_t stream_opened_ms = 0;  // its wall clock, increasing per stream
};

struct EdgeHeartbeat {
  uint64_t id = 0;  // echoed in the lease that answers it
  uint64_t applied_seq = 0;
};

struct EdgeAck {
  uint64_t applied_seq = 0;    // everything up to here is applied
  uint64_t apply_time_us = 0;  // what applying the batch took
};

// What a replica says of the edges it holds (etcd mode): published in etcd
// and, edge ids and applied_seq only, streamed to the other replicas.
struct HeldEdge {
  std::string edge_id;
  std::string address;
  uint64_t applied_seq = 0;
  uint64_t incarnation = 0;
  bool connected = false;  // its stream is open there (else only its lease runs on)
  bool catching_up = false;
  int64_t last_seen_ms = 0;
  int64_t stream_opened_ms = 0;
};

struct ReplicaSummary {
  std::string replica_id;
  std::string address;  // its gRPC listener, for humans
  std::vector<HeldEdge> edges;
  uint64_t head_seq = 0;  // the highest log sequence it has seen
};

}  // namespace tern::coordinator

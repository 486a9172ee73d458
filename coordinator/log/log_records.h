#pragma once
// The records of the purge log in plain types: what the engine, the edge
// link and the replicas work with. Each PurgeLog keeps them encoded
// (coordinator/log/log_codec.h; the format is tern.internal.v1 in
// proto/tern/internal/coordinator_log.proto).
//
// Thread-safety: plain values.

#include <cstdint>
#include <string>
#include <vector>

#include "storage/purge_spec.h"

namespace tern::coordinator {

// One purge as the log keeps it.
struct LogEntry {
  uint64_t seq = 0;
  // Wall time the purge entered the log, milliseconds since the Unix epoch.
  int64_t accepted_at_ms = 0;
  storage::PurgeMode mode = storage::PurgeMode::kHard;
  // Normalized when the purge was accepted, and kept as logged (an edge and
  // a purge's status take them as they are: storage::checkNormalizedSelector).
  std::vector<storage::PurgeSelector> selectors;
  // Logged selectors this release cannot represent (a kind added by a newer
  // release, during a rolling upgrade), each as its tern.v1.Selector bytes:
  // kept in the log and passed on to the edges as they are, after
  // `selectors`.
  std::vector<std::string> unknown_selectors;
  // The client's idempotency key, if any (prefixed by the caller's name).
  std::string idempotency_key;
  // Which commit logged it (etcd log only): a replica whose commit failed
  // ambiguously finds out whether it landed.
  std::string commit_id;
  // The audit trail: who asked and from where (coordinator/api/access.h).
  std::string requested_by;
  std::string requested_from;

  bool operator==(const LogEntry&) const = default;
};

// An edge the coordinator knows, kept so that a restarted coordinator still
// waits for (or fences) the edges that held leases before.
struct EdgeRecord {
  std::string edge_id;
  std::string address;
  uint64_t applied_seq = 0;
  int64_t last_seen_ms = 0;  // last message from the edge, Unix epoch ms

  bool operator==(const EdgeRecord&) const = default;
};

}  // namespace tern::coordinator

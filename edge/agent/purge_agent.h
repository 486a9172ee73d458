#pragma once
// PurgeAgent: the edge's side of the edge link (tern.v1.EdgeLink).
//
// One thread keeps a stream to a coordinator open: it says hello with the
// store's applied_seq, applies every purge batch through the storage
// primitives (applied_seq is persisted atomically with each batch), acks,
// and renews its lease with heartbeats. The lease is timed from the moment a
// heartbeat is SENT, so the edge's idea of expiry is never later than the
// coordinator's. The LeaseGate opens only while the lease is valid and the
// edge has caught up with the log as it was when the stream opened; so an
// edge that restarts, reconnects or stalls is fenced until it has replayed
// what it missed.
//
// It also forwards PURGE requests received by the edge to the coordinator's
// PurgeService.
//
// Thread-safety: thread-safe.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "edge/cache/lease_gate.h"
#include "edge/cache/request_flow.h"
#include "edge/cache/tiered_store.h"

namespace tern::edge::agent {

struct AgentOptions {
  // host:port of each coordinator replica's gRPC listener (or one DNS name
  // with several addresses: gRPC tries them in turn). On a failure the
  // agent moves to the next one and resumes from its applied_seq.
  std::vector<std::string> coordinators;
  std::string token;    // bearer token for the coordinator
  bool tls = false;     // TLS to the coordinator
  std::string ca_file;  // PEM roots for TLS (empty: the system's)
  // This edge's client certificate and key (PEM files) for a coordinator
  // that identifies edges by certificate (mTLS); empty: none.
  std::string cert_file;
  std::string key_file;
  std::string edge_id;
  // Each channel's reconnection backoff (kept short: an edge reconnects
  // within a few hundred milliseconds of a coordinator being reachable).
  uint32_t reconnect_min_ms = 50;
  uint32_t reconnect_max_ms = 250;
  // How long one connection attempt (TCP, TLS, HTTP/2 settings) may take:
  // room for a distant coordinator, several round trips away.
  uint32_t connect_timeout_ms = 2000;
  // How long one coordinator may take to accept a connection before the
  // agent tries the next.
  uint32_t connect_wait_ms = 300;
};

class PurgeAgent {
 public:
  PurgeAgent(AgentOptions options, cache::TieredStore* store, cache::LeaseGate* gate,
             metrics::Registry* registry);
  ~PurgeAgent();
  PurgeAgent(const PurgeAgent&) = delete;
  PurgeAgent& operator=(const PurgeAgent&) = delete;

  // `address`: this edge's HTTP address as shown on status pages.
  Status start(const std::string& address);
  void stop();

  // Ready: connected at least once since start and caught up, and the lease
  // is valid. Fills `why` when not.
  bool ready(std::string* why) const;

  // For FlowConfig::purge_forwarder: forwards a PURGE to the coordinator and
  // answers with an HTTP status and a JSON body (on a gRPC thread).
  void forwardPurge(cache::PurgeForward purge, std::function<void(int, std::string)> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::edge::agent

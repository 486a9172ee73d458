#pragma once
// ReplicaLink (tern.internal.v1): each replica streams its summary straight
// to the other replicas as its edges acknowledge, so that wait=all through
// any replica completes without a second round through etcd (see
// Coordinator::replicaProgress for what a receiver takes from it).
//
// ReplicaLinkImpl serves the streams; PeerLinks keeps one stream open to
// every other replica whose summary (in etcd) names a dialable address,
// reconnecting while that replica is listed. The etcd summaries stay the
// source of truth: without these streams wait=all is only slower.
//
// Thread-safety: thread-safe.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "coordinator/api/access.h"
#include "coordinator/core/coordinator.h"
#include "tern/internal/coordinator_log.grpc.pb.h"

namespace tern::coordinator {

class ReplicaLinkImpl final : public tern::internal::v1::ReplicaLink::CallbackService {
 public:
  // `interval_us`: least time between two writes on one stream. Acks arrive
  // one by one; without a window each became a message to every peer (as many
  // messages as the edge streams carry). 0: write as soon as the last one is out.
  // Callers need the replica scope.
  ReplicaLinkImpl(Coordinator* coordinator, const Access* access, uint32_t interval_us = 2000)
      : coordinator_(coordinator), access_(access), interval_us_(interval_us) {}

  grpc::ServerWriteReactor<tern::internal::v1::ReplicaSummary>* WatchProgress(
      grpc::CallbackServerContext* ctx,
      const tern::internal::v1::ProgressRequest* request) override;

 private:
  Coordinator* coordinator_;
  const Access* access_;
  uint32_t interval_us_;
};

struct PeerLinkOptions {
  std::string replica_id;  // this replica, sent to peers for their logs
  std::string token;       // bearer token with the replica scope ("" : none)
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  uint32_t poll_ms = 200;  // how often the peer list is looked at
};

class PeerLinks {
 public:
  PeerLinks(Coordinator* coordinator, PeerLinkOptions options);
  ~PeerLinks();  // cancels every stream and joins
  PeerLinks(const PeerLinks&) = delete;
  PeerLinks& operator=(const PeerLinks&) = delete;

  // Messages received from peers (metrics, tests).
  uint64_t received() const { return received_.load(); }

 private:
  struct Link;
  void manage();
  void run(Link* link);
  static void stopLink(Link* link);  // cancels its call and joins its thread

  Coordinator* coordinator_;
  PeerLinkOptions options_;
  std::atomic<uint64_t> received_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                               // GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<Link>> links_;  // by address; GUARDED_BY(mu_)
  std::thread manager_;
};

}  // namespace tern::coordinator

#pragma once
// EtcdHealth: what a replica knows of each etcd member, probed every
// `interval_ms` with Maintenance.Status on a thread of its own (a member
// that does not answer costs that thread the client's timeout, nothing
// else). members() is the last probe, for ListEdges, the status page and
// ternctl; metrics: tern_coordinator_etcd_members_reachable and
// tern_coordinator_etcd_leader_known.
//
// Thread-safety: thread-safe.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "coordinator/core/views.h"
#include "coordinator/etcd/etcd_client.h"

namespace tern::coordinator::etcd {

class EtcdHealth {
 public:
  // Probes once before returning, then every `interval_ms`.
  EtcdHealth(EtcdClient* client, metrics::Registry* registry, uint32_t interval_ms = 2000);
  ~EtcdHealth();
  EtcdHealth(const EtcdHealth&) = delete;
  EtcdHealth& operator=(const EtcdHealth&) = delete;

  std::vector<EtcdMemberStatus> members() const;

 private:
  void probe();
  void loop();

  EtcdClient* client_;
  const uint32_t interval_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;               // GUARDED_BY(mu_)
  std::vector<EtcdMemberStatus> last_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace tern::coordinator::etcd

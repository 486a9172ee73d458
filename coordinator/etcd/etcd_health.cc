#include "coordinator/etcd/etcd_health.h"

#include <chrono>

#include "common/clock.h"
#include "common/thread_name.h"

namespace tern::coordinator::etcd {

EtcdHealth::EtcdHealth(EtcdClient* client, metrics::Registry* registry, uint32_t interval_ms)
    : client_(client), interval_ms_(interval_ms) {
  probe();
  registry->callbackGauge("tern_coordinator_etcd_members_reachable",
                          "etcd members that answered the last status probe", [this] {
                            double n = 0;
                            for (const auto& m : members()) n += m.reachable ? 1 : 0;
                            return n;
                          });
  registry->callbackGauge("tern_coordinator_etcd_members", "etcd members configured",
                          [this] { return static_cast<double>(members().size()); });
  registry->callbackGauge("tern_coordinator_etcd_leader_known",
                          "1 if a reachable etcd member said it is the leader", [this] {
                            for (const auto& m : members())
                              if (m.leader) return 1.0;
                            return 0.0;
                          });
  thread_ = std::thread([this] {
    setThreadName("etcd-health");
    loop();
  });
}

EtcdHealth::~EtcdHealth() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<EtcdMemberStatus> EtcdHealth::members() const {
  std::lock_guard lock(mu_);
  return last_;
}

void EtcdHealth::probe() {
  const auto statuses = client_->memberStatus();
  const int64_t at = wallNowMs();
  std::vector<EtcdMemberStatus> out;
  for (size_t i = 0; i < statuses.size() && i < client_->endpoints().size(); ++i) {
    EtcdMemberStatus m;
    m.endpoint = client_->endpoints()[i];
    m.probed_at_ms = at;
    if (statuses[i].ok()) {
      const auto& s = *statuses[i];
      m.reachable = true;
      m.leader = s.leader() != 0 && s.leader() == s.header().member_id();
      m.version = s.version();
      m.raft_term = s.raftterm();
      m.raft_index = s.raftindex();
      m.db_size_bytes = s.dbsize();
    } else {
      m.error = statuses[i].status().message();
    }
    out.push_back(std::move(m));
  }
  std::lock_guard lock(mu_);
  last_ = std::move(out);
}

void EtcdHealth::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    probe();
    lock.lock();
  }
}

}  // namespace tern::coordinator::etcd

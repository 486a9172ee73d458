// The Coordinator's cluster view: what every replica knows of an edge
// (viewOf), settling tracked purges by it, and this replica's summary and
// the other replicas'. (The class is declared in coordinator.h.)
#include <algorithm>
#include <cstdint>

#include "common/log.h"
#include "coordinator/core/coordinator.h"

namespace tern::coordinator {

Coordinator::View Coordinator::viewOf(const Edge& e, int64_t now_us) const {
  View v;
  const bool local_live = !e.fence_seen && e.lease_until_us > now_us;
  const bool local_connected = local_live && e.session != 0;
  // Applied: the highest any replica saw the edge acknowledge (an applied
  // purge stays applied: what it removed is gone, and what the edge fetches
  // afterwards is newer). Live: some replica's lease for it runs on.
  v.live = local_live;
  v.connected = local_connected;
  v.applied = std::max(e.applied_seq, e.direct_applied);
  v.catching_up = local_connected && e.catching_up;
  // The replica with its current stream: the newest one (a stream that
  // died lingers in its replica's summary until that replica notices).
  int64_t newest = local_connected ? e.stream_opened_ms : INT64_MIN;
  for (const auto& r : e.remote) {
    v.live = true;
    v.applied = std::max(v.applied, r.applied_seq);
    if (!r.connected) continue;
    v.connected = true;
    if (r.stream_opened_ms > newest) {
      newest = r.stream_opened_ms;
      v.replica = r.replica;
      v.catching_up = r.catching_up;
    }
  }
  return v;
}

void Coordinator::settle(size_t index, Deferred* deferred) {
  Edge& e = edges_[index];
  const int64_t t = now();
  const View v = viewOf(e, t);
  if (!v.live) {
    if (e.fenced_settled) return;
    e.fenced_settled = true;
    for (auto& tr : tracked_) {
      if (tr.state == PurgeState::kComplete || tr.entry.seq <= e.settled_to) continue;
      markSlot(tr, index, EdgePurgeState::kFenced, 0, deferred);
    }
    return;
  }
  e.fenced_settled = false;
  if (v.applied <= e.settled_to) return;
  if (!tracked_.empty()) {
    const uint64_t front = tracked_.front().entry.seq;
    const uint64_t to = std::min(v.applied, tracked_.back().entry.seq);
    for (uint64_t seq = std::max(front, e.settled_to + 1); seq <= to; ++seq) {
      Tracked& tr = tracked_[seq - front];
      if (tr.state == PurgeState::kComplete) continue;
      const uint64_t lat = static_cast<uint64_t>(std::max<int64_t>(0, t - tr.logged_us));
      auto before = tr.pending;
      markSlot(tr, index, EdgePurgeState::kApplied, lat, deferred);
      if (e.session != 0 && e.metrics.apply && tr.pending != before)
        e.metrics.apply->observe(static_cast<double>(lat) / 1e6);
    }
  }
  // Not past what is tracked: a purge tracked later is settled in track().
  e.settled_to = std::max(e.settled_to, std::min(v.applied, logged_head_));
}

void Coordinator::summaryChanged(Deferred* deferred) {
  ++summary_gen_;
  summary_changed_us_ = now();
  if (!replicated_) return;
  if (replication_.summary_changed) deferred->push_back(replication_.summary_changed);
  deferred->push_back([this] {
    std::vector<std::function<void()>> fns;
    {
      std::lock_guard lock(progress_mu_);
      for (const auto& [id, fn] : progress_listeners_) fns.push_back(fn);
    }
    for (const auto& fn : fns) fn();
  });
}

uint64_t Coordinator::addProgressListener(std::function<void()> fn) {
  std::lock_guard lock(progress_mu_);
  const uint64_t id = next_progress_listener_++;
  progress_listeners_[id] = std::move(fn);
  return id;
}

void Coordinator::removeProgressListener(uint64_t id) {
  std::lock_guard lock(progress_mu_);
  progress_listeners_.erase(id);
}

void Coordinator::replicaProgress(const ReplicaSummary& progress) {
  if (!replicated_ || progress.replica_id == replication_.replica_id) return;
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    for (const auto& h : progress.edges) {
      auto it = by_id_.find(h.edge_id);
      if (it == by_id_.end()) continue;  // registered through etcd only
      Edge& e = edges_[it->second];
      if (h.applied_seq <= e.direct_applied) continue;
      e.direct_applied = h.applied_seq;
      settle(it->second, &deferred);
    }
  }
  run(deferred);
}

ReplicaSummary Coordinator::progressSince(uint64_t since, uint64_t* generation) {
  std::lock_guard lock(mu_);
  ReplicaSummary out;
  out.replica_id = replication_.replica_id;
  for (const auto& e : edges_) {
    if (e.retired || e.progress_gen <= since) continue;
    HeldEdge& h = out.edges.emplace_back();
    h.edge_id = e.id;
    h.applied_seq = e.applied_seq;
  }
  *generation = progress_gen_;
  return out;
}

std::vector<std::pair<std::string, std::string>> Coordinator::peerAddresses() {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, peer] : peers_)
    if (!peer.gone && !peer.summary.address.empty() &&
        peer.summary.replica_id != replication_.replica_id)
      out.emplace_back(peer.summary.replica_id, peer.summary.address);
  return out;
}

void Coordinator::enableReplication(Replication replication) {
  std::lock_guard lock(mu_);
  replicated_ = true;
  replication_ = std::move(replication);
}

void Coordinator::setReplicaAddress(const std::string& address) {
  std::lock_guard lock(mu_);
  replication_.address = address;
}

ReplicaSummary Coordinator::summary(uint64_t* generation) {
  std::lock_guard lock(mu_);
  ReplicaSummary out;
  out.replica_id = replication_.replica_id;
  out.address = replication_.address;
  out.head_seq = logged_head_;
  summary_head_ = logged_head_;
  const int64_t t = now();
  for (const auto& e : edges_) {
    const bool leased = !e.fence_seen && e.lease_until_us > t;
    if (e.retired || (e.session == 0 && !leased)) continue;
    out.edges.push_back({e.id, e.address, e.applied_seq, e.incarnation, e.session != 0,
                         e.catching_up, e.last_seen_ms, e.stream_opened_ms});
  }
  if (generation) *generation = summary_gen_;
  return out;
}

void Coordinator::summaryPublished(uint64_t generation) {
  // Everything the watch announced up to the summary must be tracked (a
  // failed read of the log leaves a gap until retried).
  const uint64_t announced = replication_.announced_head ? replication_.announced_head() : 0;
  learnHead(announced);
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    if (logged_head_ < announced || grantableMs(now()) == 0) {
      summaryChanged(&deferred);  // try again with the next publish
    } else {
      for (auto& [sid, s] : sessions_)
        if (!s.welcomed && s.summary_gen <= generation) welcome(s, &deferred);
    }
  }
  run(deferred);
}

void Coordinator::replicaSummary(const std::string& replica_id, const ReplicaSummary* summary,
                                 int64_t revision) {
  if (!replicated_) return;
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    Peer& peer = peers_[replica_id];
    if (revision <= peer.revision) return;
    peer.revision = revision;
    std::vector<size_t> affected;
    for (const auto& h : peer.summary.edges) {
      auto it = by_id_.find(h.edge_id);
      if (it == by_id_.end()) continue;
      auto& remote = edges_[it->second].remote;
      remote.erase(std::remove_if(remote.begin(), remote.end(),
                                  [&](const Edge::Remote& r) { return r.peer == replica_id; }),
                   remote.end());
      affected.push_back(it->second);
    }
    if (summary != nullptr) {
      peer.summary = *summary;
      peer.gone = false;
      const int64_t t = now();
      for (const auto& h : summary->edges) {
        if (h.edge_id.empty()) continue;
        const size_t i = edgeIndex(h.edge_id, h.address);
        Edge& e = edges_[i];
        e.remote.push_back({replica_id, summary->replica_id, h.applied_seq, h.connected,
                            h.catching_up, h.stream_opened_ms});
        e.last_seen_us = t;
        e.last_seen_ms = std::max(e.last_seen_ms, h.last_seen_ms);
        if (e.session == 0 && h.connected) e.incarnation = h.incarnation;
        affected.push_back(i);
      }
    } else {
      peer.summary = {};
      peer.gone = true;
      TERN_LOG(kInfo, "replica gone: its etcd session ended", {{"replica", replica_id}});
    }
    for (size_t i : affected) settle(i, &deferred);
  }
  run(deferred);
}

}  // namespace tern::coordinator

// The Coordinator's edge link: streams attach, are welcomed and leased,
// acknowledge purges and are fed batches; the ticker fences lapsed leases.
// (The class is declared in coordinator.h.)
#include <algorithm>

#include "common/clock.h"
#include "common/log.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/edge_wire.h"

namespace tern::coordinator {

void Coordinator::wakeAll(Deferred* deferred) {
  deferred->push_back([this] { requestWakeAll(); });
}

void Coordinator::requestWakeAll() {
  {
    std::lock_guard lock(wake_mu_);
    if (wake_pending_) return;
    wake_pending_ = true;
  }
  wake_cv_.notify_one();
}

void Coordinator::wakeRound() {
  std::vector<std::shared_ptr<EdgeStream>> streams;
  {
    std::lock_guard lock(mu_);
    streams.reserve(sessions_.size());
    for (auto& [id, s] : sessions_) streams.push_back(s.stream);
  }
  for (auto& st : streams) st->wake();
}

void Coordinator::wakeLoop() {
  std::unique_lock lock(wake_mu_);
  for (;;) {
    wake_cv_.wait(lock, [&] { return wake_pending_ || wake_stopping_; });
    if (wake_stopping_) return;
    wake_pending_ = false;
    lock.unlock();
    wakeRound();
    lock.lock();
  }
}

Result<uint64_t> Coordinator::attach(const EdgeHello& hello, std::shared_ptr<EdgeStream> stream) {
  if (hello.edge_id.empty() || hello.edge_id.size() > 253)
    return Status::invalidArgument("hello: edge_id must be 1 to 253 bytes");
  if (hello.protocol_version != 1)
    return Status::invalidArgument("hello: unsupported protocol_version " +
                                   std::to_string(hello.protocol_version));
  // An edge ahead of the log raises its head (below); a number no log can
  // reach would only wrap the sequence.
  if (hello.applied_seq > (uint64_t{1} << 62))
    return Status::invalidArgument("hello: applied_seq out of range");
  // Metrics are registered before taking mu_ (the registry calls back into us).
  const EdgeMetrics em = metrics_.forEdge(hello.edge_id);
  Deferred deferred;
  uint64_t sid;
  uint64_t raise_to = 0;
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    if (refusing_) return Status::unavailable("coordinator stopping: try another one");
    if (grantableMs(t) == 0)
      return Status::unavailable("this replica has no etcd session: try another one");
    size_t index = edgeIndex(hello.edge_id, hello.address);
    Edge& e = edges_[index];
    if (e.session != 0) {
      // A newer stream of the same edge replaces the old one.
      auto old = sessions_.find(e.session);
      if (old != sessions_.end()) {
        deferred.push_back(
            [st = old->second.stream] { st->close("superseded by a newer stream"); });
        sessions_.erase(old);
      }
    }
    sid = next_session_++;
    e.session = sid;
    e.incarnation = hello.incarnation;
    e.stream_opened_ms = hello.stream_opened_ms;
    e.metrics = em;
    e.last_seen_us = t;
    e.last_seen_ms = wallNowMs();
    // (Replicas: against the log's head, which this replica may not have
    // tracked up to yet.)
    if (hello.applied_seq > std::max(logged_head_, replicated_ ? log_->headSeq() : 0)) {
      // The log was replaced (lost volume): this edge would ignore purges
      // numbered at or below what it applied. Move the log's head past it;
      // every edge is then told to soft-purge everything (a gap in the log).
      TERN_LOG(kError, "edge is ahead of the purge log (was the log replaced?): raising the head",
               {{"edge", e.id},
                {"edge_applied_seq", std::to_string(hello.applied_seq)},
                {"head_seq", std::to_string(logged_head_)}});
      raise_to = hello.applied_seq + 1;
    }
    // The edge's own applied_seq is the truth (it may have lost its cache).
    const uint64_t applied = hello.applied_seq;
    e.applied_seq = 0;
    Session s;
    s.edge = index;
    s.stream = std::move(stream);
    s.sent_seq = applied;
    s.hello_applied = applied;
    Session& ref = sessions_[sid] = std::move(s);
    if (!replicated_) {
      welcome(ref, &deferred);
    } else {
      // Welcomed once the summary naming it is published (see the header).
      summaryChanged(&deferred);
      ref.summary_gen = summary_gen_;
    }
    // Purges it acknowledged before (e.g. across a restart) count as applied.
    onAck(e, index, applied, 0, &deferred);
    persistEdge(e, &deferred);
  }
  run(deferred);
  if (raise_to > 0) {
    log_->raiseHead(raise_to, [this](Result<LogEntry> r) {
      if (!r.ok()) {
        TERN_LOG(kError, "cannot raise the log head", {{"error", r.status().toString()}});
        return;
      }
      Deferred d;
      {
        std::lock_guard lock(mu_);
        if (!replicated_ && r->seq > logged_head_) restartTracking(r->seq, &d);
      }
      run(d);
      // (Replicas track the raised head as the watch delivers it.)
    });
  }
  return sid;
}

uint32_t Coordinator::grantableMs(int64_t now_us) const {
  if (!replicated_ || !replication_.lease_limit_us) return options_.lease_ms;
  const int64_t left_ms = (replication_.lease_limit_us() - now_us) / 1000;
  if (left_ms < 100) return 0;
  return static_cast<uint32_t>(std::min<int64_t>(options_.lease_ms, left_ms));
}

void Coordinator::welcome(Session& s, Deferred* deferred) {
  Edge& e = edges_[s.edge];
  const int64_t t = now();
  const uint64_t applied = s.hello_applied;
  const uint64_t first = log_->firstSeq();
  // The log no longer reaches back to what the edge missed.
  if (applied + 1 < first && logged_head_ >= first) s.reset_to = logged_head_;
  e.catching_up = applied < logged_head_;
  e.catch_up_to = logged_head_;
  const uint32_t lease_ms = grantableMs(t);
  e.lease_until_us = t + static_cast<int64_t>(lease_ms) * 1000;
  e.fence_seen = false;
  e.fenced_settled = false;
  s.control.push_back(encodeWelcome(logged_head_, first));
  s.control.push_back(encodeLease(0, lease_ms));
  s.welcomed = true;
  if (e.metrics.lag)
    e.metrics.lag->set(static_cast<int64_t>(logged_head_ - std::min(logged_head_, applied)));
  TERN_LOG(kInfo, "edge connected",
           {{"edge", e.id},
            {"address", e.address},
            {"applied_seq", std::to_string(applied)},
            {"head_seq", std::to_string(logged_head_)},
            {"reset", s.reset_to > 0 ? "soft-all" : "no"}});
  deferred->push_back([st = s.stream] { st->wake(); });
}

void Coordinator::onAck(Edge& edge, size_t index, uint64_t applied, uint64_t apply_us,
                        Deferred* deferred) {
  const uint64_t previous = edge.applied_seq;
  if (applied > edge.applied_seq) {
    edge.applied_seq = applied;
    edge.progress_gen = ++progress_gen_;
  }
  if (apply_us) edge.last_apply_us = apply_us;
  const bool was_catching_up = edge.catching_up;
  if (edge.catching_up && edge.applied_seq >= edge.catch_up_to) edge.catching_up = false;
  if (edge.metrics.lag)
    edge.metrics.lag->set(
        static_cast<int64_t>(logged_head_ - std::min(logged_head_, edge.applied_seq)));
  settle(index, deferred);
  if (edge.applied_seq != previous || edge.catching_up != was_catching_up) summaryChanged(deferred);
}

Coordinator::Session* Coordinator::heardLocked(uint64_t session, int64_t now_us) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return nullptr;
  Edge& e = edges_[it->second.edge];
  e.last_seen_us = now_us;
  e.last_seen_ms = wallNowMs();
  return &it->second;
}

void Coordinator::heartbeat(uint64_t session, const EdgeHeartbeat& hb) {
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    Session* heard = heardLocked(session, t);
    if (heard == nullptr) return;
    Session& s = *heard;
    Edge& e = edges_[s.edge];
    if (!s.welcomed) return;            // not leased yet
    if (e.lease_until_us <= t) return;  // lapsed: the ticker closes the stream
    // Replicas: never past this replica's etcd session.
    const uint32_t lease_ms = grantableMs(t);
    if (lease_ms == 0) return;
    e.lease_until_us = t + static_cast<int64_t>(lease_ms) * 1000;
    s.control.push_back(encodeLease(hb.id, lease_ms));
    deferred.push_back([st = s.stream] { st->wake(); });
    if (hb.applied_seq > e.applied_seq) onAck(e, s.edge, hb.applied_seq, 0, &deferred);
  }
  run(deferred);
}

void Coordinator::acked(uint64_t session, const EdgeAck& ack) {
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    Session* heard = heardLocked(session, now());
    if (heard == nullptr) return;
    Session& s = *heard;
    Edge& e = edges_[s.edge];
    // (The registry is persisted on connect and disconnect only: after a
    // restart an edge reports its own applied_seq.)
    onAck(e, s.edge, std::min(ack.applied_seq, s.sent_seq), ack.apply_time_us, &deferred);
  }
  run(deferred);
}

void Coordinator::unexpected(uint64_t session) {
  std::string edge;
  {
    std::lock_guard lock(mu_);
    Session* heard = heardLocked(session, now());
    if (heard == nullptr) return;
    edge = edges_[heard->edge].id;
  }
  TERN_LOG(kWarn, "unexpected message on edge stream", {{"edge", edge}});
}

void Coordinator::detach(uint64_t session) {
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    const size_t index = it->second.edge;
    Edge& e = edges_[index];
    // The lease runs on: the edge may still be serving until it expires.
    sessions_.erase(it);
    if (e.session == session) {
      e.session = 0;
      persistEdge(e, &deferred);
      TERN_LOG(kInfo, "edge disconnected",
               {{"edge", e.id}, {"applied_seq", std::to_string(e.applied_seq)}});
      settle(index, &deferred);
      summaryChanged(&deferred);
    }
  }
  run(deferred);
}

bool Coordinator::nextMessage(uint64_t session, WireMessage* out) {
  std::vector<LogEntry> entries;
  uint64_t read_from = 0;  // entries holds the log from here (0: not read)
  // Purges still tracked are sent from their encoding kept in memory. Older
  // ones (an edge catching up) are read from the log without the engine's
  // lock (past the entries the log keeps in memory, that is a disk read or
  // an etcd round trip): the position is taken under the lock, the log
  // read, and the batch built under the lock again if the stream is still
  // there (else the position is taken anew).
  for (int attempt = 0;; ++attempt) {
    std::unique_lock lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return false;
    Session& s = it->second;
    if (!s.welcomed) return false;
    if (!s.control.empty()) {
      *out = std::move(s.control.front());
      s.control.pop_front();
      return true;
    }
    auto reset = [&](uint64_t seq) {
      s.sent_seq = seq;
      *out = encodeResetSoftAll(seq);
      return true;
    };
    if (s.reset_to > 0) {
      const uint64_t to = s.reset_to;
      s.reset_to = 0;
      return reset(to);
    }
    if (s.sent_seq >= logged_head_) return false;
    const uint64_t from = s.sent_seq + 1;
    const uint64_t catch_up_to = edges_[s.edge].catch_up_to;
    // Most streams ask for the same purges at the same time: build once.
    if (shared_batch_ && shared_from_ == from && shared_to_ == logged_head_ &&
        logged_head_ >= catch_up_to) {
      *out = shared_batch_;
      s.sent_seq = shared_to_;
      return true;
    }
    std::vector<std::string_view> purges;
    std::vector<std::string> encoded;  // of entries read from the log
    if (tracked(from) != nullptr) {
      // (tracked_ holds consecutive seqs up to logged_head_.)
      const uint64_t base = tracked_.front().entry.seq;
      const uint64_t to = std::min<uint64_t>(logged_head_, from + options_.batch_max - 1);
      for (uint64_t seq = from; seq <= to; ++seq) purges.emplace_back(tracked_[seq - base].wire);
      s.sent_seq = to;
    } else {
      if (read_from != from) {
        if (attempt >= 3) return false;  // it keeps moving: the next wake tries again
        lock.unlock();
        entries.clear();
        read_from = from;
        if (Status st = log_->read(from, options_.batch_max, &entries); !st.isOk()) {
          TERN_LOG(kError, "cannot read purge log", {{"error", st.toString()}});
          return false;
        }
        continue;
      }
      if (entries.empty() || entries.front().seq != from) {
        // Trimmed while the edge was behind, or a gap (the head was raised):
        // it must start over from a reset.
        return reset(logged_head_);
      }
      for (const auto& e : entries) {
        if (e.seq > logged_head_) break;
        encoded.push_back(encodeBatchedPurge(e));
        s.sent_seq = e.seq;
      }
      for (const auto& e : encoded) purges.emplace_back(e);
    }
    const bool catching_up = s.sent_seq < catch_up_to;
    *out = encodePurgeBatch(purges, catching_up);
    if (!catching_up && s.sent_seq == logged_head_) {
      shared_batch_ = *out;
      shared_from_ = from;
      shared_to_ = s.sent_seq;
    }
    return true;
  }
}

void Coordinator::fence(size_t index, Deferred* deferred) {
  Edge& e = edges_[index];
  e.fence_seen = true;
  metrics_.fenced.inc();
  TERN_LOG(kWarn, "edge lease expired: fenced",
           {{"edge", e.id}, {"applied_seq", std::to_string(e.applied_seq)}});
  auto it = sessions_.find(e.session);
  // (A stream still waiting for its welcome is the edge coming back.)
  if (e.session != 0 && it != sessions_.end() && it->second.welcomed) {
    deferred->push_back([st = it->second.stream] { st->close("lease expired"); });
    sessions_.erase(it);
    e.session = 0;
  }
  // Fenced unless another replica holds it.
  settle(index, deferred);
  summaryChanged(deferred);
}

void Coordinator::tick() {
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    if (replicated_ && !sessions_.empty() && grantableMs(t) == 0) {
      // No etcd session: no lease can be extended. Let the edges move to
      // another replica (their leases run out on their own).
      TERN_LOG(kWarn, "no etcd session: closing edge streams",
               {{"streams", std::to_string(sessions_.size())}});
      for (auto& [sid, s] : sessions_) {
        deferred.push_back([st = s.stream] { st->close("replica lost its etcd session"); });
        edges_[s.edge].session = 0;
      }
      sessions_.clear();
      summaryChanged(&deferred);
    }
    for (size_t i = 0; i < edges_.size(); ++i) {
      Edge& e = edges_[i];
      if (e.retired) continue;
      // (An edge only other replicas held never had a lease from here.)
      if (!e.fence_seen && e.lease_until_us != 0 && e.lease_until_us <= t) fence(i, &deferred);
      if (e.session == 0 && e.remote.empty() && !viewOf(e, t).live &&
          e.last_seen_us + options_.retire_after_ms * 1000 <= t) {
        e.retired = true;
        if (e.metrics.lag) e.metrics.lag->set(0);  // no longer behind: no lasting alert
        // Replicas: the registry entry is removed by one that held it.
        if (!replicated_ || e.stream_opened_ms != 0)
          deferred.push_back([this, id = e.id] { (void)log_->removeEdge(id); });
        TERN_LOG(kInfo, "edge retired", {{"edge", e.id}});
      }
    }
    answerParked([&](uint64_t, int64_t deadline) { return deadline <= t; }, PurgeState::kTimeout,
                 &deferred);
    // A replica whose edges did not move (or that holds none) still tells
    // the others how far it has read the log, once a second at most.
    if (replicated_ && logged_head_ != summary_head_ && t - summary_changed_us_ >= 1'000'000)
      summaryChanged(&deferred);
    for (auto& tr : tracked_) {
      if (tr.waiters.empty()) continue;
      auto expired = std::partition(tr.waiters.begin(), tr.waiters.end(),
                                    [&](const Waiter& w) { return w.deadline_us > t; });
      if (expired == tr.waiters.end()) continue;
      PurgeStatus r = resultOf(tr);
      r.state = PurgeState::kTimeout;
      for (auto w = expired; w != tr.waiters.end(); ++w)
        deferred.push_back([d = std::move(w->done), r] { d(r); });
      tr.waiters.erase(expired, tr.waiters.end());
    }
  }
  run(deferred);
}

}  // namespace tern::coordinator

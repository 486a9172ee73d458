#include "coordinator/core/coordinator.h"

#include <algorithm>
#include <optional>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace tern::coordinator {

Coordinator::Coordinator(PurgeLog* log, CoordinatorOptions options, metrics::Registry* registry,
                         SteadyClock clock)
    : log_(log),
      options_(options),
      registry_(registry),
      clock_(clock ? std::move(clock) : SteadyClock([] { return steadyNowUs(); })),
      metrics_(*registry),
      rate_(options.rate_per_sec, options.rate_burst, clock_()) {
  registry_->callbackGauge("tern_coordinator_log_head_seq", "Highest sequence in the purge log",
                           [this] { return static_cast<double>(log_->stats().head_seq); });
  registry_->callbackGauge("tern_coordinator_log_entries", "Purges retained in the log",
                           [this] { return static_cast<double>(log_->stats().entries); });
  registry_->callbackGauge("tern_coordinator_log_syncs", "Synced log writes (group commits)",
                           [this] { return static_cast<double>(log_->stats().syncs); });
  registry_->callbackGauge("tern_coordinator_edges_connected", "Edges with a live stream", [this] {
    std::lock_guard lock(mu_);
    double n = 0;
    for (const auto& e : edges_) n += (!e.retired && e.session != 0) ? 1 : 0;
    return n;
  });
}

Coordinator::~Coordinator() { stop(); }

Status Coordinator::start(bool run_ticker) {
  TERN_ASSIGN_OR_RETURN(auto records, log_->loadEdges());
  {
    std::lock_guard lock(mu_);
    logged_head_ = log_->headSeq();
  }
  for (const auto& r : records) {
    const EdgeMetrics em = metrics_.forEdge(r.edge_id);
    std::lock_guard lock(mu_);
    size_t i = edgeIndex(r.edge_id, r.address);
    Edge& e = edges_[i];
    e.applied_seq = r.applied_seq;
    e.last_seen_ms = r.last_seen_ms;
    e.last_seen_us = now();
    // It may still hold a lease granted before this coordinator started
    // (replicas: a lease of an earlier process is covered by that
    // process's summary, which outlives it by its session).
    if (!replicated_) e.lease_until_us = now() + static_cast<int64_t>(options_.lease_ms) * 1000;
    e.metrics = em;
    em.lag->set(static_cast<int64_t>(logged_head_ - std::min(logged_head_, e.applied_seq)));
  }
  waker_ = std::thread([this] {
    setThreadName("fanout-waker");
    wakeLoop();
  });
  if (run_ticker) {
    ticker_ = std::thread([this] {
      setThreadName("engine-ticker");
      std::unique_lock lock(tick_mu_);
      while (!stopping_) {
        tick_cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms));
        if (stopping_) break;
        lock.unlock();
        tick();
        lock.lock();
      }
    });
  }
  return Status::ok();
}

void Coordinator::stop() {
  // From here purges and streams are refused (another replica takes them);
  // what was accepted before is answered below.
  refusing_ = true;
  {
    std::lock_guard lock(tick_mu_);
    stopping_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  {
    std::lock_guard lock(wake_mu_);
    wake_stopping_ = true;
  }
  wake_cv_.notify_all();
  if (waker_.joinable()) waker_.join();
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    for (auto& tr : tracked_) {
      for (auto& w : tr.waiters)
        deferred.push_back([d = std::move(w.done)] {
          d(Status::unavailable("coordinator stopping; the purge is logged and will be applied"));
        });
      tr.waiters.clear();
    }
    for (auto& [seq, calls] : parked_)
      for (auto& c : calls)
        if (c.done)
          deferred.push_back([d = std::move(c.done)] {
            d(Status::unavailable("coordinator stopping; the purge is logged and will be applied"));
          });
    parked_.clear();
    // Edges move to another replica now, not when the server gives up on
    // their streams.
    for (auto& [sid, session] : sessions_)
      deferred.push_back([st = session.stream] { st->close("coordinator stopping"); });
  }
  run(deferred);
}

size_t Coordinator::edgeIndex(const std::string& id, const std::string& address) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    Edge& e = edges_[it->second];
    if (!address.empty()) e.address = address;
    e.retired = false;
    return it->second;
  }
  edges_.push_back(Edge{});
  edges_.back().id = id;
  edges_.back().address = address;
  by_id_[id] = edges_.size() - 1;
  return edges_.size() - 1;
}

void Coordinator::persistEdge(const Edge& e, Deferred* deferred) {
  EdgeRecord r;
  r.edge_id = e.id;
  r.address = e.address;
  r.applied_seq = e.applied_seq;
  r.last_seen_ms = e.last_seen_ms;
  // Written without the lock (etcd may take seconds to answer).
  deferred->push_back([this, r] {
    if (Status s = log_->saveEdge(r); !s.isOk())
      TERN_LOG(kWarn, "could not save edge", {{"edge", r.edge_id}, {"error", s.toString()}});
  });
}

void Coordinator::run(Deferred& deferred) {
  for (auto& fn : deferred) fn();
  deferred.clear();
}

// --- Purge API ----------------------------------------------------------------

int64_t Coordinator::retryAfterMs() { return rate_.retryAfterMs(now()); }

void Coordinator::purge(const PurgeCall& call, const Requester& requester, PurgeDone done) {
  const int64_t api_in = now();
  if (refusing_)
    return done(Status::unavailable("coordinator stopping; send the purge to another replica"));
  auto checked =
      checkPurgeRequest(call, {options_.default_wait_timeout_ms, options_.max_wait_timeout_ms});
  if (!checked.ok()) return done(checked.status());
  checked->entry.requested_by = requester.name;
  checked->entry.requested_from = requester.address;
  // An idempotency key belongs to its caller: another credential using the
  // same key neither answers nor blocks the first one's purge.
  if (!checked->entry.idempotency_key.empty() && !requester.name.empty())
    checked->entry.idempotency_key = requester.name + '\x1f' + checked->entry.idempotency_key;
  if (checked->wait == WaitMode::kAll) {
    // Bounded holds: each waiting call is counted until it is answered.
    if (waiting_calls_.fetch_add(1) >= options_.max_waiting_calls) {
      --waiting_calls_;
      metrics_.rate_limited.inc();
      return done(Status::resourceExhausted(
          "too many purge calls waiting for completion; retry later or use wait=none"));
    }
    done = [this, d = std::move(done)](Result<PurgeStatus> r) {
      --waiting_calls_;
      d(std::move(r));
    };
  }
  if (!rate_.tryTake(api_in)) {
    metrics_.rate_limited.inc();
    return done(Status::resourceExhausted("purge rate limit reached; retry later"));
  }
  const WaitMode wait = checked->wait;
  const uint32_t timeout_ms = checked->timeout_ms;
  log_->append(std::move(checked->entry), [this, api_in, wait, timeout_ms, done = std::move(done)](
                                              Result<LogEntry> logged) mutable {
    onLogged(std::move(logged), api_in, wait, timeout_ms, std::move(done));
  });
}

void Coordinator::onLogged(Result<LogEntry> logged, int64_t api_in_us, WaitMode wait,
                           uint32_t timeout_ms, PurgeDone done) {
  if (!logged.ok()) {
    TERN_LOG(kError, "purge not logged", {{"error", logged.status().toString()}});
    return done(logged.status());
  }
  metrics_.commit_latency.observe(static_cast<double>(now() - api_in_us) / 1e6);
  auditLine(*logged);
  const uint64_t seq = logged->seq;
  bool learn = false;
  std::optional<PurgeStatus> answer_now;
  {
    std::lock_guard lock(mu_);
    if (replicated_ && seq > logged_head_) {
      // Replicas track purges in the log's order with the summaries, as
      // the watch delivers them: the call waits for its entry there.
      const int64_t deadline = now() + static_cast<int64_t>(timeout_ms) * 1000;
      if (wait == WaitMode::kAll) {
        parked_[seq].push_back({api_in_us, deadline, std::move(done), *logged});
        return;
      }
      parked_[seq].push_back({api_in_us, deadline, nullptr, {}});
      answer_now = resultFromLog(*logged);
      answer_now->state = PurgeState::kAccepted;
    }
    learn = seq > logged_head_ + 1;
  }
  if (answer_now) return done(*answer_now);
  // Purges logged by other replicas come first: they are read from the log
  // (outside the lock) and tracked in order.
  if (learn) learnHead(seq - 1);
  // (Encoded before taking the lock. Replicas track what the watch
  // delivers: an entry that gets here was tracked already.)
  std::string wire = replicated_ ? std::string() : encodeBatchedPurge(*logged);
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    Tracked* tr = nullptr;
    if (seq == logged_head_ + 1) {
      tr = track(std::move(*logged), std::move(wire), api_in_us, /*local=*/true, &deferred);
    } else if (seq <= logged_head_) {
      // Tracked already (its head was seen before this answer), or an
      // idempotent retry of a logged purge.
      tr = tracked(seq);
      if (tr == nullptr) {
        PurgeStatus r = resultFromLog(*logged);
        deferred.push_back([done = std::move(done), r] { done(r); });
      }
    } else {
      // The log could not be read up to it: answer from the log entry.
      PurgeStatus r = resultFromLog(*logged);
      deferred.push_back([done = std::move(done), r] { done(r); });
    }
    if (tr != nullptr) {
      tr->api_in_us = std::min(tr->api_in_us, api_in_us);
      tr->local = true;
      if (wait == WaitMode::kAll && tr->state == PurgeState::kAccepted) {
        tr->waiters.push_back({t + static_cast<int64_t>(timeout_ms) * 1000, std::move(done)});
      } else {
        PurgeStatus r = resultOf(*tr);
        deferred.push_back([done = std::move(done), r] { done(r); });
      }
    }
  }
  run(deferred);
}

Coordinator::Tracked* Coordinator::track(LogEntry e, std::string wire, int64_t api_in_us,
                                         bool local, Deferred* deferred) {
  const int64_t t = now();
  logged_head_ = e.seq;
  metrics_.logged(e);
  Tracked tr;
  tr.entry = std::move(e);
  tr.wire = wire.empty() ? encodeBatchedPurge(tr.entry) : std::move(wire);
  tr.api_in_us = api_in_us;
  tr.logged_us = t;
  tr.local = local;
  for (size_t i = 0; i < edges_.size(); ++i) {
    Edge& edge = edges_[i];
    if (edge.retired) continue;
    if (edge.metrics.lag)
      edge.metrics.lag->set(
          static_cast<int64_t>(logged_head_ - std::min(logged_head_, edge.applied_seq)));
    const View v = viewOf(edge, t);
    // (Applied already: only replicas may see an edge ahead of what they
    // track. One process: an edge ahead of the log waits for the raise.)
    const auto state = !v.live                                    ? EdgePurgeState::kFenced
                       : replicated_ && v.applied >= tr.entry.seq ? EdgePurgeState::kApplied
                                                                  : EdgePurgeState::kPending;
    tr.slots.push_back({i, state, 0});
    if (state == EdgePurgeState::kPending) ++tr.pending;
  }
  tracked_.push_back(std::move(tr));
  Tracked& ref = tracked_.back();
  std::vector<Parked> calls;
  if (auto p = parked_.find(ref.entry.seq); p != parked_.end()) {
    calls = std::move(p->second);
    parked_.erase(p);
    for (const auto& c : calls) {
      ref.local = true;
      ref.api_in_us = std::min(ref.api_in_us, c.api_in_us);
    }
  }
  if (ref.pending == 0) complete(ref, deferred);  // no edge to wait for
  for (auto& c : calls) {
    if (!c.done) continue;
    if (ref.state == PurgeState::kAccepted) {
      ref.waiters.push_back({c.deadline_us, std::move(c.done)});
    } else {
      PurgeStatus r = resultOf(ref);
      deferred->push_back([d = std::move(c.done), r] { d(r); });
    }
  }
  // Forget the oldest tracked purges, but never one that a wait=all call
  // still waits on (it is answered when it completes or its own timeout
  // passes; waiting calls are capped by max_waiting_calls).
  while (tracked_.size() > options_.tracked_purges && tracked_.front().waiters.empty())
    tracked_.pop_front();
  wakeAll(deferred);
  return &ref;
}

void Coordinator::restartTracking(uint64_t head, Deferred* deferred) {
  logged_head_ = std::max(logged_head_, head);
  // Tracked purges are consecutive; a gap starts the tracking over.
  for (auto& tr : tracked_) {
    PurgeStatus res = resultOf(tr);
    for (auto& w : tr.waiters) deferred->push_back([dn = std::move(w.done), res] { dn(res); });
  }
  tracked_.clear();
  answerParked([&](uint64_t seq, int64_t) { return seq <= head; }, PurgeState::kAccepted, deferred);
  wakeAll(deferred);
}

void Coordinator::answerParked(const std::function<bool(uint64_t seq, int64_t deadline)>& which,
                               PurgeState state, Deferred* deferred) {
  for (auto it = parked_.begin(); it != parked_.end();) {
    auto& calls = it->second;
    auto keep = std::partition(calls.begin(), calls.end(),
                               [&](const Parked& c) { return !which(it->first, c.deadline_us); });
    for (auto c = keep; c != calls.end(); ++c) {
      if (!c->done) continue;
      // As GetPurge would answer, with the edges still pending.
      PurgeStatus r = resultFromLog(c->entry);
      r.state = state;
      deferred->push_back([d = std::move(c->done), r] { d(r); });
    }
    calls.erase(keep, calls.end());
    it = calls.empty() ? parked_.erase(it) : std::next(it);
  }
}

void Coordinator::learnHead(uint64_t head) {
  constexpr size_t kReadMax = 4096;
  for (;;) {
    uint64_t from;
    {
      std::lock_guard lock(mu_);
      if (head <= logged_head_) return;
      from = logged_head_ + 1;
    }
    std::vector<LogEntry> entries;
    Status st = log_->read(from, std::min<uint64_t>(kReadMax, head - from + 1), &entries);
    if (!st.isOk()) {
      // The next head change (or purge) tries again.
      TERN_LOG(kError, "cannot read purge log", {{"error", st.toString()}});
      return;
    }
    std::vector<std::string> wires;  // (encoded before taking the lock)
    wires.reserve(entries.size());
    for (const auto& e : entries) wires.push_back(encodeBatchedPurge(e));
    Deferred deferred;
    {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < entries.size(); ++i) {
        LogEntry& e = entries[i];
        if (e.seq <= logged_head_) continue;  // tracked meanwhile
        if (e.seq > head) break;
        if (e.seq != logged_head_ + 1) break;
        track(std::move(e), std::move(wires[i]), now(), /*local=*/false, &deferred);
      }
      if (logged_head_ < from) {
        // Nothing at `from`: trimmed before it was read, or a raised head.
        restartTracking(head, &deferred);
      }
    }
    run(deferred);
  }
}

Coordinator::Tracked* Coordinator::tracked(uint64_t seq) {
  if (tracked_.empty() || seq < tracked_.front().entry.seq || seq > tracked_.back().entry.seq)
    return nullptr;
  return &tracked_[seq - tracked_.front().entry.seq];
}

void Coordinator::markSlot(Tracked& t, size_t edge, EdgePurgeState state, uint64_t latency_us,
                           Deferred* deferred) {
  auto it = std::lower_bound(t.slots.begin(), t.slots.end(), edge,
                             [](const Slot& s, size_t e) { return s.edge < e; });
  if (it == t.slots.end() || it->edge != edge || it->state != EdgePurgeState::kPending) return;
  it->state = state;
  it->latency_us = latency_us;
  if (--t.pending == 0) complete(t, deferred);
}

void Coordinator::complete(Tracked& t, Deferred* deferred) {
  if (t.state == PurgeState::kComplete) return;
  t.state = PurgeState::kComplete;
  t.complete_latency_us = static_cast<uint64_t>(std::max<int64_t>(0, now() - t.api_in_us));
  // Each purge counts once, at the replica that accepted it.
  if (t.local) metrics_.purge_latency.observe(static_cast<double>(t.complete_latency_us) / 1e6);
  PurgeStatus r = resultOf(t);
  for (auto& w : t.waiters) deferred->push_back([d = std::move(w.done), r] { d(r); });
  t.waiters.clear();
  for (auto& [id, fn] : watchers_) deferred->push_back([fn = fn, r] { fn(r); });
}

void Coordinator::auditLine(const LogEntry& e) {
  std::string selectors;
  for (size_t i = 0; i < e.selectors.size() && i < 20; ++i) {
    if (i) selectors += ' ';
    const auto& sel = e.selectors[i];
    selectors += storage::selectorKindName(sel.kind);
    if (sel.kind != storage::SelectorKind::kAll) selectors += "=" + sel.value;
  }
  if (e.selectors.size() > 20) selectors += " (" + std::to_string(e.selectors.size()) + " in all)";
  TERN_LOG(kInfo, "audit: purge logged",
           {{"seq", std::to_string(e.seq)},
            {"by", e.requested_by},
            {"from", e.requested_from},
            {"mode", std::string(storage::purgeModeName(e.mode))},
            {"selectors", selectors}});
}

namespace {

// The selectors and mode of a logged purge, as they were logged.
void describe(const LogEntry& e, PurgeStatus* r) {
  r->seq = e.seq;
  r->requested_by = e.requested_by;
  r->requested_from = e.requested_from;
  r->accepted_at_ms = e.accepted_at_ms;
  r->mode = e.mode;
  r->selectors = e.selectors;  // as logged, not checked again
}

}  // namespace

PurgeStatus Coordinator::resultOf(const Tracked& t) const {
  PurgeStatus r;
  describe(t.entry, &r);
  r.state = t.state;
  r.complete_latency_us = t.complete_latency_us;
  r.edges.reserve(t.slots.size());
  for (const auto& s : t.slots) r.edges.push_back({edges_[s.edge].id, s.state, s.latency_us});
  return r;
}

PurgeStatus Coordinator::resultFromLog(const LogEntry& e) const {
  PurgeStatus r;
  describe(e, &r);
  const int64_t t = now();
  bool pending = false;
  for (const auto& edge : edges_) {
    if (edge.retired) continue;
    const View v = viewOf(edge, t);
    EdgePurgeState state = EdgePurgeState::kPending;
    if (v.applied >= e.seq) {
      state = EdgePurgeState::kApplied;
    } else if (!v.live) {
      state = EdgePurgeState::kFenced;
    } else {
      pending = true;
    }
    r.edges.push_back({edge.id, state, 0});
  }
  r.state = pending ? PurgeState::kAccepted : PurgeState::kComplete;
  return r;
}

Result<PurgeStatus> Coordinator::getPurge(uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    if (Tracked* t = tracked(seq)) return resultOf(*t);
    // (Replicas: logged, perhaps through this one, but not on the watch yet:
    // answered from the log.)
    if (seq == 0 || (seq > logged_head_ && !(replicated_ && seq <= log_->headSeq())))
      return Status::notFound("no purge " + std::to_string(seq));
  }
  TERN_ASSIGN_OR_RETURN(auto entry, log_->get(seq));
  if (!entry) return Status::notFound("purge " + std::to_string(seq) + " is no longer in the log");
  std::lock_guard lock(mu_);
  return resultFromLog(*entry);
}

std::vector<PurgeStatus> Coordinator::recentPurges(size_t n) {
  std::vector<PurgeStatus> out;
  uint64_t below;  // purges before this one are not tracked: read from the log
  {
    std::lock_guard lock(mu_);
    for (auto it = tracked_.rbegin(); it != tracked_.rend() && out.size() < n; ++it)
      out.push_back(resultOf(*it));
    below = tracked_.empty() ? logged_head_ + 1 : tracked_.front().entry.seq;
  }
  if (out.size() >= n || below <= 1) return out;
  // (After a restart nothing is tracked yet: the trail is still shown.)
  const uint64_t want = n - out.size();
  const uint64_t from = std::max<uint64_t>({below > want ? below - want : 1, log_->firstSeq(), 1});
  std::vector<LogEntry> entries;
  if (from >= below || !log_->read(from, static_cast<size_t>(below - from), &entries).isOk())
    return out;
  std::lock_guard lock(mu_);
  for (auto it = entries.rbegin(); it != entries.rend() && out.size() < n; ++it)
    if (it->seq < below) out.push_back(resultFromLog(*it));
  return out;
}

EdgeState Coordinator::stateOf(const Edge& e, int64_t now_us) const {
  if (e.retired) return EdgeState::kRetired;
  const View v = viewOf(e, now_us);
  if (!v.live) return EdgeState::kFenced;
  if (v.catching_up) return EdgeState::kCatchingUp;
  return EdgeState::kConnected;
}

EdgeList Coordinator::listEdges() {
  EdgeList out;
  {
    std::lock_guard lock(mu_);
    listEdgesLocked(&out);
  }
  // (Set before start, read-only after.)
  if (replicated_ && replication_.etcd_members) out.etcd_members = replication_.etcd_members();
  return out;
}

void Coordinator::listEdgesLocked(EdgeList* response) {
  EdgeList& out = *response;
  out.head_seq = logged_head_;
  const int64_t t = now();
  for (const auto& e : edges_) {
    if (e.retired) continue;
    EdgeStatus& info = out.edges.emplace_back();
    info.edge_id = e.id;
    info.address = e.address;
    info.state = stateOf(e, t);
    const View v = viewOf(e, t);
    info.applied_seq = v.applied;
    info.lag = logged_head_ - std::min(logged_head_, v.applied);
    info.last_seen_ms = e.last_seen_ms;
    info.incarnation = e.incarnation;
    if (v.connected) info.replica_id = v.replica.empty() ? replication_.replica_id : v.replica;
  }
  if (replicated_) {
    ReplicaStatus& self = out.replicas.emplace_back();
    self.replica_id = replication_.replica_id;
    self.address = replication_.address;
    self.head_seq = logged_head_;
    self.self = true;
    for (const auto& e : edges_) self.edges_connected += (!e.retired && e.session != 0) ? 1 : 0;
    for (const auto& [id, peer] : peers_) {
      if (peer.gone) continue;
      ReplicaStatus& r = out.replicas.emplace_back();
      r.replica_id = peer.summary.replica_id;
      r.address = peer.summary.address;
      r.head_seq = peer.summary.head_seq;
      for (const auto& h : peer.summary.edges) r.edges_connected += h.connected ? 1 : 0;
    }
  }
}

uint64_t Coordinator::watch(uint64_t from_seq, std::function<void(const PurgeStatus&)> fn) {
  std::vector<PurgeStatus> backlog;
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_watcher_++;
    if (from_seq > 0)
      for (const auto& t : tracked_)
        if (t.entry.seq >= from_seq && t.state != PurgeState::kAccepted)
          backlog.push_back(resultOf(t));
    watchers_[id] = fn;
  }
  for (const auto& r : backlog) fn(r);
  return id;
}

void Coordinator::unwatch(uint64_t id) {
  std::lock_guard lock(mu_);
  watchers_.erase(id);
}

}  // namespace tern::coordinator

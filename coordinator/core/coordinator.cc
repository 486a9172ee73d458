#include "coordinator/core/coordinator.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/clock.h"
#include "common/log.h"
#include "proto/purge_convert.h"

namespace tern::coordinator {

namespace v1 = tern::v1;

namespace {

constexpr std::string_view kKindNames[5] = {"url", "prefix", "host", "tag", "all"};
constexpr std::string_view kModeNames[2] = {"hard", "soft"};

size_t kindIndex(const v1::Selector& s) {
  switch (s.kind_case()) {
    case v1::Selector::kUrl:
      return 0;
    case v1::Selector::kPrefix:
      return 1;
    case v1::Selector::kHost:
      return 2;
    case v1::Selector::kTag:
      return 3;
    default:
      return 4;
  }
}

}  // namespace

Coordinator::Coordinator(PurgeLog* log, CoordinatorOptions options, metrics::Registry* registry,
                         SteadyClock clock)
    : log_(log), options_(options), registry_(registry), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return steadyNowUs(); };
  tokens_ = options_.rate_burst;
  tokens_at_us_ = clock_();
  purge_latency_ = &registry_->histogram(
      "tern_coordinator_purge_latency_seconds",
      "From a purge call arriving to the last edge applying it (or being fenced)");
  for (size_t k = 0; k < 5; ++k)
    for (size_t m = 0; m < 2; ++m)
      purges_by_[k][m] = &registry_->counter("tern_coordinator_purge_selectors_total",
                                             "Selectors logged, by kind and mode",
                                             "kind=\"" + std::string(kKindNames[k]) + "\",mode=\"" +
                                                 std::string(kModeNames[m]) + "\"");
  rate_limited_ = &registry_->counter("tern_coordinator_purges_rate_limited_total",
                                      "Purge calls answered with 429 / RESOURCE_EXHAUSTED");
  fenced_total_ =
      &registry_->counter("tern_coordinator_edge_fenced_total", "Times an edge's lease expired");
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
    auto* lag = &registry_->gauge("tern_coordinator_edge_lag",
                                  "Purges logged but not yet applied by the edge",
                                  metrics::label("edge", r.edge_id()));
    auto* hist = &registry_->histogram(
        "tern_coordinator_edge_apply_seconds", "From a purge entering the log to the edge's ack",
        metrics::latencyBuckets(), metrics::label("edge", r.edge_id()));
    std::lock_guard lock(mu_);
    size_t i = edgeIndex(r.edge_id(), r.address());
    Edge& e = edges_[i];
    e.applied_seq = r.applied_seq();
    e.last_seen_ms = r.last_seen_ms();
    e.last_seen_us = now();
    // It may still hold a lease granted before this coordinator started
    // (replicas: a lease of an earlier process is covered by that
    // process's summary, which outlives it by its session).
    if (!replicated_) e.lease_until_us = now() + static_cast<int64_t>(options_.lease_ms) * 1000;
    e.lag_gauge = lag;
    e.apply_hist = hist;
    lag->set(static_cast<int64_t>(logged_head_ - std::min(logged_head_, e.applied_seq)));
  }
  if (run_ticker) {
    ticker_ = std::thread([this] {
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
  {
    std::lock_guard lock(tick_mu_);
    stopping_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
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
  r.set_edge_id(e.id);
  r.set_address(e.address);
  r.set_applied_seq(e.applied_seq);
  r.set_last_seen_ms(e.last_seen_ms);
  // Written without the lock (etcd may take seconds to answer).
  deferred->push_back([this, r] {
    if (Status s = log_->saveEdge(r); !s.isOk())
      TERN_LOG(kWarn, "could not save edge", {{"edge", r.edge_id()}, {"error", s.toString()}});
  });
}

void Coordinator::run(Deferred& deferred) {
  for (auto& fn : deferred) fn();
  deferred.clear();
}

// --- Purge API ----------------------------------------------------------------

int64_t Coordinator::retryAfterMs() {
  std::lock_guard lock(mu_);
  if (options_.rate_per_sec <= 0 || tokens_ >= 1) return 0;
  return static_cast<int64_t>(std::ceil((1 - tokens_) / options_.rate_per_sec * 1000));
}

void Coordinator::purge(const v1::PurgeRequest& request, PurgeDone done) {
  const int64_t api_in = now();
  auto selectors = proto::selectorsFromProto(request.selectors());
  if (!selectors.ok()) return done(selectors.status());
  if (request.timeout_ms() > options_.max_wait_timeout_ms)
    return done(Status::invalidArgument("timeout_ms above the maximum of " +
                                        std::to_string(options_.max_wait_timeout_ms)));
  if (request.idempotency_key().size() > 256)
    return done(Status::invalidArgument("idempotency_key longer than 256 bytes"));
  if (!v1::PurgeMode_IsValid(request.mode()) || !v1::WaitMode_IsValid(request.wait()))
    return done(Status::invalidArgument("unknown mode or wait"));
  if (request.wait() == v1::WAIT_MODE_ALL) {
    // Bounded holds: each waiting call is counted until it is answered.
    if (waiting_calls_.fetch_add(1) >= options_.max_waiting_calls) {
      --waiting_calls_;
      rate_limited_->inc();
      return done(Status::resourceExhausted(
          "too many purge calls waiting for completion; retry later or use wait=none"));
    }
    done = [this, d = std::move(done)](Result<v1::PurgeResult> r) {
      --waiting_calls_;
      d(std::move(r));
    };
  }
  if (options_.rate_per_sec > 0) {
    bool limited = false;
    {
      std::lock_guard lock(mu_);
      const double elapsed = static_cast<double>(api_in - tokens_at_us_) / 1e6;
      tokens_ = std::min(options_.rate_burst, tokens_ + elapsed * options_.rate_per_sec);
      tokens_at_us_ = api_in;
      limited = tokens_ < 1;
      if (!limited) tokens_ -= 1;
    }
    if (limited) {
      rate_limited_->inc();
      return done(Status::resourceExhausted("purge rate limit reached; retry later"));
    }
  }
  LogEntry entry;
  entry.set_mode(proto::toProto(proto::fromProto(request.mode())));
  for (const auto& sel : *selectors) *entry.add_selectors() = proto::toProto(sel);
  entry.set_idempotency_key(request.idempotency_key());
  const uint32_t timeout_ms =
      request.timeout_ms() ? request.timeout_ms() : options_.default_wait_timeout_ms;
  const v1::WaitMode wait = request.wait();
  log_->append(std::move(entry), [this, api_in, wait, timeout_ms,
                                  done = std::move(done)](Result<LogEntry> logged) mutable {
    onLogged(std::move(logged), api_in, wait, timeout_ms, std::move(done));
  });
}

void Coordinator::onLogged(Result<LogEntry> logged, int64_t api_in_us, v1::WaitMode wait,
                           uint32_t timeout_ms, PurgeDone done) {
  if (!logged.ok()) {
    TERN_LOG(kError, "purge not logged", {{"error", logged.status().toString()}});
    return done(logged.status());
  }
  const uint64_t seq = logged->seq();
  bool learn = false;
  std::optional<v1::PurgeResult> answer_now;
  {
    std::lock_guard lock(mu_);
    if (replicated_ && seq > logged_head_) {
      // Replicas track purges in the log's order with the summaries, as
      // the watch delivers them: the call waits for its entry there.
      const int64_t deadline = now() + static_cast<int64_t>(timeout_ms) * 1000;
      if (wait == v1::WAIT_MODE_ALL) {
        parked_[seq].push_back({api_in_us, deadline, std::move(done), *logged});
        return;
      }
      parked_[seq].push_back({api_in_us, deadline, nullptr, {}});
      answer_now = resultFromLog(*logged);
      answer_now->set_state(v1::PURGE_STATE_ACCEPTED);
    }
    learn = seq > logged_head_ + 1;
  }
  if (answer_now) return done(*answer_now);
  // Purges logged by other replicas come first: they are read from the log
  // (outside the lock) and tracked in order.
  if (learn) learnHead(seq - 1);
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    Tracked* tr = nullptr;
    if (seq == logged_head_ + 1) {
      tr = track(std::move(*logged), api_in_us, /*local=*/true, &deferred);
    } else if (seq <= logged_head_) {
      // Tracked already (its head was seen before this answer), or an
      // idempotent retry of a logged purge.
      tr = tracked(seq);
      if (tr == nullptr) {
        v1::PurgeResult r = resultFromLog(*logged);
        deferred.push_back([done = std::move(done), r] { done(r); });
      }
    } else {
      // The log could not be read up to it: answer from the log entry.
      v1::PurgeResult r = resultFromLog(*logged);
      deferred.push_back([done = std::move(done), r] { done(r); });
    }
    if (tr != nullptr) {
      tr->api_in_us = std::min(tr->api_in_us, api_in_us);
      tr->local = true;
      if (wait == v1::WAIT_MODE_ALL && tr->state == v1::PURGE_STATE_ACCEPTED) {
        tr->waiters.push_back({t + static_cast<int64_t>(timeout_ms) * 1000, std::move(done)});
      } else {
        v1::PurgeResult r = resultOf(*tr);
        deferred.push_back([done = std::move(done), r] { done(r); });
      }
    }
  }
  run(deferred);
}

Coordinator::Tracked* Coordinator::track(LogEntry e, int64_t api_in_us, bool local,
                                         Deferred* deferred) {
  const int64_t t = now();
  logged_head_ = e.seq();
  for (const auto& s : e.selectors())
    purges_by_[kindIndex(s)][e.mode() == v1::PURGE_MODE_SOFT]->inc();
  Tracked tr;
  tr.entry = std::move(e);
  tr.api_in_us = api_in_us;
  tr.logged_us = t;
  tr.local = local;
  for (size_t i = 0; i < edges_.size(); ++i) {
    Edge& edge = edges_[i];
    if (edge.retired) continue;
    if (edge.lag_gauge)
      edge.lag_gauge->set(
          static_cast<int64_t>(logged_head_ - std::min(logged_head_, edge.applied_seq)));
    const View v = viewOf(edge, t);
    // (Applied already: only replicas may see an edge ahead of what they
    // track. One process: an edge ahead of the log waits for the raise.)
    const auto state = !v.live                                      ? v1::EDGE_PURGE_STATE_FENCED
                       : replicated_ && v.applied >= tr.entry.seq() ? v1::EDGE_PURGE_STATE_APPLIED
                                                                    : v1::EDGE_PURGE_STATE_PENDING;
    tr.slots.push_back({i, state, 0});
    if (state == v1::EDGE_PURGE_STATE_PENDING) ++tr.pending;
  }
  tracked_.push_back(std::move(tr));
  Tracked& ref = tracked_.back();
  std::vector<Parked> calls;
  if (auto p = parked_.find(ref.entry.seq()); p != parked_.end()) {
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
    if (ref.state == v1::PURGE_STATE_ACCEPTED) {
      ref.waiters.push_back({c.deadline_us, std::move(c.done)});
    } else {
      v1::PurgeResult r = resultOf(ref);
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
    v1::PurgeResult res = resultOf(tr);
    for (auto& w : tr.waiters) deferred->push_back([dn = std::move(w.done), res] { dn(res); });
  }
  tracked_.clear();
  answerParked([&](uint64_t seq, int64_t) { return seq <= head; }, v1::PURGE_STATE_ACCEPTED,
               deferred);
  wakeAll(deferred);
}

void Coordinator::answerParked(const std::function<bool(uint64_t seq, int64_t deadline)>& which,
                               v1::PurgeState state, Deferred* deferred) {
  for (auto it = parked_.begin(); it != parked_.end();) {
    auto& calls = it->second;
    auto keep = std::partition(calls.begin(), calls.end(),
                               [&](const Parked& c) { return !which(it->first, c.deadline_us); });
    for (auto c = keep; c != calls.end(); ++c) {
      if (!c->done) continue;
      // As GetPurge would answer, with the edges still pending.
      v1::PurgeResult r = resultFromLog(c->entry);
      r.set_state(state);
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
    Deferred deferred;
    {
      std::lock_guard lock(mu_);
      for (auto& e : entries) {
        if (e.seq() <= logged_head_) continue;  // tracked meanwhile
        if (e.seq() > head) break;
        if (e.seq() != logged_head_ + 1) break;
        track(std::move(e), now(), /*local=*/false, &deferred);
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
  if (tracked_.empty() || seq < tracked_.front().entry.seq() || seq > tracked_.back().entry.seq())
    return nullptr;
  return &tracked_[seq - tracked_.front().entry.seq()];
}

void Coordinator::markSlot(Tracked& t, size_t edge, v1::EdgePurgeState state, uint64_t latency_us,
                           Deferred* deferred) {
  auto it = std::lower_bound(t.slots.begin(), t.slots.end(), edge,
                             [](const Slot& s, size_t e) { return s.edge < e; });
  if (it == t.slots.end() || it->edge != edge || it->state != v1::EDGE_PURGE_STATE_PENDING) return;
  it->state = state;
  it->latency_us = latency_us;
  if (--t.pending == 0) complete(t, deferred);
}

void Coordinator::complete(Tracked& t, Deferred* deferred) {
  if (t.state == v1::PURGE_STATE_COMPLETE) return;
  t.state = v1::PURGE_STATE_COMPLETE;
  t.complete_latency_us = static_cast<uint64_t>(std::max<int64_t>(0, now() - t.api_in_us));
  // Each purge counts once, at the replica that accepted it.
  if (t.local) purge_latency_->observe(static_cast<double>(t.complete_latency_us) / 1e6);
  v1::PurgeResult r = resultOf(t);
  for (auto& w : t.waiters) deferred->push_back([d = std::move(w.done), r] { d(r); });
  t.waiters.clear();
  for (auto& [id, fn] : watchers_) deferred->push_back([fn = fn, r] { fn(r); });
}

v1::PurgeResult Coordinator::resultOf(const Tracked& t) const {
  v1::PurgeResult r;
  r.set_seq(t.entry.seq());
  r.set_state(t.state);
  r.set_accepted_at_ms(t.entry.accepted_at_ms());
  r.set_complete_latency_us(t.complete_latency_us);
  *r.mutable_selectors() = t.entry.selectors();
  r.set_mode(t.entry.mode());
  for (const auto& s : t.slots) {
    auto* es = r.add_edges();
    es->set_edge_id(edges_[s.edge].id);
    es->set_state(s.state);
    es->set_apply_latency_us(s.latency_us);
  }
  return r;
}

v1::PurgeResult Coordinator::resultFromLog(const LogEntry& e) const {
  v1::PurgeResult r;
  r.set_seq(e.seq());
  r.set_accepted_at_ms(e.accepted_at_ms());
  *r.mutable_selectors() = e.selectors();
  r.set_mode(e.mode());
  const int64_t t = now();
  bool pending = false;
  for (const auto& edge : edges_) {
    if (edge.retired) continue;
    auto* es = r.add_edges();
    es->set_edge_id(edge.id);
    const View v = viewOf(edge, t);
    if (v.applied >= e.seq()) {
      es->set_state(v1::EDGE_PURGE_STATE_APPLIED);
    } else if (!v.live) {
      es->set_state(v1::EDGE_PURGE_STATE_FENCED);
    } else {
      es->set_state(v1::EDGE_PURGE_STATE_PENDING);
      pending = true;
    }
  }
  r.set_state(pending ? v1::PURGE_STATE_ACCEPTED : v1::PURGE_STATE_COMPLETE);
  return r;
}

Result<v1::PurgeResult> Coordinator::getPurge(uint64_t seq) {
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

std::vector<v1::PurgeResult> Coordinator::recentPurges(size_t n) {
  std::lock_guard lock(mu_);
  std::vector<v1::PurgeResult> out;
  for (auto it = tracked_.rbegin(); it != tracked_.rend() && out.size() < n; ++it)
    out.push_back(resultOf(*it));
  return out;
}

v1::EdgeState Coordinator::stateOf(const Edge& e, int64_t now_us) const {
  if (e.retired) return v1::EDGE_STATE_RETIRED;
  const View v = viewOf(e, now_us);
  if (!v.live) return v1::EDGE_STATE_FENCED;
  if (v.catching_up) return v1::EDGE_STATE_CATCHING_UP;
  return v1::EDGE_STATE_CONNECTED;
}

v1::ListEdgesResponse Coordinator::listEdges() {
  std::lock_guard lock(mu_);
  v1::ListEdgesResponse out;
  out.set_head_seq(logged_head_);
  const int64_t t = now();
  for (const auto& e : edges_) {
    if (e.retired) continue;
    auto* info = out.add_edges();
    info->set_edge_id(e.id);
    info->set_address(e.address);
    info->set_state(stateOf(e, t));
    const View v = viewOf(e, t);
    info->set_applied_seq(v.applied);
    info->set_lag(logged_head_ - std::min(logged_head_, v.applied));
    info->set_last_seen_ms(e.last_seen_ms);
    info->set_incarnation(e.incarnation);
    if (v.connected) info->set_replica_id(v.replica.empty() ? replication_.replica_id : v.replica);
  }
  if (replicated_) {
    auto* self = out.add_replicas();
    self->set_replica_id(replication_.replica_id);
    self->set_address(replication_.address);
    self->set_head_seq(logged_head_);
    self->set_self(true);
    uint32_t n = 0;
    for (const auto& e : edges_) n += (!e.retired && e.session != 0) ? 1 : 0;
    self->set_edges_connected(n);
    for (const auto& [id, peer] : peers_) {
      if (peer.gone) continue;
      auto* r = out.add_replicas();
      r->set_replica_id(peer.summary.replica_id());
      r->set_address(peer.summary.address());
      r->set_head_seq(peer.summary.head_seq());
      uint32_t c = 0;
      for (const auto& h : peer.summary.edges()) c += h.connected() ? 1 : 0;
      r->set_edges_connected(c);
    }
  }
  return out;
}

uint64_t Coordinator::watch(uint64_t from_seq, std::function<void(const v1::PurgeResult&)> fn) {
  std::vector<v1::PurgeResult> backlog;
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_watcher_++;
    if (from_seq > 0)
      for (const auto& t : tracked_)
        if (t.entry.seq() >= from_seq && t.state != v1::PURGE_STATE_ACCEPTED)
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

// --- Edge link ------------------------------------------------------------------

void Coordinator::wakeAll(Deferred* deferred) {
  for (auto& [id, s] : sessions_) deferred->push_back([st = s.stream] { st->wake(); });
}

Result<uint64_t> Coordinator::attach(const v1::Hello& hello, std::shared_ptr<EdgeStream> stream) {
  if (hello.edge_id().empty() || hello.edge_id().size() > 253)
    return Status::invalidArgument("hello: edge_id must be 1 to 253 bytes");
  if (hello.protocol_version() != 1)
    return Status::invalidArgument("hello: unsupported protocol_version " +
                                   std::to_string(hello.protocol_version()));
  // Metrics are registered before taking mu_ (the registry calls back into us).
  auto* lag = &registry_->gauge("tern_coordinator_edge_lag",
                                "Purges logged but not yet applied by the edge",
                                metrics::label("edge", hello.edge_id()));
  auto* hist = &registry_->histogram(
      "tern_coordinator_edge_apply_seconds", "From a purge entering the log to the edge's ack",
      metrics::latencyBuckets(), metrics::label("edge", hello.edge_id()));
  Deferred deferred;
  uint64_t sid;
  uint64_t raise_to = 0;
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    if (grantableMs(t) == 0)
      return Status::unavailable("this replica has no etcd session: try another one");
    size_t index = edgeIndex(hello.edge_id(), hello.address());
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
    e.incarnation = hello.incarnation();
    e.stream_opened_ms = hello.stream_opened_ms();
    e.lag_gauge = lag;
    e.apply_hist = hist;
    e.last_seen_us = t;
    e.last_seen_ms = wallNowMs();
    // (Replicas: against the log's head, which this replica may not have
    // tracked up to yet.)
    if (hello.applied_seq() > std::max(logged_head_, replicated_ ? log_->headSeq() : 0)) {
      // The log was replaced (lost volume): this edge would ignore purges
      // numbered at or below what it applied. Move the log's head past it;
      // every edge is then told to soft-purge everything (a gap in the log).
      TERN_LOG(kError, "edge is ahead of the purge log (was the log replaced?): raising the head",
               {{"edge", e.id},
                {"edge_applied_seq", std::to_string(hello.applied_seq())},
                {"head_seq", std::to_string(logged_head_)}});
      raise_to = hello.applied_seq() + 1;
    }
    // The edge's own applied_seq is the truth (it may have lost its cache).
    const uint64_t applied = hello.applied_seq();
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
        if (!replicated_ && r->seq() > logged_head_) restartTracking(r->seq(), &d);
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
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_head_seq(logged_head_);
  welcome.mutable_welcome()->set_first_retained_seq(first);
  welcome.mutable_welcome()->set_protocol_version(1);
  s.control.push_back(std::move(welcome));
  v1::CoordinatorMessage lease;
  lease.mutable_lease()->set_heartbeat_id(0);
  lease.mutable_lease()->set_lease_ms(lease_ms);
  s.control.push_back(std::move(lease));
  s.welcomed = true;
  if (e.lag_gauge)
    e.lag_gauge->set(static_cast<int64_t>(logged_head_ - std::min(logged_head_, applied)));
  TERN_LOG(kInfo, "edge connected",
           {{"edge", e.id},
            {"address", e.address},
            {"applied_seq", std::to_string(applied)},
            {"head_seq", std::to_string(logged_head_)},
            {"reset", s.reset_to > 0 ? "soft-all" : "no"}});
  deferred->push_back([st = s.stream] { st->wake(); });
}

Coordinator::View Coordinator::viewOf(const Edge& e, int64_t now_us) const {
  View v;
  const bool local_live = !e.fence_seen && e.lease_until_us > now_us;
  const bool local_connected = local_live && e.session != 0;
  // Applied: the highest any replica saw the edge acknowledge (an applied
  // purge stays applied: what it removed is gone, and what the edge fetches
  // afterwards is newer). Live: some replica's lease for it runs on.
  v.live = local_live;
  v.connected = local_connected;
  v.applied = e.applied_seq;
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
      if (tr.state == v1::PURGE_STATE_COMPLETE || tr.entry.seq() <= e.settled_to) continue;
      markSlot(tr, index, v1::EDGE_PURGE_STATE_FENCED, 0, deferred);
    }
    return;
  }
  e.fenced_settled = false;
  if (v.applied <= e.settled_to) return;
  if (!tracked_.empty()) {
    const uint64_t front = tracked_.front().entry.seq();
    const uint64_t to = std::min(v.applied, tracked_.back().entry.seq());
    for (uint64_t seq = std::max(front, e.settled_to + 1); seq <= to; ++seq) {
      Tracked& tr = tracked_[seq - front];
      if (tr.state == v1::PURGE_STATE_COMPLETE) continue;
      const uint64_t lat = static_cast<uint64_t>(std::max<int64_t>(0, t - tr.logged_us));
      auto before = tr.pending;
      markSlot(tr, index, v1::EDGE_PURGE_STATE_APPLIED, lat, deferred);
      if (e.session != 0 && e.apply_hist && tr.pending != before)
        e.apply_hist->observe(static_cast<double>(lat) / 1e6);
    }
  }
  // Not past what is tracked: a purge tracked later is settled in track().
  e.settled_to = std::max(e.settled_to, std::min(v.applied, logged_head_));
}

void Coordinator::summaryChanged(Deferred* deferred) {
  ++summary_gen_;
  if (replicated_ && replication_.summary_changed)
    deferred->push_back(replication_.summary_changed);
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

tern::internal::v1::ReplicaSummary Coordinator::summary(uint64_t* generation) {
  std::lock_guard lock(mu_);
  tern::internal::v1::ReplicaSummary out;
  out.set_replica_id(replication_.replica_id);
  out.set_address(replication_.address);
  out.set_head_seq(logged_head_);
  const int64_t t = now();
  for (const auto& e : edges_) {
    const bool leased = !e.fence_seen && e.lease_until_us > t;
    if (e.retired || (e.session == 0 && !leased)) continue;
    auto* h = out.add_edges();
    h->set_edge_id(e.id);
    h->set_address(e.address);
    h->set_applied_seq(e.applied_seq);
    h->set_incarnation(e.incarnation);
    h->set_connected(e.session != 0);
    h->set_catching_up(e.catching_up);
    h->set_last_seen_ms(e.last_seen_ms);
    h->set_stream_opened_ms(e.stream_opened_ms);
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

void Coordinator::replicaSummary(const std::string& replica_id,
                                 const tern::internal::v1::ReplicaSummary* summary,
                                 int64_t revision) {
  if (!replicated_) return;
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    Peer& peer = peers_[replica_id];
    if (revision <= peer.revision) return;
    peer.revision = revision;
    std::vector<size_t> affected;
    for (const auto& h : peer.summary.edges()) {
      auto it = by_id_.find(h.edge_id());
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
      for (const auto& h : summary->edges()) {
        if (h.edge_id().empty()) continue;
        const size_t i = edgeIndex(h.edge_id(), h.address());
        Edge& e = edges_[i];
        e.remote.push_back({replica_id, summary->replica_id(), h.applied_seq(), h.connected(),
                            h.catching_up(), h.stream_opened_ms()});
        e.last_seen_us = t;
        e.last_seen_ms = std::max(e.last_seen_ms, h.last_seen_ms());
        if (e.session == 0 && h.connected()) e.incarnation = h.incarnation();
        affected.push_back(i);
      }
    } else {
      peer.summary.Clear();
      peer.gone = true;
      TERN_LOG(kInfo, "replica gone: its etcd session ended", {{"replica", replica_id}});
    }
    for (size_t i : affected) settle(i, &deferred);
  }
  run(deferred);
}

void Coordinator::onAck(Edge& edge, size_t index, uint64_t applied, uint64_t apply_us,
                        Deferred* deferred) {
  const uint64_t previous = edge.applied_seq;
  if (applied > edge.applied_seq) edge.applied_seq = applied;
  if (apply_us) edge.last_apply_us = apply_us;
  const bool was_catching_up = edge.catching_up;
  if (edge.catching_up && edge.applied_seq >= edge.catch_up_to) edge.catching_up = false;
  if (edge.lag_gauge)
    edge.lag_gauge->set(
        static_cast<int64_t>(logged_head_ - std::min(logged_head_, edge.applied_seq)));
  settle(index, deferred);
  if (edge.applied_seq != previous || edge.catching_up != was_catching_up) summaryChanged(deferred);
}

void Coordinator::onMessage(uint64_t session, const v1::EdgeMessage& m) {
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    Session& s = it->second;
    Edge& e = edges_[s.edge];
    const int64_t t = now();
    e.last_seen_us = t;
    e.last_seen_ms = wallNowMs();
    switch (m.msg_case()) {
      case v1::EdgeMessage::kHeartbeat: {
        if (!s.welcomed) break;            // not leased yet
        if (e.lease_until_us <= t) break;  // lapsed: the ticker closes the stream
        // Replicas: never past this replica's etcd session.
        const uint32_t lease_ms = grantableMs(t);
        if (lease_ms == 0) break;
        e.lease_until_us = t + static_cast<int64_t>(lease_ms) * 1000;
        v1::CoordinatorMessage grant;
        grant.mutable_lease()->set_heartbeat_id(m.heartbeat().id());
        grant.mutable_lease()->set_lease_ms(lease_ms);
        s.control.push_back(std::move(grant));
        deferred.push_back([st = s.stream] { st->wake(); });
        if (m.heartbeat().applied_seq() > e.applied_seq)
          onAck(e, s.edge, m.heartbeat().applied_seq(), 0, &deferred);
        break;
      }
      case v1::EdgeMessage::kAck: {
        // (The registry is persisted on connect and disconnect only: after a
        // restart an edge reports its own applied_seq.)
        onAck(e, s.edge, std::min(m.ack().applied_seq(), s.sent_seq), m.ack().apply_time_us(),
              &deferred);
        break;
      }
      default:
        TERN_LOG(kWarn, "unexpected message on edge stream", {{"edge", e.id}});
        break;
    }
  }
  run(deferred);
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

bool Coordinator::nextMessage(uint64_t session, v1::CoordinatorMessage* out) {
  std::shared_ptr<const v1::CoordinatorMessage> m;
  if (!nextMessage(session, &m)) return false;
  if (out) *out = *m;
  return true;
}

bool Coordinator::nextMessage(uint64_t session,
                              std::shared_ptr<const v1::CoordinatorMessage>* out) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return false;
  Session& s = it->second;
  if (!s.welcomed) return false;
  if (!s.control.empty()) {
    *out = std::make_shared<const v1::CoordinatorMessage>(std::move(s.control.front()));
    s.control.pop_front();
    return true;
  }
  auto reset = [&](uint64_t seq) {
    auto m = std::make_shared<v1::CoordinatorMessage>();
    m->mutable_reset_soft_all()->set_seq(seq);
    s.sent_seq = seq;
    *out = std::move(m);
    return true;
  };
  if (s.reset_to > 0) {
    const uint64_t to = s.reset_to;
    s.reset_to = 0;
    return reset(to);
  }
  if (s.sent_seq >= logged_head_) return false;
  // Most streams ask for the same purges at the same time: build once.
  if (shared_batch_ && shared_from_ == s.sent_seq + 1 && shared_to_ == logged_head_ &&
      logged_head_ >= edges_[s.edge].catch_up_to) {
    *out = shared_batch_;
    s.sent_seq = shared_to_;
    return true;
  }
  std::vector<LogEntry> entries;
  Status st = log_->read(s.sent_seq + 1, options_.batch_max, &entries);
  if (!st.isOk()) {
    TERN_LOG(kError, "cannot read purge log", {{"error", st.toString()}});
    return false;
  }
  if (entries.empty() || entries.front().seq() != s.sent_seq + 1) {
    // Trimmed while the edge was behind, or a gap (the head was raised): it
    // must start over from a reset.
    return reset(logged_head_);
  }
  auto m = std::make_shared<v1::CoordinatorMessage>();
  auto* batch = m->mutable_purges();
  const uint64_t from = s.sent_seq + 1;
  for (auto& e : entries) {
    if (e.seq() > logged_head_) break;
    auto* p = batch->add_purges();
    p->set_seq(e.seq());
    p->set_mode(e.mode());
    *p->mutable_selectors() = std::move(*e.mutable_selectors());
    s.sent_seq = e.seq();
  }
  batch->set_catching_up(s.sent_seq < edges_[s.edge].catch_up_to);
  if (!batch->catching_up() && s.sent_seq == logged_head_) {
    shared_batch_ = m;
    shared_from_ = from;
    shared_to_ = s.sent_seq;
  }
  *out = std::move(m);
  return true;
}

void Coordinator::fence(size_t index, Deferred* deferred) {
  Edge& e = edges_[index];
  e.fence_seen = true;
  fenced_total_->inc();
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
        // Replicas: the registry entry is removed by one that held it.
        if (!replicated_ || e.stream_opened_ms != 0)
          deferred.push_back([this, id = e.id] { (void)log_->removeEdge(id); });
        TERN_LOG(kInfo, "edge retired", {{"edge", e.id}});
      }
    }
    answerParked([&](uint64_t, int64_t deadline) { return deadline <= t; }, v1::PURGE_STATE_TIMEOUT,
                 &deferred);
    for (auto& tr : tracked_) {
      if (tr.waiters.empty()) continue;
      auto expired = std::partition(tr.waiters.begin(), tr.waiters.end(),
                                    [&](const Waiter& w) { return w.deadline_us > t; });
      if (expired == tr.waiters.end()) continue;
      v1::PurgeResult r = resultOf(tr);
      r.set_state(v1::PURGE_STATE_TIMEOUT);
      for (auto w = expired; w != tr.waiters.end(); ++w)
        deferred.push_back([d = std::move(w->done), r] { d(r); });
      tr.waiters.erase(expired, tr.waiters.end());
    }
  }
  run(deferred);
}

}  // namespace tern::coordinator

#include "coordinator/etcd/etcd_purge_log.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <unordered_map>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "coordinator/log/log_codec.h"

namespace tern::coordinator::etcd {

namespace {

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t parseU64(const std::string& s) { return s.empty() ? 0 : std::stoull(s); }

// The seq of a key "…log/<16 hex>", 0 if malformed.
uint64_t seqOfKey(const std::string& key) {
  if (key.size() < 16) return 0;
  return std::strtoull(key.substr(key.size() - 16).c_str(), nullptr, 16);
}

pb::RequestOp putOp(const std::string& key, const std::string& value) {
  pb::RequestOp op;
  op.mutable_request_put()->set_key(key);
  op.mutable_request_put()->set_value(value);
  return op;
}

pb::RequestOp rangeOp(const std::string& key) {
  pb::RequestOp op;
  op.mutable_request_range()->set_key(key);
  return op;
}

}  // namespace

EtcdPurgeLog::EtcdPurgeLog(EtcdClient* client, EtcdLogOptions options)
    : client_(client),
      options_(std::move(options)),
      head_key_(options_.prefix + "head"),
      log_prefix_(options_.prefix + "log/"),
      idem_prefix_(options_.prefix + "idem/"),
      edge_prefix_(options_.prefix + "edges/"),
      replica_prefix_(options_.prefix + "replicas/") {
  if (options_.replica_id.empty()) {
    std::random_device rd;
    options_.replica_id = hex16((static_cast<uint64_t>(rd()) << 32) ^ rd());
  }
}

std::string EtcdPurgeLog::logKey(uint64_t seq) const { return log_prefix_ + hex16(seq); }

Result<std::unique_ptr<EtcdPurgeLog>> EtcdPurgeLog::open(EtcdClient* client,
                                                         EtcdLogOptions options) {
  if (options.log.retain_count == 0)
    return Status::invalidArgument("log retention count must be > 0");
  std::unique_ptr<EtcdPurgeLog> log(new EtcdPurgeLog(client, std::move(options)));
  TERN_RETURN_IF_ERROR(log->load());
  log->committer_ = std::thread([p = log.get()] {
    setThreadName("etcd-commit");
    p->commitLoop();
  });
  log->maintenance_ = std::thread([p = log.get()] {
    setThreadName("etcd-log-maint");
    p->maintenanceLoop();
  });
  TERN_LOG(kInfo, "purge log open in etcd",
           {{"prefix", log->options_.prefix},
            {"head_seq", std::to_string(log->headSeq())},
            {"first_seq", std::to_string(log->firstSeq())}});
  return log;
}

EtcdPurgeLog::~EtcdPurgeLog() {
  {
    std::lock_guard lock(maintenance_mu_);
    maintenance_stop_ = true;
  }
  maintenance_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  queue_.close();
  if (committer_.joinable()) committer_.join();
  watcher_.reset();
}

Result<uint64_t> EtcdPurgeLog::readHead(int64_t* mod_revision) {
  pb::RangeRequest req;
  req.set_key(head_key_);
  TERN_ASSIGN_OR_RETURN(auto r, client_->range(req));
  if (mod_revision) *mod_revision = r.kvs_size() ? r.kvs(0).mod_revision() : 0;
  return r.kvs_size() ? parseU64(r.kvs(0).value()) : 0;
}

// Reads head, first and count, then watches from the revision read.
Status EtcdPurgeLog::load() {
  pb::TxnRequest txn;  // one consistent snapshot of all three
  *txn.add_success() = rangeOp(head_key_);
  pb::RequestOp first;
  first.mutable_request_range()->set_key(log_prefix_);
  first.mutable_request_range()->set_range_end(prefixEnd(log_prefix_));
  first.mutable_request_range()->set_limit(1);
  *txn.add_success() = first;
  pb::RequestOp count;
  count.mutable_request_range()->set_key(log_prefix_);
  count.mutable_request_range()->set_range_end(prefixEnd(log_prefix_));
  count.mutable_request_range()->set_count_only(true);
  *txn.add_success() = count;
  TERN_ASSIGN_OR_RETURN(auto r, client_->txn(txn));
  const auto& head = r.responses(0).response_range();
  const auto& firsts = r.responses(1).response_range();
  {
    std::lock_guard lock(mu_);
    head_ = head.kvs_size() ? parseU64(head.kvs(0).value()) : 0;
    head_rev_ = head.kvs_size() ? head.kvs(0).mod_revision() : 0;
    first_ = firsts.kvs_size() ? seqOfKey(firsts.kvs(0).key()) : head_ + 1;
    entries_ = static_cast<uint64_t>(r.responses(2).response_range().count());
    recent_.clear();
  }
  startWatch(r.header().revision() + 1);
  std::function<void(uint64_t)> notify;
  uint64_t head_now;
  {
    std::lock_guard lock(mu_);
    head_now = head_;
    if (head_ > delivered_head_) {
      delivered_head_ = head_;
      notify = on_head_;
    }
  }
  // After a compacted watch: what changed meanwhile, the replicas' edges
  // before the purges.
  Status replicas = deliverReplicas();
  if (notify) notify(head_now);
  return replicas;
}

Status EtcdPurgeLog::deliverReplicas() {
  ReplicaEvent on_replica;
  {
    std::lock_guard lock(mu_);
    on_replica = on_replica_;
  }
  if (!on_replica) return Status::ok();
  pb::RangeRequest req;
  req.set_key(replica_prefix_);
  req.set_range_end(prefixEnd(replica_prefix_));
  TERN_ASSIGN_OR_RETURN(auto r, client_->range(req));
  std::set<std::string> present;
  for (const auto& kv : r.kvs()) {
    const std::string id = kv.key().substr(replica_prefix_.size());
    present.insert(id);
    on_replica(id, &kv.value(), kv.mod_revision());
  }
  std::set<std::string> gone;
  {
    std::lock_guard lock(mu_);
    for (const auto& id : replicas_seen_)
      if (!present.count(id)) gone.insert(id);
    replicas_seen_.insert(present.begin(), present.end());
  }
  // Deleted while the watch could not tell (compacted).
  for (const auto& id : gone) on_replica(id, nullptr, r.header().revision());
  return Status::ok();
}

void EtcdPurgeLog::startWatch(int64_t from_revision) {
  watcher_.reset();
  // head, idem/, log/ and replicas/ are one key range ("head" < "idem/" <
  // "log/" < "replicas/"): one stream, in etcd's order.
  watcher_ = client_->watch(
      head_key_, prefixEnd(replica_prefix_), from_revision,
      [this](const pb::WatchResponse& r) { onWatch(r); },
      [this](int64_t) {
        reload_ = true;
        queue_.wake();
      });
}

void EtcdPurgeLog::onWatch(const pb::WatchResponse& r) {
  std::vector<LogEntry> added;
  uint64_t head = 0;
  int64_t head_rev = 0;
  uint64_t trimmed_to = 0;
  ReplicaEvent on_replica;
  {
    std::lock_guard lock(mu_);
    on_replica = on_replica_;
  }
  for (const auto& ev : r.events()) {
    const std::string& key = ev.kv().key();
    if (key == head_key_) {
      if (ev.type() == pb::Event::PUT) {
        head = std::max(head, parseU64(ev.kv().value()));
        head_rev = std::max(head_rev, ev.kv().mod_revision());
      }
    } else if (key.rfind(log_prefix_, 0) == 0) {
      if (ev.type() == pb::Event::PUT) {
        if (auto e = decodeLogEntry(ev.kv().value()); e.ok()) added.push_back(std::move(*e));
      } else {
        trimmed_to = std::max(trimmed_to, seqOfKey(key) + 1);
      }
    } else if (key.rfind(replica_prefix_, 0) == 0) {
      // The purges before it are learned first.
      applyWatched(std::move(added), head, head_rev, trimmed_to);
      added.clear();
      head = trimmed_to = 0;
      head_rev = 0;
      const std::string id = key.substr(replica_prefix_.size());
      {
        std::lock_guard lock(mu_);
        replicas_seen_.insert(id);
      }
      if (on_replica)
        on_replica(id, ev.type() == pb::Event::PUT ? &ev.kv().value() : nullptr,
                   ev.kv().mod_revision());
    }
  }
  applyWatched(std::move(added), head, head_rev, trimmed_to);
  if (r.events_size() > 0)
    watched_rev_ = std::max(watched_rev_.load(), r.events(r.events_size() - 1).kv().mod_revision());
}

void EtcdPurgeLog::applyWatched(std::vector<LogEntry> added, uint64_t head, int64_t head_rev,
                                uint64_t trimmed_to) {
  if (added.empty() && head == 0 && trimmed_to == 0) return;
  std::function<void(uint64_t)> notify;
  uint64_t now_head;
  {
    std::lock_guard lock(mu_);
    if (trimmed_to > first_) first_ = trimmed_to;
    while (!recent_.empty() && recent_.front().seq < first_) recent_.pop_front();
    for (auto& e : added) {
      head = std::max(head, e.seq);
      if (e.seq <= (recent_.empty() ? 0 : recent_.back().seq)) continue;  // known
      if (!recent_.empty() && recent_.back().seq + 1 != e.seq) recent_.clear();
      recent_.push_back(std::move(e));
    }
    while (recent_.size() > options_.log.memory_entries) recent_.pop_front();
    if (head_rev > head_rev_ && head >= head_) {
      // Another replica's commit: the next compare expects its revision.
      head_ = head;
      head_rev_ = head_rev;
    }
    head_ = std::max(head_, head);
    // The head as of these events (a commit of this replica may be ahead:
    // it is announced when the watch gets there, in order).
    now_head = std::min(head_, std::max(head, delivered_head_));
    if (now_head > delivered_head_) {
      delivered_head_ = now_head;
      notify = on_head_;
    }
  }
  if (notify) notify(now_head);
}

Status EtcdPurgeLog::setOnReplica(ReplicaEvent fn) {
  {
    std::lock_guard lock(mu_);
    on_replica_ = std::move(fn);
  }
  return deliverReplicas();
}

int64_t EtcdPurgeLog::watchedRevision() const { return watched_rev_.load(); }

uint64_t EtcdPurgeLog::announcedHead() const {
  std::lock_guard lock(mu_);
  return delivered_head_;
}

void EtcdPurgeLog::setOnHead(std::function<void(uint64_t)> fn) {
  std::lock_guard lock(mu_);
  on_head_ = std::move(fn);
}

void EtcdPurgeLog::append(LogEntry entry, AppendDone done) {
  queue_.push({std::move(entry), std::move(done)});
}

void EtcdPurgeLog::raiseHead(uint64_t seq, AppendDone done) {
  LogEntry e;
  e.seq = seq;
  queue_.push({std::move(e), std::move(done), true});
}

void EtcdPurgeLog::commitLoop() {
  // One transaction: within etcd's --max-txn-ops (two puts per entry, one
  // for the head) and well within its request size limit.
  size_t ops = 0, bytes = 0;
  const auto fits = [&](size_t n, const Pending& next) {
    if (n == 1) {  // a new group, holding its first entry (alone, any size)
      ops = 3;
      bytes = 0;
    }
    // (commit_id, set at commit: the replica's id and a number)
    const size_t b = encodedSizeBound(next.entry) + options_.replica_id.size() + 32;
    if (n >= options_.log.max_group || ops + 2 > options_.max_txn_ops ||
        bytes + b > options_.max_txn_bytes)
      return false;
    ops += 2;
    bytes += b;
    return true;
  };
  std::vector<Pending> group;
  while (queue_.take(&group, std::chrono::seconds(1), fits)) {
    const bool reload = reload_.exchange(false);
    if (reload) {
      if (Status s = load(); !s.isOk()) {
        TERN_LOG(kWarn, "cannot reload the purge log from etcd", {{"error", s.toString()}});
        reload_ = true;
      }
    }
    if (!group.empty()) {
      std::vector<Result<LogEntry>> results;
      Status s = commit(&group, &results, [&] { queue_.takeMore(&group, fits); });
      for (size_t i = 0; i < group.size(); ++i) {
        if (!s.isOk()) {
          group[i].done(s);
        } else {
          group[i].done(std::move(results[i]));
        }
      }
      group.clear();
    }
  }
}

// Retention and compaction on their own thread: a slow etcd delays them,
// not the next purge.
void EtcdPurgeLog::maintenanceLoop() {
  int64_t last_compact_ms = wallNowMs();
  int64_t compact_to_rev = 0;  // revision seen one period ago
  std::unique_lock lock(maintenance_mu_);
  while (!maintenance_stop_) {
    maintenance_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return maintenance_stop_; });
    if (maintenance_stop_) break;
    lock.unlock();
    const int64_t now_ms = wallNowMs();
    if (Status t = trim(now_ms); !t.isOk())
      TERN_LOG(kWarn, "purge log retention failed", {{"error", t.toString()}});
    if (options_.compact_every_ms > 0 && now_ms - last_compact_ms >= options_.compact_every_ms) {
      // Keep one period of history: compact to the revision seen a period ago.
      last_compact_ms = now_ms;
      if (compact_to_rev > 0) {
        Status c = client_->compact(compact_to_rev);
        if (!c.isOk() && c.message().find("compacted") == std::string::npos)
          TERN_LOG(kWarn, "etcd compaction failed", {{"error", c.toString()}});
      }
      pb::RangeRequest any;
      any.set_key(head_key_);
      if (auto r = client_->range(any); r.ok()) compact_to_rev = r->header().revision();
    }
    lock.lock();
  }
}

Status EtcdPurgeLog::commit(std::vector<Pending>* group, std::vector<Result<LogEntry>>* results,
                            const std::function<void()>& grow) {
  const std::string commit_id = options_.replica_id + ":" + std::to_string(++commits_);
  std::vector<bool> answered(group->size(), false);
  results->assign(group->size(), Status::unavailable("not committed"));
  for (int attempt = 0; attempt < 64; ++attempt) {
    if (attempt > 0) {
      // Lost a race: what was queued meanwhile goes along (fewer commits
      // for the same purges while replicas contend).
      grow();
      answered.resize(group->size(), false);
      results->resize(group->size(), Status::unavailable("not committed"));
    }
    uint64_t head;
    int64_t head_rev;
    {
      std::lock_guard lock(mu_);
      head = head_;
      head_rev = head_rev_;
    }
    const int64_t now_ms = wallNowMs();
    pb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(head_key_);
    cmp->set_target(pb::Compare::MOD);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_mod_revision(head_rev);
    *txn.add_failure() = rangeOp(head_key_);
    std::unordered_map<std::string, size_t> key_owner;  // idempotency key -> first in group
    std::vector<size_t> idem_checked;
    std::vector<LogEntry> added;
    uint64_t next = head;
    for (size_t i = 0; i < group->size(); ++i) {
      if (answered[i]) continue;
      Pending& p = (*group)[i];
      if (p.raise) {
        next = std::max(next, p.entry.seq);
        continue;
      }
      const std::string& key = p.entry.idempotency_key;
      if (!key.empty()) {
        if (key_owner.count(key)) continue;  // answered with the first one below
        key_owner[key] = i;
        auto* c = txn.add_compare();
        c->set_key(idem_prefix_ + key);
        c->set_target(pb::Compare::VERSION);
        c->set_result(pb::Compare::EQUAL);
        c->set_version(0);
        *txn.add_failure() = rangeOp(idem_prefix_ + key);
        idem_checked.push_back(i);
      }
      LogEntry e = p.entry;
      e.seq = ++next;
      if (e.accepted_at_ms == 0) e.accepted_at_ms = now_ms;
      e.commit_id = commit_id;
      *txn.add_success() = putOp(logKey(e.seq), encodeLogEntry(e));
      if (!key.empty()) *txn.add_success() = putOp(idem_prefix_ + key, std::to_string(e.seq));
      added.push_back(std::move(e));
    }
    if (next == head && added.empty()) {
      // Only raises that change nothing (or everything answered).
      for (size_t i = 0; i < group->size(); ++i) {
        if (answered[i]) continue;
        LogEntry e = (*group)[i].entry;
        if ((*group)[i].raise) {
          e.seq = head;
          (*results)[i] = e;
        }
      }
      return Status::ok();
    }
    *txn.add_success() = putOp(head_key_, std::to_string(next));
    bool maybe_applied = false;
    auto r = client_->txn(txn, &maybe_applied);
    // No member answered within the retry time: it may or may not have
    // landed; the caller is told Unavailable (a retry with the same
    // idempotency key logs it once).
    if (!r.ok()) return r.status();
    // An attempt that failed after sending may have committed, and then the
    // retry on another member fails its compare. Did it land? Our commit id
    // at the first sequence we used says so.
    if (!r->succeeded() && maybe_applied && !added.empty()) {
      auto landed = get(added.front().seq);
      if (landed.ok() && landed->has_value() && (*landed)->commit_id == commit_id) {
        int64_t rev = 0;
        auto h = readHead(&rev);
        if (!h.ok()) return h.status();
        {
          // The head and its revision from one read (another replica may
          // have committed after us): the next compare must match both.
          std::lock_guard lock(mu_);
          if (*h >= head_) {
            head_ = *h;
            head_rev_ = rev;
          }
        }
        r = pb::TxnResponse();
        r->set_succeeded(true);
        r->mutable_header()->set_revision(rev);
      }
    }
    if (r->succeeded()) {
      {
        std::lock_guard lock(mu_);
        if (next > head_) {
          head_ = next;
          head_rev_ = r->header().revision();
        } else if (head_ == next) {
          head_rev_ = std::max(head_rev_, r->header().revision());
        }
        ++syncs_;
        appended_ += added.size();
        entries_ += added.size();
        // Only if they follow what is known: otherwise other replicas'
        // entries come first, and the watch delivers all of them in order.
        for (const auto& e : added)
          if (recent_.empty() || recent_.back().seq + 1 == e.seq) recent_.push_back(e);
        while (recent_.size() > options_.log.memory_entries) recent_.pop_front();
      }
      size_t k = 0;
      std::unordered_map<std::string, LogEntry> by_key;
      for (size_t i = 0; i < group->size(); ++i) {
        if (answered[i]) continue;
        Pending& p = (*group)[i];
        if (p.raise) {
          LogEntry e = p.entry;
          e.seq = next;
          (*results)[i] = e;
          continue;
        }
        const std::string& key = p.entry.idempotency_key;
        if (!key.empty() && key_owner[key] != i) continue;  // filled below
        (*results)[i] = added[k];
        if (!key.empty()) by_key[key] = added[k];
        ++k;
      }
      for (size_t i = 0; i < group->size(); ++i) {
        const std::string& key = (*group)[i].entry.idempotency_key;
        if (!answered[i] && !key.empty() && key_owner[key] != i) (*results)[i] = by_key[key];
      }
      return Status::ok();
    }
    // Lost a race: learn the head; answer the idempotency keys that exist.
    const auto& hr = r->responses(0).response_range();
    {
      std::lock_guard lock(mu_);
      uint64_t seen = hr.kvs_size() ? parseU64(hr.kvs(0).value()) : 0;
      int64_t seen_rev = hr.kvs_size() ? hr.kvs(0).mod_revision() : 0;
      if (seen >= head_ || seen_rev > head_rev_) {
        head_ = std::max(head_, seen);
        head_rev_ = seen_rev;
      }
    }
    for (size_t j = 0; j < idem_checked.size(); ++j) {
      const auto& ir = r->responses(static_cast<int>(j + 1)).response_range();
      if (ir.kvs_size() == 0) continue;
      const size_t i = idem_checked[j];
      auto logged = get(parseU64(ir.kvs(0).value()));
      if (!logged.ok()) return logged.status();
      if (!logged->has_value()) continue;  // trimmed meanwhile: log it again
      const std::string key = (*group)[i].entry.idempotency_key;
      for (size_t m = 0; m < group->size(); ++m) {
        if (!answered[m] && !(*group)[m].raise && (*group)[m].entry.idempotency_key == key) {
          (*results)[m] = **logged;
          answered[m] = true;
        }
      }
    }
  }
  return Status::unavailable("etcd: purge log contended (64 attempts)");
}

uint64_t EtcdPurgeLog::headSeq() const {
  std::lock_guard lock(mu_);
  return head_;
}

uint64_t EtcdPurgeLog::firstSeq() const {
  std::lock_guard lock(mu_);
  return first_;
}

PurgeLogStats EtcdPurgeLog::stats() const {
  std::lock_guard lock(mu_);
  PurgeLogStats s;
  s.head_seq = head_;
  s.first_seq = first_ <= head_ ? first_ : 0;
  s.entries = entries_;
  s.syncs = syncs_;
  s.appended = appended_;
  return s;
}

Status EtcdPurgeLog::read(uint64_t from, size_t max, std::vector<LogEntry>* out) const {
  if (max == 0) return Status::ok();
  {
    std::lock_guard lock(mu_);
    from = std::max(from, first_);
    if (!recent_.empty() && from >= recent_.front().seq && from <= recent_.back().seq) {
      for (size_t i = from - recent_.front().seq; i < recent_.size() && max > 0; ++i, --max)
        out->push_back(recent_[i]);
      return Status::ok();
    }
  }
  pb::RangeRequest req;
  req.set_key(logKey(from));
  req.set_range_end(prefixEnd(log_prefix_));
  req.set_limit(static_cast<int64_t>(max));
  TERN_ASSIGN_OR_RETURN(auto r, client_->range(req));
  for (const auto& kv : r.kvs()) {
    auto e = decodeLogEntry(kv.value());
    if (!e.ok()) return Status::corruption(kv.key() + ": " + e.status().message());
    out->push_back(std::move(*e));
  }
  return Status::ok();
}

Result<std::optional<LogEntry>> EtcdPurgeLog::get(uint64_t seq) const {
  {
    std::lock_guard lock(mu_);
    if (seq < first_ || seq > head_) {
      // Another replica may have logged it a moment ago: ask etcd when the
      // seq is past what this replica has seen.
      if (seq < first_) return std::optional<LogEntry>();
    } else if (!recent_.empty() && seq >= recent_.front().seq && seq <= recent_.back().seq) {
      return std::optional<LogEntry>(recent_[seq - recent_.front().seq]);
    }
  }
  pb::RangeRequest req;
  req.set_key(logKey(seq));
  TERN_ASSIGN_OR_RETURN(auto r, client_->range(req));
  if (r.kvs_size() == 0) return std::optional<LogEntry>();
  auto e = decodeLogEntry(r.kvs(0).value());
  if (!e.ok()) return Status::corruption(r.kvs(0).key() + ": " + e.status().message());
  return std::optional<LogEntry>(std::move(*e));
}

Status EtcdPurgeLog::saveEdge(const EdgeRecord& edge) {
  pb::PutRequest req;
  req.set_key(edge_prefix_ + edge.edge_id);
  req.set_value(encodeEdgeRecord(edge));
  return client_->put(req).status();
}

Status EtcdPurgeLog::removeEdge(const std::string& edge_id) {
  pb::DeleteRangeRequest req;
  req.set_key(edge_prefix_ + edge_id);
  return client_->deleteRange(req).status();
}

Result<std::vector<EdgeRecord>> EtcdPurgeLog::loadEdges() const {
  pb::RangeRequest req;
  req.set_key(edge_prefix_);
  req.set_range_end(prefixEnd(edge_prefix_));
  TERN_ASSIGN_OR_RETURN(auto r, client_->range(req));
  std::vector<EdgeRecord> out;
  for (const auto& kv : r.kvs()) {
    if (auto e = decodeEdgeRecord(kv.value()); e.ok()) out.push_back(std::move(*e));
  }
  return out;
}

Status EtcdPurgeLog::trimForTesting(int64_t now_ms) { return trim(now_ms); }

// Deletes entries past retention with their idempotency keys, a
// transaction per round (one range delete and at most max_txn_ops - 1 key
// deletes). The newest entry always stays.
Status EtcdPurgeLog::trim(int64_t now_ms) {
  for (int round = 0; round < 16; ++round) {
    bool more = false;
    TERN_RETURN_IF_ERROR(trimRound(now_ms, &more));
    if (!more) break;
  }
  return Status::ok();
}

Status EtcdPurgeLog::trimRound(int64_t now_ms, bool* more) {
  uint64_t first, head;
  {
    std::lock_guard lock(mu_);
    first = first_;
    head = head_;
  }
  if (head < first) return Status::ok();
  std::vector<LogEntry> oldest;
  TERN_RETURN_IF_ERROR(read(first, 1024, &oldest));
  if (oldest.empty()) return Status::ok();
  const uint64_t count_cut =
      head - first + 1 > options_.log.retain_count ? head - options_.log.retain_count + 1 : 0;
  const int64_t age_cut = now_ms - options_.log.retain_age_ms;
  pb::TxnRequest txn;
  uint64_t new_first = 0;
  for (const auto& e : oldest) {
    if (e.seq >= head) break;  // the newest stays
    if (e.seq >= count_cut && e.accepted_at_ms >= age_cut) break;
    if (!e.idempotency_key.empty()) {
      if (static_cast<size_t>(txn.success_size()) + 2 > options_.max_txn_ops) {
        *more = true;
        break;
      }
      pb::RequestOp d;
      d.mutable_request_delete_range()->set_key(idem_prefix_ + e.idempotency_key);
      *txn.add_success() = d;
    }
    new_first = e.seq + 1;
  }
  if (new_first == 0) return Status::ok();
  if (oldest.back().seq + 1 == new_first && oldest.size() == 1024) *more = true;
  pb::RequestOp del;
  del.mutable_request_delete_range()->set_key(logKey(first));
  del.mutable_request_delete_range()->set_range_end(logKey(new_first));
  *txn.add_success() = del;
  TERN_RETURN_IF_ERROR(client_->txn(txn).status());
  std::lock_guard lock(mu_);
  if (new_first > first_) {
    entries_ -= std::min<uint64_t>(entries_, new_first - first_);
    first_ = new_first;
  }
  while (!recent_.empty() && recent_.front().seq < first_) recent_.pop_front();
  return Status::ok();
}

}  // namespace tern::coordinator::etcd

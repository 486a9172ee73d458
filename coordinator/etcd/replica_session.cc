#include "coordinator/etcd/replica_session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace tern::coordinator::etcd {

ReplicaSession::ReplicaSession(EtcdClient* client, SessionOptions options, Build build,
                               Published published, std::function<int64_t()> watched_revision)
    : client_(client),
      options_(std::move(options)),
      build_(std::move(build)),
      published_(std::move(published)),
      watched_revision_(std::move(watched_revision)) {
  if (options_.keepalive_ms == 0)
    options_.keepalive_ms = static_cast<uint32_t>(std::max<int64_t>(200, options_.ttl_s * 250));
}

Result<std::unique_ptr<ReplicaSession>> ReplicaSession::open(
    EtcdClient* client, SessionOptions options, Build build, Published published,
    std::function<int64_t()> watched_revision) {
  if (options.ttl_s < 2) return Status::invalidArgument("etcd session TTL below 2 s");
  std::unique_ptr<ReplicaSession> s(new ReplicaSession(client, std::move(options), std::move(build),
                                                       std::move(published),
                                                       std::move(watched_revision)));
  const int64_t t0 = steadyNowUs();
  TERN_ASSIGN_OR_RETURN(int64_t id, client->leaseGrant(s->options_.ttl_s));
  {
    std::lock_guard lock(s->mu_);
    s->lease_id_ = id;
    s->valid_until_ = t0 + s->options_.ttl_s * 990'000;
  }
  s->keeper_ = std::thread([p = s.get()] {
    setThreadName("etcd-keepalive");
    p->keepAliveLoop();
  });
  s->publisher_ = std::thread([p = s.get()] {
    setThreadName("summary-pub");
    p->publishLoop();
  });
  return s;
}

ReplicaSession::~ReplicaSession() {
  stop_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  keep_cv_.notify_all();
  publish_cv_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  if (publisher_.joinable()) publisher_.join();
}

void ReplicaSession::changed() {
  {
    std::lock_guard lock(mu_);
    // Every acknowledgement lands here: only the first change since the
    // last put wakes the publisher.
    if (dirty_) return;
    dirty_ = true;
  }
  publish_cv_.notify_one();
}

int64_t ReplicaSession::validUntilUs() const {
  std::lock_guard lock(mu_);
  return valid_until_;
}

int64_t ReplicaSession::leaseId() const {
  std::lock_guard lock(mu_);
  return lease_id_;
}

namespace {
std::string keyOf(const std::string& prefix, int64_t lease) {
  char hex[24];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(lease));
  return prefix + hex;
}
}  // namespace

std::string ReplicaSession::key() const { return keyOf(options_.key_prefix, leaseId()); }

bool ReplicaSession::isOwn(const std::string& key) const { return key == this->key(); }

uint64_t ReplicaSession::puts() const {
  std::lock_guard lock(mu_);
  return puts_;
}

void ReplicaSession::keepAliveLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const int64_t id = lease_id_;
    lock.unlock();
    // Counted from before the request: etcd renews it later than this.
    const int64_t t0 = steadyNowUs();
    if (id == 0) {
      auto granted = client_->leaseGrant(options_.ttl_s);
      lock.lock();
      if (granted.ok()) {
        lease_id_ = *granted;
        valid_until_ = t0 + options_.ttl_s * 990'000;
        dirty_ = true;  // the summary went with the old lease
        publish_cv_.notify_all();
        TERN_LOG(kInfo, "etcd session granted again", {{"lease", std::to_string(*granted)}});
      }
    } else {
      auto ttl = client_->leaseKeepAlive(id);
      lock.lock();
      if (ttl.ok()) {
        valid_until_ = std::max(valid_until_, t0 + *ttl * 990'000);
      } else if (ttl.status().code() == StatusCode::kNotFound) {
        TERN_LOG(kWarn, "etcd session expired: edges move to other replicas until it is back");
        if (lease_id_ == id) lease_id_ = 0;
        valid_until_ = std::min(valid_until_, t0);  // no lease past this point
        continue;                                   // grant a new one at once
      } else {
        TERN_LOG(kWarn, "cannot renew the etcd session", {{"error", ttl.status().toString()}});
      }
    }
    keep_cv_.wait_for(lock, std::chrono::milliseconds(options_.keepalive_ms),
                      [&] { return stopping_; });
  }
}

void ReplicaSession::publishLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    publish_cv_.wait(lock, [&] { return stopping_ || (dirty_ && lease_id_ != 0); });
    if (stopping_) break;
    // Coalesce: at most one put per interval.
    const int64_t next = last_put_us_ + static_cast<int64_t>(options_.min_interval_ms) * 1000;
    if (steadyNowUs() < next) {
      publish_cv_.wait_for(lock, std::chrono::microseconds(next - steadyNowUs()),
                           [&] { return stopping_; });
      if (stopping_) break;
    }
    dirty_ = false;
    const int64_t lease = lease_id_;
    lock.unlock();
    uint64_t generation = 0;
    pb::PutRequest put;
    put.set_key(keyOf(options_.key_prefix, lease));
    put.set_value(build_(&generation));
    put.set_lease(lease);
    auto r = client_->put(put);
    bool seen = false;
    if (r.ok()) {
      // Published once this replica has seen the log up to the put.
      const int64_t rev = r->header().revision();
      const int64_t give_up = steadyNowUs() + 5'000'000;
      while (!(seen = watched_revision_() >= rev) && steadyNowUs() < give_up && !stop_)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      // Only while the summary is still there: bound to the session now.
      if (leaseId() != lease) seen = false;  // published again under the new one
      if (seen) published_(generation);
    } else {
      TERN_LOG(kWarn, "cannot publish the replica summary", {{"error", r.status().toString()}});
    }
    lock.lock();
    last_put_us_ = steadyNowUs();
    if (r.ok()) ++puts_;
    if (!r.ok() || !seen) {
      dirty_ = true;
      publish_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
    }
  }
}

}  // namespace tern::coordinator::etcd

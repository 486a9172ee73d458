#pragma once
// ReplicaSession: a coordinator replica's session in etcd, and its summary.
//
// The session is an etcd lease of `ttl_s` seconds, renewed every
// `keepalive_ms`. validUntilUs() is the steady-clock time before which etcd
// cannot have expired it: the send time of the last renewal that succeeded
// plus the TTL it granted. The replica grants edge leases only up to that
// time, so when its summary disappears (the lease expired in etcd) every
// edge lease it granted has run out.
//
// The summary (bytes built by `build`, a ReplicaSummary) is put under
// `key_prefix` + the lease id in hex, bound to the lease (a restarted
// process with the same replica id has a key of its own, so the summary of
// the one before stays until its leases have run out): rewritten after changed(), at most once per
// `min_interval_ms`, one put at a time. After a put lands at revision R and
// `watched_revision()` reaches R (this replica has seen the log up to it),
// `published(generation)` runs: streams that waited for it may be welcomed.
// When the lease is lost (expired in etcd), a new one is granted and the
// summary put again.
//
// Thread-safety: thread-safe; `build` and `published` run on the
// session's publisher thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "coordinator/etcd/etcd_client.h"

namespace tern::coordinator::etcd {

struct SessionOptions {
  std::string key_prefix;  // <prefix>replicas/<replica id>/
  int64_t ttl_s = 5;
  uint32_t keepalive_ms = 0;  // 0: a quarter of the TTL
  uint32_t min_interval_ms = 5;
};

class ReplicaSession {
 public:
  using Build = std::function<std::string(uint64_t* generation)>;
  using Published = std::function<void(uint64_t generation)>;

  // Grants the first lease (Unavailable when etcd does not answer) and
  // publishes a first summary.
  static Result<std::unique_ptr<ReplicaSession>> open(EtcdClient* client, SessionOptions options,
                                                      Build build, Published published,
                                                      std::function<int64_t()> watched_revision);
  // Stops renewing. The lease is not revoked: the summary stays until the
  // TTL ends, as long as leases this replica granted may still run.
  ~ReplicaSession();
  ReplicaSession(const ReplicaSession&) = delete;
  ReplicaSession& operator=(const ReplicaSession&) = delete;

  void changed();
  int64_t validUntilUs() const;
  int64_t leaseId() const;
  // The key of this process's summary now, and whether `key` is it.
  std::string key() const;
  bool isOwn(const std::string& key) const;
  uint64_t puts() const;

 private:
  ReplicaSession(EtcdClient* client, SessionOptions options, Build build, Published published,
                 std::function<int64_t()> watched_revision);
  void keepAliveLoop();
  void publishLoop();

  EtcdClient* client_;
  SessionOptions options_;
  Build build_;
  Published published_;
  std::function<int64_t()> watched_revision_;

  mutable std::mutex mu_;
  std::condition_variable keep_cv_;     // the keeper: stop only
  std::condition_variable publish_cv_;  // the publisher: a change or stop
  bool stopping_ = false;               // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};
  bool dirty_ = true;        // GUARDED_BY(mu_)
  int64_t lease_id_ = 0;     // GUARDED_BY(mu_); 0: none (lost)
  int64_t valid_until_ = 0;  // GUARDED_BY(mu_); steady microseconds
  int64_t last_put_us_ = 0;  // GUARDED_BY(mu_)
  uint64_t puts_ = 0;        // GUARDED_BY(mu_)
  std::thread keeper_, publisher_;
};

}  // namespace tern::coordinator::etcd

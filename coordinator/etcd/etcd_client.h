#pragma once
// EtcdClient: a client of etcd's v3 gRPC API (proto/etcd/etcd_v3.proto) over
// the members of one etcd cluster.
//
// Unary calls go to the member that answered last; when it is unavailable
// or does not answer within `timeout_ms`, the call moves on to the next
// member, around the list until `retry_ms` have passed. Such a retry is only safe for calls
// that may be applied twice: a transaction guards itself with compares (see
// EtcdPurgeLog), and txn() sets `maybe_applied` when a member failed after
// the request was sent (it may have been committed).
//
// Watcher: one stream of its own thread; after a member fails it resumes on
// another from the revision after the last one it delivered, so no event is
// lost or repeated. A start revision that etcd has compacted away ends the
// watch with on_compacted(compact_revision): the caller re-reads the state
// and watches again from there.
//
// Thread-safety: thread-safe; a Watcher's callbacks run on its thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "etcd/etcd_v3.grpc.pb.h"

namespace tern::coordinator::etcd {

namespace pb = ::etcdserverpb;

struct EtcdOptions {
  std::vector<std::string> endpoints;  // host:port of each member's client URL
  uint32_t timeout_ms = 2000;          // per attempt on one member
  // A call keeps trying the members this long (a leader election takes
  // about a second) before it fails with Unavailable.
  uint32_t retry_ms = 5000;
};

// The end of the key range that holds every key starting with `prefix`.
std::string prefixEnd(const std::string& prefix);

class EtcdClient {
 public:
  explicit EtcdClient(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // Unavailable (no member answered), InvalidArgument (etcd refused the
  // request), or the response. `maybe_applied` (may be null) is set when a
  // member failed after the request was sent.
  Result<pb::RangeResponse> range(const pb::RangeRequest& request);
  Result<pb::TxnResponse> txn(const pb::TxnRequest& request, bool* maybe_applied = nullptr);
  Result<pb::PutResponse> put(const pb::PutRequest& request);
  Result<pb::DeleteRangeResponse> deleteRange(const pb::DeleteRangeRequest& request);
  Status compact(int64_t revision);
  // A lease of `ttl_s` seconds; its id.
  Result<int64_t> leaseGrant(int64_t ttl_s);
  Status leaseRevoke(int64_t id);
  // Renews a lease once; the TTL left in seconds (NotFound when it is gone).
  Result<int64_t> leaseKeepAlive(int64_t id);
  // The status of every member, in the order of the endpoints (an error for
  // those that do not answer).
  std::vector<Result<pb::StatusResponse>> memberStatus();
  const std::vector<std::string>& endpoints() const { return options_.endpoints; }

  class Watcher {
   public:
    ~Watcher();  // stops the stream and joins its thread
    // Revision of the last response delivered (events or progress).
    int64_t revision() const { return revision_.load(); }

   private:
    friend class EtcdClient;
    Watcher() = default;
    void run();
    EtcdClient* client_ = nullptr;
    std::string key_, range_end_;
    std::function<void(const pb::WatchResponse&)> on_events_;
    std::function<void(int64_t compact_revision)> on_compacted_;
    std::atomic<int64_t> revision_{0};
    std::mutex mu_;
    bool stopping_ = false;                         // GUARDED_BY(mu_)
    std::shared_ptr<grpc::ClientContext> context_;  // GUARDED_BY(mu_)
    std::thread thread_;
  };
  // Watches [key, range_end) from `start_revision` (0: from now).
  std::unique_ptr<Watcher> watch(const std::string& key, const std::string& range_end,
                                 int64_t start_revision,
                                 std::function<void(const pb::WatchResponse&)> on_events,
                                 std::function<void(int64_t)> on_compacted);

 private:
  struct Member {
    std::string endpoint;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Maintenance::Stub> maintenance;
  };
  // Calls `fn(member, context)` on members in turn until one answers with
  // anything but UNAVAILABLE / DEADLINE_EXCEEDED.
  template <class Fn>
  Status call(const char* what, Fn&& fn, bool* maybe_applied = nullptr);
  size_t current() const { return current_.load(); }

  EtcdOptions options_;
  std::vector<Member> members_;
  std::atomic<size_t> current_{0};
};

}  // namespace tern::coordinator::etcd

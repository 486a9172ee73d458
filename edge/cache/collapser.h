#pragma once
// Collapser: makes concurrent misses of one key share one origin request.
// The first caller becomes the leader and fetches; the others get the same
// Inflight and are woken when its head arrives (a waiting list, never
// polling). Thread-safety: thread-safe.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "edge/cache/inflight.h"

namespace tern::edge::cache {

class Collapser {
 public:
  struct Joined {
    std::shared_ptr<Inflight> inflight;
    bool leader = false;
  };
  // `applied_seq`: the purge sequence applied now. A fetch that began before
  // a later purge is not shared (its response may be what the purge removed):
  // the caller becomes the leader of a new fetch; the old one finishes for
  // the clients that were already waiting on it. So is a fetch whose first
  // bytes are gone (a large body streaming, see Inflight::joinable).
  Joined join(const std::string& key, uint64_t applied_seq = 0);
  // The leader calls this once the response head is known: later requests
  // no longer join (they look up the cache, or fetch on their own).
  void release(const std::string& key, const std::shared_ptr<Inflight>& inflight);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<Inflight>> inflight_;  // GUARDED_BY(mu_)
};

}  // namespace tern::edge::cache

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
  Joined join(const std::string& key);
  // The leader calls this once the response head is known: later requests
  // no longer join (they look up the cache, or fetch on their own).
  void release(const std::string& key, const std::shared_ptr<Inflight>& inflight);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<Inflight>> inflight_;  // GUARDED_BY(mu_)
};

}  // namespace tern::edge::cache

#pragma once
// TokenBucket: the purge API's rate limit (calls per second with a burst),
// on the caller's clock. A rate of 0 or less admits everything.
//
// Thread-safety: thread-safe (its own small lock, never held with another).

#include <cstdint>
#include <mutex>

namespace tern::coordinator {

class TokenBucket {
 public:
  TokenBucket(double rate_per_sec, double burst, int64_t now_us);

  // Takes one token if there is one at `now_us`.
  bool tryTake(int64_t now_us);
  // How long until one token is there (0: now).
  int64_t retryAfterMs(int64_t now_us) const;

 private:
  void refill(int64_t now_us) const;  // REQUIRES: mu_

  const double rate_;
  const double burst_;
  mutable std::mutex mu_;
  mutable double tokens_;      // GUARDED_BY(mu_)
  mutable int64_t tokens_at_;  // GUARDED_BY(mu_)
};

}  // namespace tern::coordinator

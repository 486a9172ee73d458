#include "coordinator/core/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace tern::coordinator {

TokenBucket::TokenBucket(double rate_per_sec, double burst, int64_t now_us)
    : rate_(rate_per_sec), burst_(std::max(1.0, burst)), tokens_(burst_), tokens_at_(now_us) {}

void TokenBucket::refill(int64_t now_us) const {
  if (now_us <= tokens_at_) return;
  const double elapsed = static_cast<double>(now_us - tokens_at_) / 1e6;
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  tokens_at_ = now_us;
}

bool TokenBucket::tryTake(int64_t now_us) {
  if (rate_ <= 0) return true;
  std::lock_guard lock(mu_);
  refill(now_us);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

int64_t TokenBucket::retryAfterMs(int64_t now_us) const {
  if (rate_ <= 0) return 0;
  std::lock_guard lock(mu_);
  refill(now_us);
  if (tokens_ >= 1) return 0;
  return static_cast<int64_t>(std::ceil((1 - tokens_) / rate_ * 1000));
}

}  // namespace tern::coordinator

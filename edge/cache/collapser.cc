#include "edge/cache/collapser.h"

namespace tern::edge::cache {

Collapser::Joined Collapser::join(const std::string& key, uint64_t applied_seq) {
  std::lock_guard lock(mu_);
  auto& slot = inflight_[key];
  if (auto existing = slot.lock();
      existing && existing->startSeq() >= applied_seq && existing->joinable())
    return {existing, false};
  auto fresh = std::make_shared<Inflight>(applied_seq);
  slot = fresh;
  return {fresh, true};
}

void Collapser::release(const std::string& key, const std::shared_ptr<Inflight>& inflight) {
  std::lock_guard lock(mu_);
  auto it = inflight_.find(key);
  if (it != inflight_.end() && it->second.lock() == inflight) inflight_.erase(it);
}

size_t Collapser::size() const {
  std::lock_guard lock(mu_);
  return inflight_.size();
}

}  // namespace tern::edge::cache

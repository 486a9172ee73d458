#include "edge/cache/inflight.h"

namespace tern::edge::cache {

void Inflight::notifyLocked(std::vector<std::pair<Executor, std::function<void()>>>* out) const {
  *out = subs_;
}

void Inflight::setHead(Head head) {
  std::vector<std::pair<Executor, std::function<void()>>> subs;
  {
    std::lock_guard lock(mu_);
    head_ = std::move(head);
    notifyLocked(&subs);
  }
  for (auto& [exec, wake] : subs) exec(wake);
}

void Inflight::append(std::string chunk) {
  if (chunk.empty()) return;
  std::vector<std::pair<Executor, std::function<void()>>> subs;
  {
    std::lock_guard lock(mu_);
    bytes_ += chunk.size();
    chunks_.push_back(std::make_shared<const std::string>(std::move(chunk)));
    notifyLocked(&subs);
  }
  for (auto& [exec, wake] : subs) exec(wake);
}

void Inflight::finish(Status status) {
  std::vector<std::pair<Executor, std::function<void()>>> subs;
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    status_ = std::move(status);
    subs.swap(subs_);  // nothing more will happen: drop the subscriptions
  }
  for (auto& [exec, wake] : subs) exec(wake);
}

void Inflight::subscribe(Executor exec, std::function<void()> wake) {
  bool now;
  {
    std::lock_guard lock(mu_);
    now = head_.has_value() || done_;
    if (!done_) subs_.emplace_back(exec, wake);
  }
  if (now) exec(wake);
}

std::optional<Inflight::Head> Inflight::head() const {
  std::lock_guard lock(mu_);
  return head_;
}

std::shared_ptr<const std::string> Inflight::chunk(size_t i) const {
  std::lock_guard lock(mu_);
  return i < chunks_.size() ? chunks_[i] : nullptr;
}

bool Inflight::finished(Status* status) const {
  std::lock_guard lock(mu_);
  if (done_ && status != nullptr) *status = status_;
  return done_;
}

size_t Inflight::chunks() const {
  std::lock_guard lock(mu_);
  return chunks_.size();
}

uint64_t Inflight::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace tern::edge::cache

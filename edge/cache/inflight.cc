#include "edge/cache/inflight.h"

#include <algorithm>

namespace tern::edge::cache {

Inflight::Reader::Reader(Reader&& other) noexcept
    : inflight_(std::move(other.inflight_)), id_(other.id_) {
  other.inflight_ = nullptr;
}

Inflight::Reader& Inflight::Reader::operator=(Reader&& other) noexcept {
  if (this != &other) {
    release();
    inflight_ = std::move(other.inflight_);
    id_ = other.id_;
    other.inflight_ = nullptr;
  }
  return *this;
}

void Inflight::Reader::release() {
  if (!inflight_) return;
  inflight_->releaseReader(id_);
  inflight_ = nullptr;
}

std::shared_ptr<const std::string> Inflight::Reader::chunk(size_t i) {
  if (!inflight_) return nullptr;
  Inflight& f = *inflight_;
  std::shared_ptr<const std::string> out;
  std::function<void()> resume;
  {
    std::lock_guard lock(f.mu_);
    for (auto& [id, next] : f.readers_) {
      if (id == id_ && next < i) {
        next = i;
        resume = f.trimLocked();
      }
    }
    // A reader's own unread chunks are never dropped.
    if (i >= f.base_ && i - f.base_ < f.chunks_.size()) out = f.chunks_[i - f.base_].data;
  }
  if (resume) resume();
  return out;
}

Inflight::Reader Inflight::read() {
  Reader r;
  std::lock_guard lock(mu_);
  if (base_ > 0) return r;
  r.inflight_ = shared_from_this();
  r.id_ = next_reader_id_++;
  readers_.emplace_back(r.id_, 0);
  return r;
}

void Inflight::releaseReader(int id) {
  std::function<void()> resume;
  {
    std::lock_guard lock(mu_);
    std::erase_if(readers_, [id](const auto& r) { return r.first == id; });
    resume = trimLocked();
  }
  if (resume) resume();
}

bool Inflight::joinable() const {
  std::lock_guard lock(mu_);
  return base_ == 0;
}

uint64_t Inflight::slowestOffsetLocked() const {
  size_t slowest = base_ + chunks_.size();
  for (const auto& r : readers_) slowest = std::min(slowest, r.second);
  if (slowest <= base_) return dropped_bytes_;
  return chunks_[slowest - base_ - 1].end;
}

std::function<void()> Inflight::trimLocked() {
  if (bytes_ > kShareablePrefixBytes) {
    size_t slowest = base_ + chunks_.size();
    for (const auto& r : readers_) slowest = std::min(slowest, r.second);
    while (base_ < slowest) {
      dropped_bytes_ = chunks_.front().end;
      chunks_.pop_front();
      ++base_;
    }
  }
  if (resume_ && (done_ || bytes_ - slowestOffsetLocked() <= kWindowBytes ||
                  bytes_ <= kShareablePrefixBytes)) {
    return std::exchange(resume_, nullptr);
  }
  return nullptr;
}

bool Inflight::mayReadMore(std::function<void()> resume) {
  std::lock_guard lock(mu_);
  if (done_ || bytes_ <= kShareablePrefixBytes || bytes_ - slowestOffsetLocked() <= kWindowBytes)
    return true;
  resume_ = std::move(resume);
  return false;
}

Inflight::Wakes Inflight::dueLocked(bool all) {
  Wakes out;
  out.reserve(subs_.size());
  for (auto& sub : subs_) {
    if (!all && sub.every_bytes > 0) {
      if (bytes_ - sub.woken_at < sub.every_bytes) continue;
      sub.woken_at = bytes_;
    }
    out.emplace_back(sub.exec, sub.wake);
  }
  return out;
}

void Inflight::setHead(Head head) {
  Wakes wakes;
  {
    std::lock_guard lock(mu_);
    head_ = std::move(head);
    // The head is news for those woken on every change.
    for (auto& sub : subs_) {
      if (sub.every_bytes == 0) wakes.emplace_back(sub.exec, sub.wake);
    }
  }
  for (auto& [exec, wake] : wakes) exec(wake);
}

void Inflight::append(std::string chunk) {
  if (chunk.empty()) return;
  Wakes wakes;
  {
    std::lock_guard lock(mu_);
    bytes_ += chunk.size();
    chunks_.push_back({std::make_shared<const std::string>(std::move(chunk)), bytes_});
    (void)trimLocked();  // the fetcher asks mayReadMore() next
    wakes = dueLocked(false);
  }
  for (auto& [exec, wake] : wakes) exec(wake);
}

void Inflight::finish(Status status) {
  Wakes wakes;
  std::function<void()> resume;
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    status_ = std::move(status);
    wakes = dueLocked(true);
    subs_.clear();  // nothing more will happen: drop the subscriptions
    resume = std::exchange(resume_, nullptr);
  }
  if (resume) resume();
  for (auto& [exec, wake] : wakes) exec(wake);
}

void Inflight::subscribe(Executor exec, std::function<void()> wake, uint64_t every_bytes) {
  // Past the window the fetcher waits for its slowest reader, which would
  // then never be woken.
  every_bytes = std::min(every_bytes, kWindowBytes / 2);
  bool now;
  {
    std::lock_guard lock(mu_);
    now = every_bytes == 0 ? head_.has_value() || done_ : done_ || bytes_ >= every_bytes;
    if (!done_) subs_.push_back({exec, wake, every_bytes, now ? bytes_ : 0});
  }
  if (now) exec(wake);
}

std::optional<Inflight::Head> Inflight::head() const {
  std::lock_guard lock(mu_);
  return head_;
}

bool Inflight::finished(Status* status) const {
  std::lock_guard lock(mu_);
  if (done_ && status != nullptr) *status = status_;
  return done_;
}

uint64_t Inflight::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

uint64_t Inflight::heldBytes() const {
  std::lock_guard lock(mu_);
  return bytes_ - dropped_bytes_;
}

}  // namespace tern::edge::cache

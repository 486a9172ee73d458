#include "coordinator/log/append_queue.h"

namespace tern::coordinator {

AppendQueue::~AppendQueue() {
  std::vector<Pending> left;
  {
    std::lock_guard lock(mu_);
    left.swap(queue_);
  }
  for (auto& p : left) p.done(Status::unavailable("purge log closed"));
}

void AppendQueue::push(Pending p) {
  {
    std::lock_guard lock(mu_);
    if (!closed_) {
      queue_.push_back(std::move(p));
      cv_.notify_one();
      return;
    }
  }
  p.done(Status::unavailable("purge log closed"));
}

bool AppendQueue::take(std::vector<Pending>* group, std::chrono::milliseconds wait,
                       const Fits& fits) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return closed_ || woken_ || !queue_.empty(); });
  woken_ = false;
  if (queue_.empty()) return !closed_;
  size_t n = 1;
  while (n < queue_.size() && fits(n, queue_[n])) ++n;
  const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(n);
  group->assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
  queue_.erase(queue_.begin(), end);
  return true;
}

void AppendQueue::takeMore(std::vector<Pending>* group, const Fits& fits) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  while (n < queue_.size() && fits(group->size() + n, queue_[n])) ++n;
  const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(n);
  group->insert(group->end(), std::make_move_iterator(queue_.begin()),
                std::make_move_iterator(end));
  queue_.erase(queue_.begin(), end);
}

void AppendQueue::wake() {
  std::lock_guard lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

void AppendQueue::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

}  // namespace tern::coordinator

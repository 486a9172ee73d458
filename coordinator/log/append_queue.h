#pragma once
// AppendQueue: where appends wait for a log's committer thread (group
// commit, as the writers queue of LevelDB's DBImpl::Write): append() and
// raiseHead() push; the committer takes everything waiting that fits in one
// commit, answers each, and comes back for more.
//
// Thread-safety: thread-safe.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "coordinator/log/purge_log.h"

namespace tern::coordinator {

class AppendQueue {
 public:
  struct Pending {
    LogEntry entry;
    PurgeLog::AppendDone done;
    bool raise = false;  // raiseHead(): entry.seq is the new head, nothing is logged
  };
  // Whether `next` still fits in a commit that already holds `n` pending.
  using Fits = std::function<bool(size_t n, const Pending& next)>;

  // Answers what is still queued with Unavailable.
  ~AppendQueue();

  // Queues, or answers Unavailable at once after close().
  void push(Pending p);
  // Waits until something is queued, wake() or close() is called, or `wait`
  // passed; then moves the longest prefix of the queue that fits (at least
  // one) into `group`, which may stay empty. False once closed and drained:
  // the committer stops.
  bool take(std::vector<Pending>* group, std::chrono::milliseconds wait, const Fits& fits);
  // Without waiting: appends to `group` what is queued now and still fits
  // (a committer that lost a race takes the latecomers into its retry).
  void takeMore(std::vector<Pending>* group, const Fits& fits);
  // Makes a waiting take() return (the committer has other work).
  void wake();
  // Refuses new appends; take() still hands out what is queued.
  void close();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> queue_;  // GUARDED_BY(mu_)
  bool closed_ = false;         // GUARDED_BY(mu_)
  bool woken_ = false;          // GUARDED_BY(mu_)
};

}  // namespace tern::coordinator

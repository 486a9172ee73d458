#pragma once
// Inflight: one origin response being received, shared by every client that
// asked for it (request collapsing, the "busy object" of Varnish). The
// fetcher sets the head, appends body chunks and finishes; readers subscribe
// and are woken (on their own executor) whenever there is more, so a waiter
// is released the moment the head arrives and streams the body as it comes.
//
// Thread-safety: all methods are thread-safe; wake-ups run on the executor
// the subscriber gave.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "edge/cache/executor.h"
#include "edge/http/fields.h"

namespace tern::edge::cache {

class Inflight {
 public:
  // `start_seq`: the purge sequence the edge had applied when the fetch
  // began. A request may only share a fetch that began after every purge
  // it has to respect (see Collapser::join).
  explicit Inflight(uint64_t start_seq = 0) : start_seq_(start_seq) {}
  uint64_t startSeq() const { return start_seq_; }

  struct Head {
    int status = 0;
    http::Fields headers;
    bool cacheable = false;  // whether waiters may share this response
    std::string variant;     // Vary variant the leader's request selected
  };

  void setHead(Head head);
  void append(std::string chunk);
  void finish(Status status);

  // Calls `wake` on `exec` now if anything is available, and after every
  // change until the response is finished.
  void subscribe(Executor exec, std::function<void()> wake);

  std::optional<Head> head() const;
  // Chunk i, or null if not received yet.
  std::shared_ptr<const std::string> chunk(size_t i) const;
  bool finished(Status* status = nullptr) const;
  size_t chunks() const;
  uint64_t bytes() const;

 private:
  void notifyLocked(std::vector<std::pair<Executor, std::function<void()>>>* out) const;
  const uint64_t start_seq_;
  mutable std::mutex mu_;
  std::optional<Head> head_;                                      // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<const std::string>> chunks_;        // GUARDED_BY(mu_)
  uint64_t bytes_ = 0;                                            // GUARDED_BY(mu_)
  bool done_ = false;                                             // GUARDED_BY(mu_)
  Status status_;                                                 // GUARDED_BY(mu_)
  std::vector<std::pair<Executor, std::function<void()>>> subs_;  // GUARDED_BY(mu_)
};

}  // namespace tern::edge::cache

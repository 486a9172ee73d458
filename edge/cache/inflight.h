#pragma once
// Inflight: one origin response being received, shared by every client that
// asked for it (request collapsing, the "busy object" of Varnish). The
// fetcher sets the head, appends body chunks and finishes; readers subscribe
// and are woken (on their own executor) whenever there is more, so a waiter
// is released the moment the head arrives and streams the body as it comes.
//
// Memory is bounded whatever the body's size. Each party that reads the body
// (a client, the store's fill) holds a Reader; a chunk is dropped once every
// reader has moved past it, except within the first kShareablePrefixBytes,
// which stay so that late waiters can still join from the start. Past the
// prefix the fetch is no longer joinable() and the fetcher is held back
// (mayReadMore) while the slowest reader is more than kWindowBytes behind: a
// slow client slows the origin read instead of growing a buffer.
//
// Thread-safety: all methods are thread-safe; wake-ups run on the executor
// the subscriber gave. A Reader is used by one thread at a time.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "edge/cache/executor.h"
#include "edge/http/fields.h"

namespace tern::edge::cache {

class Inflight : public std::enable_shared_from_this<Inflight> {
 public:
  static constexpr uint64_t kShareablePrefixBytes = 8ULL << 20;
  static constexpr uint64_t kWindowBytes = 1ULL << 20;

  // `start_seq`: the purge sequence the edge had applied when the fetch
  // began. A request may only share a fetch that began after every purge
  // it has to respect (see Collapser::join).
  explicit Inflight(uint64_t start_seq = 0) : start_seq_(start_seq) {}
  uint64_t startSeq() const { return start_seq_; }

  struct Head {
    int status = 0;
    http::Fields headers;
    bool cacheable = false;       // whether waiters may share this response
    bool stored = false;          // whether the response is being written to the cache
    std::string variant;          // Vary variant the leader's request selected
    int64_t request_time_ms = 0;  // of the leader's fetch (RFC 9111 4.2.3)
    int64_t response_time_ms = 0;
  };

  // One party reading the body from its first byte. Movable; releasing it
  // (or destroying it) lets the chunks it held back go.
  class Reader {
   public:
    Reader() = default;
    Reader(Reader&& other) noexcept;
    Reader& operator=(Reader&& other) noexcept;
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() { release(); }
    bool valid() const { return inflight_ != nullptr; }
    // Chunk i, or null if not received yet; chunks before i count as read.
    std::shared_ptr<const std::string> chunk(size_t i);
    void release();
    Inflight* inflight() const { return inflight_.get(); }

   private:
    friend class Inflight;
    std::shared_ptr<Inflight> inflight_;
    int id_ = -1;
  };

  // A reader from the first byte; invalid when the start is already gone
  // (the caller then fetches on its own).
  Reader read();
  // Whether a new request may still share this fetch from the first byte.
  bool joinable() const;

  void setHead(Head head);
  void append(std::string chunk);
  void finish(Status status);
  // Flow control for the fetcher, after append(): true to read on now;
  // false when readers are too far behind, and `resume` is called (on any
  // thread, once) when they have caught up or the response was finished.
  bool mayReadMore(std::function<void()> resume);

  // Calls `wake` on `exec` now if anything is available, and after every
  // change until the response is finished. With `every_bytes`, only when
  // that much more body has arrived since the last call, and at the end:
  // a subscriber that writes the body away (the fill) is woken once per
  // piece worth a hand-off, not once per read from the origin. Keep it
  // well below kWindowBytes, or the fetcher may wait on a reader never woken.
  void subscribe(Executor exec, std::function<void()> wake, uint64_t every_bytes = 0);

  std::optional<Head> head() const;
  bool finished(Status* status = nullptr) const;
  uint64_t bytes() const;
  // Bytes held in memory now (for tests and metrics).
  uint64_t heldBytes() const;

 private:
  struct Chunk {
    std::shared_ptr<const std::string> data;
    uint64_t end = 0;  // body offset just past this chunk
  };
  struct Subscriber {
    Executor exec;
    std::function<void()> wake;
    uint64_t every_bytes = 0;
    uint64_t woken_at = 0;  // bytes_ when last woken
  };
  using Subscribers = std::vector<Subscriber>;
  using Wakes = std::vector<std::pair<Executor, std::function<void()>>>;
  // The subscribers to wake for a change that brought the body to bytes_
  // (all, for a head or the end).  REQUIRES: mu_ held.
  Wakes dueLocked(bool all);
  // Drops what no reader needs; returns the fetcher's resume callback when
  // it may read again.
  std::function<void()> trimLocked();
  uint64_t slowestOffsetLocked() const;
  void releaseReader(int id);

  const uint64_t start_seq_;
  mutable std::mutex mu_;
  std::optional<Head> head_;                     // GUARDED_BY(mu_)
  std::deque<Chunk> chunks_;                     // GUARDED_BY(mu_); chunk base_ is chunks_[0]
  size_t base_ = 0;                              // GUARDED_BY(mu_); chunks dropped so far
  uint64_t dropped_bytes_ = 0;                   // GUARDED_BY(mu_)
  uint64_t bytes_ = 0;                           // GUARDED_BY(mu_)
  std::vector<std::pair<int, size_t>> readers_;  // GUARDED_BY(mu_); id -> next chunk
  int next_reader_id_ = 0;                       // GUARDED_BY(mu_)
  std::function<void()> resume_;                 // GUARDED_BY(mu_)
  bool done_ = false;                            // GUARDED_BY(mu_)
  Status status_;                                // GUARDED_BY(mu_)
  Subscribers subs_;                             // GUARDED_BY(mu_)
};

}  // namespace tern::edge::cache

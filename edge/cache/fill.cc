#include "edge/cache/fill.h"

#include <mutex>

namespace tern::edge::cache {
namespace {

constexpr uint64_t kFillWakeBytes = 64 * 1024;
static_assert(kFillWakeBytes * 4 <= Inflight::kWindowBytes);

class Fill : public std::enable_shared_from_this<Fill> {
 public:
  Fill(TieredStore* store, std::shared_ptr<Inflight> inflight, storage::ObjectKey key,
       storage::EntryMeta meta, std::function<void(Status)> done)
      : store_(store),
        inflight_(std::move(inflight)),
        reader_(inflight_->read()),
        key_(std::move(key)),
        meta_(std::move(meta)),
        done_(std::move(done)) {}

  // Runs on the pool after every change of the inflight. Wake-ups may run
  // concurrently on several pool threads: one drains, the others only ask
  // it to look again.
  void wake() {
    {
      std::lock_guard lock(mu_);
      if (running_) {
        again_ = true;
        return;
      }
      running_ = true;
    }
    while (true) {
      step();
      std::lock_guard lock(mu_);
      if (!again_) {
        running_ = false;
        return;
      }
      again_ = false;
    }
  }

 private:
  void step() {
    if (finished_) return;
    if (!reader_.valid()) return end(Status::failedPrecondition("fill started too late"));
    if (!writer_) {
      auto w = store_->beginWrite(key_, meta_);
      if (!w.ok()) return end(w.status());
      writer_ = std::move(*w);
    }
    while (auto c = reader_.chunk(index_)) {
      ++index_;
      if (Status s = writer_->append(std::move(c)); !s.isOk()) return end(s);
    }
    Status fetched;
    if (!inflight_->finished(&fetched)) return;
    // Appended between the loop above and the finish: now that the fetch
    // is finished nothing more comes, and everything this reader has not
    // read is still held for it.
    while (auto c = reader_.chunk(index_)) {
      ++index_;
      if (Status s = writer_->append(std::move(c)); !s.isOk()) return end(s);
    }
    if (!fetched.isOk()) return end(fetched);
    end(writer_->commit());
  }

  void end(Status s) {
    finished_ = true;
    reader_.release();
    writer_.reset();  // aborts an uncommitted write
    auto done = std::move(done_);
    if (done) done(std::move(s));
  }

  TieredStore* store_;
  std::shared_ptr<Inflight> inflight_;
  Inflight::Reader reader_;
  storage::ObjectKey key_;
  storage::EntryMeta meta_;
  std::function<void(Status)> done_;
  std::unique_ptr<TieredStore::Writer> writer_;
  size_t index_ = 0;
  bool finished_ = false;  // used by the draining thread only
  std::mutex mu_;
  bool running_ = false;  // GUARDED_BY(mu_)
  bool again_ = false;    // GUARDED_BY(mu_)
};

}  // namespace

void startFill(TieredStore* store, Executor pool, const std::shared_ptr<Inflight>& inflight,
               storage::ObjectKey key, storage::EntryMeta meta, std::function<void(Status)> done) {
  auto fill =
      std::make_shared<Fill>(store, inflight, std::move(key), std::move(meta), std::move(done));
  // Woken per 64 KiB of body (a store chunk) and at the end, not per read
  // from the origin: a body of one chunk costs one hand-off to the pool.
  inflight->subscribe(
      std::move(pool), [fill] { fill->wake(); }, kFillWakeBytes);
}

}  // namespace tern::edge::cache

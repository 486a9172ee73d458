#pragma once
// AccessLog: one JSON object per line for each response (or a sample of
// them), written by a thread of its own: an event loop formats the line and
// queues it, and never waits for the file. When the queue is full (the
// disk cannot keep up) lines are dropped and counted, never the loop held.
//
//   {"ts":"2026-12-06T18:40:00.353Z","client":"10.0.0.7","method":"GET",
//    "host":"www.example.com","target":"/a?b","protocol":"HTTP/1.1",
//    "status":200,"bytes":16384,"duration_us":93,
//    "cache":"tern; hit; ttl=42"}
//
// Thread-safety: thread-safe. reopen() (log rotation: SIGHUP) and
// setSample() may be called while lines are written.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/metrics.h"
#include "common/result.h"

namespace tern::edge::server {

struct AccessLogOptions {
  std::string path;                   // appended to; empty: standard error
  double sample = 1.0;                // share of responses logged, 0 to 1
  size_t max_queued_bytes = 8 << 20;  // more waiting to be written: dropped
  uint32_t flush_interval_ms = 200;   // the longest a line waits
};

struct AccessRecord {
  std::string_view client, method, host, target, protocol, cache;
  int status = 0;
  uint64_t bytes = 0;
  int64_t duration_us = 0;
};

class AccessLog {
 public:
  static Result<std::unique_ptr<AccessLog>> open(AccessLogOptions options,
                                                 metrics::Registry* registry);
  ~AccessLog();  // writes what is queued
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Whether this response is one of the sample (cheap; per thread).
  bool sampled() const;
  void record(const AccessRecord& r);
  // Opens the file again under its name (after a log rotation moved it).
  Status reopen();
  void setSample(double sample) { sample_.store(sample, std::memory_order_relaxed); }

 private:
  static constexpr size_t kBatchBytes = 64 << 10;  // a write once this much is queued

  AccessLog(AccessLogOptions options, metrics::Registry* registry);
  Status openFile();
  void writerLoop();

  AccessLogOptions options_;
  std::atomic<double> sample_;
  metrics::Counter* written_;
  metrics::Counter* dropped_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::string queued_;     // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  int fd_ = -1;            // GUARDED_BY(file_mu_)
  std::mutex file_mu_;
  std::thread writer_;
};

}  // namespace tern::edge::server

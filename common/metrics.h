#pragma once
// Metrics in the Prometheus text exposition format (version 0.0.4).
//
// Counters, gauges and histograms are registered once by name (with an
// optional fixed label set) and updated lock-free; render() writes them all.
// Thread-safety: registration takes a lock; updates are atomic; render() may
// run concurrently with updates.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tern::metrics {

// One label `name="value"`, the value escaped as the text format requires
// (backslash, double quote and line feed), for values that come from
// clients (edge ids).
std::string label(const std::string& name, const std::string& value);

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Cumulative histogram with fixed upper bounds (seconds, by convention).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;
  // Approximate quantile from the buckets (upper bound of the bucket).
  double quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // one per bound, plus +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

// Latency buckets from 100 us to 10 s.
std::vector<double> latencyBuckets();

class Registry {
 public:
  // `labels` is the inside of {...}, e.g. `kind="memory"`, or empty.
  Counter& counter(const std::string& name, const std::string& help,
                   const std::string& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> bounds = latencyBuckets(),
                       const std::string& labels = {});
  // A gauge computed when rendered.
  void callbackGauge(const std::string& name, const std::string& help, std::function<double()> fn,
                     const std::string& labels = {});

  std::string render() const;

 private:
  struct Entry {
    std::string name, help, labels, type;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> fn;
  };
  Entry* find(const std::string& name, const std::string& labels);
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // GUARDED_BY(mu_); stable addresses
};

}  // namespace tern::metrics

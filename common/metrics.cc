#include "common/metrics.h"

#include <cmath>
#include <cstdio>
#include <set>

namespace tern::metrics {

std::string label(const std::string& name, const std::string& value) {
  std::string out = name + "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(std::max(0.0, v) * 1e6), std::memory_order_relaxed);
}

double Histogram::sum() const { return static_cast<double>(sum_micros_.load()) / 1e6; }

double Histogram::quantile(double q) const {
  uint64_t total = count();
  if (total == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    seen += bucket(i);
    if (seen >= rank) return bounds_[i];
  }
  return INFINITY;
}

std::vector<double> latencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

Registry::Entry* Registry::find(const std::string& name, const std::string& labels) {
  for (auto& e : entries_) {
    if (e.name == name && e.labels == labels) return &e;
  }
  return nullptr;
}

Counter& Registry::counter(const std::string& name, const std::string& help,
                           const std::string& labels) {
  std::lock_guard lock(mu_);
  if (Entry* e = find(name, labels); e && e->counter) return *e->counter;
  auto& e = entries_.emplace_back(Entry{name, help, labels, "counter", {}, {}, {}, {}});
  e.counter = std::make_unique<Counter>();
  return *e.counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help,
                       const std::string& labels) {
  std::lock_guard lock(mu_);
  if (Entry* e = find(name, labels); e && e->gauge) return *e->gauge;
  auto& e = entries_.emplace_back(Entry{name, help, labels, "gauge", {}, {}, {}, {}});
  e.gauge = std::make_unique<Gauge>();
  return *e.gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               std::vector<double> bounds, const std::string& labels) {
  std::lock_guard lock(mu_);
  if (Entry* e = find(name, labels); e && e->histogram) return *e->histogram;
  auto& e = entries_.emplace_back(Entry{name, help, labels, "histogram", {}, {}, {}, {}});
  e.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *e.histogram;
}

void Registry::callbackGauge(const std::string& name, const std::string& help,
                             std::function<double()> fn, const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& e = entries_.emplace_back(Entry{name, help, labels, "gauge", {}, {}, {}, std::move(fn)});
  (void)e;
}

namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string withLabels(const std::string& labels, const std::string& extra = {}) {
  if (labels.empty() && extra.empty()) return {};
  std::string out = "{" + labels;
  if (!labels.empty() && !extra.empty()) out += ",";
  return out + extra + "}";
}

}  // namespace

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  std::set<std::string> described;
  for (const auto& e : entries_) {
    if (described.insert(e.name).second) {
      out += "# HELP " + e.name + " " + e.help + "\n# TYPE " + e.name + " " + e.type + "\n";
    }
    if (e.counter) {
      out += e.name + withLabels(e.labels) + " " + std::to_string(e.counter->value()) + "\n";
    } else if (e.gauge) {
      out += e.name + withLabels(e.labels) + " " + std::to_string(e.gauge->value()) + "\n";
    } else if (e.fn) {
      out += e.name + withLabels(e.labels) + " " + number(e.fn()) + "\n";
    } else if (e.histogram) {
      const Histogram& h = *e.histogram;
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.bounds().size(); ++i) {
        cumulative += h.bucket(i);
        out += e.name + "_bucket" + withLabels(e.labels, "le=\"" + number(h.bounds()[i]) + "\"") +
               " " + std::to_string(cumulative) + "\n";
      }
      cumulative += h.bucket(h.bounds().size());
      out += e.name + "_bucket" + withLabels(e.labels, "le=\"+Inf\"") + " " +
             std::to_string(cumulative) + "\n";
      out += e.name + "_sum" + withLabels(e.labels) + " " + number(h.sum()) + "\n";
      out += e.name + "_count" + withLabels(e.labels) + " " + std::to_string(h.count()) + "\n";
    }
  }
  return out;
}

}  // namespace tern::metrics

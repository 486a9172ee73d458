#include "storage/eviction.h"

#include <boost/unordered/unordered_flat_map.hpp>

#include <algorithm>
#include <bit>

namespace tern::storage {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Ids are hashes already (of the object key); the flat map still mixes
// them, since it takes its bucket from the low bits.
struct IdHash {
  using is_avalanching = void;  // mixed here: the map need not mix again
  size_t operator()(uint64_t id) const { return static_cast<size_t>(mix(id)); }
};

// An LRU list of ids with byte weights; front is most recent.
struct Segment {
  std::list<uint64_t> order;
  uint64_t bytes = 0;
};

}  // namespace

// ---- FrequencySketch ----

FrequencySketch::FrequencySketch(size_t expected_items) { ensureCapacity(expected_items); }

void FrequencySketch::ensureCapacity(size_t items) {
  size_t words = std::bit_ceil(std::max<size_t>(items / 4, 64));
  if (words <= words_) return;
  storage_.assign(words + kBlockWords, 0);
  auto at = reinterpret_cast<uintptr_t>(storage_.data());
  table_ = storage_.data() + ((64 - at % 64) % 64) / sizeof(uint64_t);
  words_ = words;
  block_mask_ = words / kBlockWords - 1;
  sample_size_ = std::max<size_t>(items, 64) * 10;
  additions_ = 0;
}

uint64_t* FrequencySketch::block(uint64_t h) const {
  return table_ + (h & block_mask_) * kBlockWords;
}

// Counter i of an id: in word 2i or 2i+1 of its block (one bit of the
// counter hash picks which), at one of 16 places in it (four more bits).
void FrequencySketch::increment(uint64_t id) {
  const uint64_t h = mix(id);
  uint64_t* words = block(h);
  const uint64_t c = mix(h ^ 0x9e3779b97f4a7c15ULL);
  bool added = false;
  for (int i = 0; i < 4; ++i) {
    const uint64_t bits = c >> (i * 8);
    uint64_t& word = words[2 * i + (bits & 1)];
    const int shift = static_cast<int>((bits >> 1) & 15) * 4;
    if (((word >> shift) & 0xf) < 15) {
      word += uint64_t{1} << shift;
      added = true;
    }
  }
  if (added && ++additions_ >= sample_size_) reset();
}

uint32_t FrequencySketch::estimate(uint64_t id) const {
  const uint64_t h = mix(id);
  const uint64_t* words = block(h);
  const uint64_t c = mix(h ^ 0x9e3779b97f4a7c15ULL);
  uint32_t est = 15;
  for (int i = 0; i < 4; ++i) {
    const uint64_t bits = c >> (i * 8);
    const int shift = static_cast<int>((bits >> 1) & 15) * 4;
    est =
        std::min<uint32_t>(est, static_cast<uint32_t>((words[2 * i + (bits & 1)] >> shift) & 0xf));
  }
  return est;
}

void FrequencySketch::reset() {
  // Halve every counter: shift each word right by one and clear the bits that
  // crossed from one 4-bit counter into its neighbour.
  for (size_t i = 0; i < words_; ++i) table_[i] = (table_[i] >> 1) & 0x7777777777777777ULL;
  additions_ /= 2;
}

namespace {

// ---- LRU ----

class LruPolicy final : public EvictionPolicy {
 public:
  void insert(uint64_t id, uint64_t bytes) override {
    remove(id);
    seg_.order.push_front(id);
    seg_.bytes += bytes;
    index_[id] = {seg_.order.begin(), bytes};
  }
  void touch(uint64_t id) override {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    seg_.order.splice(seg_.order.begin(), seg_.order, it->second.pos);
  }
  void remove(uint64_t id) override {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    seg_.bytes -= it->second.bytes;
    seg_.order.erase(it->second.pos);
    index_.erase(it);
  }
  std::optional<uint64_t> evict() override {
    if (seg_.order.empty()) return std::nullopt;
    uint64_t id = seg_.order.back();
    remove(id);
    return id;
  }
  bool admits(uint64_t, uint64_t) override { return true; }
  bool contains(uint64_t id) const override { return index_.contains(id); }
  uint64_t bytes() const override { return seg_.bytes; }
  size_t size() const override { return index_.size(); }

 private:
  struct Node {
    std::list<uint64_t>::iterator pos;
    uint64_t bytes;
  };
  Segment seg_;
  boost::unordered_flat_map<uint64_t, Node, IdHash> index_;  // open addressing: one probe, no node
};

// ---- W-TinyLFU ----

class TinyLfuPolicy final : public EvictionPolicy {
 public:
  explicit TinyLfuPolicy(uint64_t capacity)
      : capacity_(std::max<uint64_t>(capacity, 1)),
        window_cap_(std::max<uint64_t>(capacity_ / 100, 1)),
        protected_cap_((capacity_ - window_cap_) * 8 / 10),
        sketch_(1024) {}

  void insert(uint64_t id, uint64_t bytes) override {
    remove(id);
    sketch_.ensureCapacity(index_.size() * 2 + 1);
    sketch_.increment(id);
    push(kWindow, id, bytes);
    // Overflowing window objects become candidates for the main space.
    while (seg_[kWindow].bytes > window_cap_ && seg_[kWindow].order.size() > 1) {
      move(seg_[kWindow].order.back(), kCandidate);
    }
  }

  void touch(uint64_t id) override {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    sketch_.increment(id);
    Node& node = it->second;
    switch (node.where) {
      case kWindow:
      case kProtected:
        seg_[node.where].order.splice(seg_[node.where].order.begin(), seg_[node.where].order,
                                      node.pos);
        break;
      case kCandidate:
      case kProbation:
        move(id, kProtected);
        while (seg_[kProtected].bytes > protected_cap_ && seg_[kProtected].order.size() > 1) {
          move(seg_[kProtected].order.back(), kProbation);
        }
        break;
    }
  }

  void remove(uint64_t id) override {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    Segment& seg = seg_[it->second.where];
    seg.bytes -= it->second.bytes;
    seg.order.erase(it->second.pos);
    index_.erase(it);
  }

  std::optional<uint64_t> evict() override {
    if (index_.empty()) return std::nullopt;
    uint64_t victim;
    if (!seg_[kCandidate].order.empty()) {
      // Admission: the oldest candidate against the probation victim.
      uint64_t candidate = seg_[kCandidate].order.back();
      Segment& main_victims = !seg_[kProbation].order.empty() ? seg_[kProbation] : seg_[kProtected];
      if (main_victims.order.empty()) {
        victim = candidate;
      } else {
        uint64_t incumbent = main_victims.order.back();
        if (sketch_.estimate(candidate) > sketch_.estimate(incumbent)) {
          victim = incumbent;
          move(candidate, kProbation);  // admitted
        } else {
          victim = candidate;
        }
      }
    } else if (!seg_[kProbation].order.empty()) {
      victim = seg_[kProbation].order.back();
    } else if (!seg_[kProtected].order.empty()) {
      victim = seg_[kProtected].order.back();
    } else {
      victim = seg_[kWindow].order.back();
    }
    remove(victim);
    return victim;
  }

  bool admits(uint64_t id, uint64_t bytes) override {
    if (index_.contains(id)) return true;
    sketch_.ensureCapacity(index_.size() * 2 + 1);
    sketch_.increment(id);
    if (this->bytes() + bytes <= capacity_) return true;
    const Segment& main = !seg_[kProbation].order.empty() ? seg_[kProbation] : seg_[kProtected];
    if (main.order.empty()) return true;
    return sketch_.estimate(id) > sketch_.estimate(main.order.back());
  }
  bool contains(uint64_t id) const override { return index_.contains(id); }
  uint64_t bytes() const override {
    uint64_t total = 0;
    for (const auto& s : seg_) total += s.bytes;
    return total;
  }
  size_t size() const override { return index_.size(); }

 private:
  enum Where : uint8_t { kWindow = 0, kCandidate = 1, kProbation = 2, kProtected = 3 };
  struct Node {
    std::list<uint64_t>::iterator pos;
    uint64_t bytes;
    Where where;
  };

  void push(Where where, uint64_t id, uint64_t bytes) {
    seg_[where].order.push_front(id);
    seg_[where].bytes += bytes;
    index_[id] = {seg_[where].order.begin(), bytes, where};
  }
  void move(uint64_t id, Where to) {
    Node& node = index_[id];
    Segment& from = seg_[node.where];
    from.bytes -= node.bytes;
    seg_[to].order.splice(seg_[to].order.begin(), from.order, node.pos);
    seg_[to].bytes += node.bytes;
    node.where = to;
  }

  uint64_t capacity_;
  uint64_t window_cap_;
  uint64_t protected_cap_;
  Segment seg_[4];
  boost::unordered_flat_map<uint64_t, Node, IdHash> index_;  // open addressing: one probe, no node
  FrequencySketch sketch_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> makeEvictionPolicy(EvictionKind kind, uint64_t capacity_bytes) {
  if (kind == EvictionKind::kLru) return std::make_unique<LruPolicy>();
  return std::make_unique<TinyLfuPolicy>(capacity_bytes);
}

}  // namespace tern::storage

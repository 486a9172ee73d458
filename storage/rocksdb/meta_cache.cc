#include "storage/rocksdb/meta_cache.h"

#include <algorithm>

namespace tern::storage {

MetaCache::MetaCache(uint64_t capacity_bytes)
    : capacity_(capacity_bytes), shard_capacity_(capacity_bytes / kShards), shards_(kShards) {}

MetaCache::Shard& MetaCache::shardOf(std::string_view key, size_t* index) {
  const size_t i = Hash{}(key) % kShards;
  if (index) *index = i;
  return shards_[i];
}

std::shared_ptr<const format::MetaRecord> MetaCache::find(std::string_view key) {
  if (!enabled()) return nullptr;
  Shard& s = shardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  it->second.used = true;
  return it->second.record;
}

MetaCache::Ticket MetaCache::ticket(std::string_view key) {
  Ticket t;
  if (!enabled()) return t;
  Shard& s = shardOf(key, &t.shard);
  std::lock_guard lock(s.mu);
  t.generation = s.generation;
  return t;
}

void MetaCache::insert(const Ticket& t, std::string_view key,
                       std::shared_ptr<const format::MetaRecord> record, size_t charge) {
  if (!enabled() || charge > shard_capacity_) return;
  Shard& s = shards_[t.shard];
  std::lock_guard lock(s.mu);
  if (s.writers > 0 || s.generation != t.generation) return;  // the store changed since it was read
  auto it = s.map.find(key);
  if (it != s.map.end()) {
    s.bytes -= it->second.charge;
    it->second.used = true;
  } else {
    s.lru.emplace_front(key);
    it = s.map.try_emplace(std::string_view(s.lru.front())).first;
    it->second.lru = s.lru.begin();
  }
  it->second.record = std::move(record);
  it->second.charge = charge;
  s.bytes += charge;
  while (s.bytes > shard_capacity_ && !s.lru.empty()) {
    auto victim = s.map.find(std::string_view(s.lru.back()));
    if (victim->second.used) {
      // Used since it was last passed over: a second chance, at the front.
      victim->second.used = false;
      s.lru.splice(s.lru.begin(), s.lru, victim->second.lru);
      continue;
    }
    s.bytes -= victim->second.charge;
    s.map.erase(victim);  // before its key goes with the list node
    s.lru.pop_back();
  }
}

MetaCache::Writing MetaCache::writing(const std::vector<std::string_view>& keys, bool every_key) {
  Writing w;
  if (!enabled()) return w;
  w.cache_ = this;
  if (every_key) {
    w.shards_ = (kShards == 32) ? ~0u : ((1u << kShards) - 1);
    for (auto& s : shards_) {
      std::lock_guard lock(s.mu);
      ++s.writers;
      ++s.generation;
      s.map.clear();
      s.lru.clear();
      s.bytes = 0;
    }
    return w;
  }
  for (std::string_view key : keys) {
    size_t i = 0;
    Shard& s = shardOf(key, &i);
    std::lock_guard lock(s.mu);
    if (!(w.shards_ & (1u << i))) {
      w.shards_ |= 1u << i;
      ++s.writers;
    }
    ++s.generation;
    auto it = s.map.find(key);
    if (it == s.map.end()) continue;
    s.bytes -= it->second.charge;
    auto node = it->second.lru;
    s.map.erase(it);  // before its key goes with the list node
    s.lru.erase(node);
  }
  return w;
}

void MetaCache::endWriting(uint32_t shards) {
  for (size_t i = 0; i < kShards; ++i) {
    if (!(shards & (1u << i))) continue;
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    --s.writers;
    ++s.generation;
  }
}

MetaCache::Writing::~Writing() {
  if (cache_) cache_->endWriting(shards_);
}

uint64_t MetaCache::bytes() const {
  uint64_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    total += s.bytes;
  }
  return total;
}

size_t MetaCache::size() const {
  size_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    total += s.map.size();
  }
  return total;
}

}  // namespace tern::storage

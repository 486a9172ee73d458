// Storage micro-benchmarks (Google Benchmark):
//   BM_Put/<store>/<bytes>, BM_Get/<store>/<bytes>   object write and read;
//                             stores: 0 memory, 1 disk, 2 disk with bodies
//                             as chunks in RocksDB (body_files off)
//   BM_GetWorkingSet/<store>/<objects>   random reads of 16 KiB objects
//                             over a working set of N (50,000: 800 MB, far
//                             bigger than RocksDB's 64 MiB block cache);
//                             stores: 0 memory, 1 disk, 2 disk without its
//                             metadata kept in memory (meta_cache_bytes 0),
//                             3 disk with bodies as chunks
//   BM_PolicyTouch/<objects>  the eviction policy's bookkeeping of one hit
//                             (W-TinyLFU) over N objects, at random
//   BM_PurgeApply/<matches>   time to apply one purge that matches N objects
//                             (1, 1k, 100k, 1M): must stay flat
//   BM_ReopenFirstHit/<objects>   reopen a store holding N objects and serve
//                             the first hit
// Stores live under $TERN_BENCH_DIR (default: a temporary folder).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/hash.h"
#include "storage/eviction.h"
#include "storage/memory/memory_store.h"
#include "storage/rocksdb/rocks_store.h"
#include "tests/support/temp_dir.h"

using namespace tern;
using namespace tern::storage;

namespace {

tern::testing::TempDir& benchDir() {
  static tern::testing::TempDir dir;
  return dir;
}

ObjectKey keyOf(uint64_t i, std::string_view host = "bench.example") {
  CacheKey k;
  k.scheme = "http";
  k.host = std::string(host);
  k.path = "/objects/" + std::to_string(i);
  return {std::move(k), {}};
}

void put(ObjectStore& st, const ObjectKey& k, const std::string& body,
         std::vector<std::string> tags = {}) {
  EntryMeta m;
  m.headers = {{"content-type", "application/octet-stream"}};
  m.tags = std::move(tags);
  m.store_seq = st.appliedSeq();
  auto w = st.beginWrite(k, m);
  if (!w.ok() || !(*w)->append(body).isOk() || !(*w)->commit().isOk()) std::abort();
}

// Looks `k` up and reads its body whole; its length.
size_t readWhole(ObjectStore& st, const ObjectKey& k) {
  auto r = st.lookup(k);
  if (!r.ok()) std::abort();
  size_t got = 0;
  while (true) {
    auto c = r->body->next();
    if (!c.ok()) std::abort();
    if (c->empty()) return got;
    got += c->size();
  }
}

std::unique_ptr<RocksStore> openRocks(const std::string& name, uint64_t budget = 8ULL << 30,
                                      uint64_t meta_cache_bytes = 64ULL << 20,
                                      bool body_files = true) {
  RocksStoreOptions o;
  o.meta_cache_bytes = meta_cache_bytes;
  o.body_files = body_files;
  o.path = benchDir().sub(name);
  o.budget_bytes = budget;
  o.max_object_bytes = 64ULL << 20;
  auto st = RocksStore::open(o);
  if (!st.ok()) std::abort();
  return std::move(*st);
}

std::unique_ptr<ObjectStore> makeStore(int kind, const std::string& name) {
  if (kind == 0) {
    MemoryStoreOptions o;
    o.budget_bytes = 4ULL << 30;
    o.max_object_bytes = 64ULL << 20;
    return std::make_unique<MemoryStore>(o);
  }
  return openRocks(name, 8ULL << 30, 64ULL << 20, kind != 2);
}

const char* labelOf(int kind) {
  return kind == 0 ? "memory" : kind == 1 ? "rocksdb" : "rocksdb, bodies as chunks";
}

void BM_Put(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0));
  const size_t bytes = static_cast<size_t>(state.range(1));
  auto st = makeStore(kind, "put-" + std::to_string(kind) + "-" + std::to_string(bytes));
  std::string body(bytes, 'x');
  uint64_t i = 0;
  for (auto _ : state) put(*st, keyOf(i++ % 4096), body);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetLabel(labelOf(kind));
}

void BM_Get(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0));
  const size_t bytes = static_cast<size_t>(state.range(1));
  auto st = makeStore(kind, "get-" + std::to_string(kind) + "-" + std::to_string(bytes));
  std::string body(bytes, 'y');
  const uint64_t n = 256;
  for (uint64_t i = 0; i < n; ++i) put(*st, keyOf(i), body);
  uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(readWhole(*st, keyOf(i++ % n)));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetLabel(labelOf(kind));
}

// Stores of 16 KiB objects (each filled once per process), read at random.
void BM_GetWorkingSet(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0));
  const uint64_t n = static_cast<uint64_t>(state.range(1));
  const std::string body(16 * 1024, 'w');
  static std::map<std::pair<int, uint64_t>, std::unique_ptr<ObjectStore>> stores;
  auto& st = stores[{kind, n}];
  if (!st) {
    const std::string name = "ws-" + std::to_string(kind) + "-" + std::to_string(n);
    if (kind == 0) {
      st = makeStore(0, name);
    } else {
      auto rocks = openRocks(name, 8ULL << 30, kind == 2 ? 0 : 64ULL << 20, kind != 3);
      rocks->waitForIndex();
      st = std::move(rocks);
    }
    for (uint64_t i = 0; i < n; ++i) put(*st, keyOf(i), body);
  }
  // A keys' list made up front: building keys is not what is measured.
  std::vector<ObjectKey> keys;
  for (uint64_t i = 0; i < n; ++i) keys.push_back(keyOf(i));
  uint64_t x = 88172645463325252ULL;  // xorshift64
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    benchmark::DoNotOptimize(readWhole(*st, keys[x % n]));
  }
  state.SetLabel(kind == 0   ? "memory"
                 : kind == 1 ? "rocksdb"
                 : kind == 2 ? "rocksdb, no kept metadata"
                             : "rocksdb, bodies as chunks");
}

// What a hit costs the eviction policy: over 50,000 objects and more, the
// lookups in its index and sketch are cache misses, not arithmetic.
void BM_PolicyTouch(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  auto policy = makeEvictionPolicy(EvictionKind::kTinyLfu, n * 16384);
  for (uint64_t i = 0; i < n; ++i) policy->insert(hash64(std::to_string(i)), 16384);
  std::vector<uint64_t> ids;
  for (uint64_t i = 0; i < n; ++i) ids.push_back(hash64(std::to_string(i)));
  uint64_t x = 88172645463325252ULL;
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    policy->touch(ids[x % n]);
  }
}

// One shared store per match count: N objects tagged "hot", plus the same
// number under one host prefix.
RocksStore& purgeStore(int64_t matches) {
  static std::map<int64_t, std::unique_ptr<RocksStore>> stores;
  auto& st = stores[matches];
  if (!st) {
    st = openRocks("purge-" + std::to_string(matches));
    std::string body(100, 'p');
    for (int64_t i = 0; i < matches; ++i)
      put(*st, keyOf(static_cast<uint64_t>(i), "purge.example"), body, {"hot"});
    put(*st, keyOf(0, "other.example"), body, {"cold"});
  }
  return *st;
}

void BM_PurgeApply(benchmark::State& state) {
  RocksStore& st = purgeStore(state.range(0));
  const SelectorKind kinds[] = {SelectorKind::kTag, SelectorKind::kHost, SelectorKind::kPrefix};
  const char* values[] = {"hot", "purge.example", "purge.example/objects/"};
  size_t k = 0;
  for (auto _ : state) {
    // Alternate selectors; soft mode keeps the objects so every round
    // matches all N of them again.
    size_t i = k++ % 3;
    PurgeSpec spec{st.appliedSeq() + 1, PurgeMode::kSoft, {{kinds[i], values[i]}}};
    if (!st.applyPurge(spec).isOk()) std::abort();
    state.PauseTiming();
    // Confirm the effect is immediate on a matching object.
    auto r = st.lookup(keyOf(0, "purge.example"));
    if (!r.ok() || !r->must_revalidate) std::abort();
    state.ResumeTiming();
  }
  state.counters["matching_objects"] = static_cast<double>(state.range(0));
}

void BM_ReopenFirstHit(benchmark::State& state) {
  const int64_t objects = state.range(0);
  const std::string name = "reopen-" + std::to_string(objects);
  static std::map<int64_t, bool> filled;
  if (!filled[objects]) {
    auto st = openRocks(name);
    std::string body(200, 'r');
    for (int64_t i = 0; i < objects; ++i) put(*st, keyOf(static_cast<uint64_t>(i)), body);
    filled[objects] = true;
  }
  for (auto _ : state) {
    int64_t t0 = steadyNowUs();
    auto st = openRocks(name);
    auto r = st->lookup(keyOf(static_cast<uint64_t>(objects / 2)));
    if (!r.ok() || !r->body->next().ok()) std::abort();
    state.SetIterationTime(static_cast<double>(steadyNowUs() - t0) / 1e6);
    state.PauseTiming();
    st.reset();  // closing waits for the background index loader to stop
    state.ResumeTiming();
  }
  state.counters["objects"] = static_cast<double>(objects);
}

}  // namespace

BENCHMARK(BM_Put)
    ->ArgsProduct({{0, 1, 2}, {1024, 16 * 1024, 256 * 1024, 1024 * 1024}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Get)
    ->ArgsProduct({{0, 1, 2}, {1024, 16 * 1024, 256 * 1024, 1024 * 1024}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GetWorkingSet)
    ->ArgsProduct({{0, 1, 2, 3}, {256, 50000}})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0);
BENCHMARK(BM_PolicyTouch)->Arg(256)->Arg(50000)->Arg(500000);
BENCHMARK(BM_PurgeApply)
    ->Arg(1)
    ->Arg(1000)
    ->Arg(100000)
    ->Arg(1000000)
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(300);
BENCHMARK(BM_ReopenFirstHit)
    ->Arg(1000000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(4);

BENCHMARK_MAIN();

// Writes, replaces and purges objects in a RocksStore forever, as fast as it
// can, until it is killed. Used by store_crash_test.
//   store_crash_writer <store-path> <seed>

#include <cstdlib>
#include <iostream>
#include <random>

#include "storage/rocksdb/rocks_store.h"
#include "tests/integration/storage/crash_workload.h"

using namespace tern;
using namespace tern::storage;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: store_crash_writer <path> <seed>\n";
    return 2;
  }
  RocksStoreOptions o;
  o.path = argv[1];
  o.chunk_bytes = 16 * 1024;
  o.budget_bytes = 8ULL << 20;  // small: eviction runs during the workload
  auto store = RocksStore::open(o);
  if (!store.ok()) {
    std::cerr << "open failed: " << store.status().toString() << "\n";
    return 1;
  }
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  uint64_t version = static_cast<uint64_t>(rng() % 1000000) * 1000;
  std::cout << "ready" << std::endl;
  while (true) {
    uint64_t k = rng() % 200;
    uint64_t action = rng() % 100;
    if (action < 5) {
      PurgeSpec spec{(*store)->appliedSeq() + 1,
                     rng() % 2 ? PurgeMode::kHard : PurgeMode::kSoft,
                     {{SelectorKind::kTag, "group" + std::to_string(k % 10)}}};
      (void)(*store)->applyPurge(spec);
      continue;
    }
    if (action < 8) {
      (void)(*store)->removeUrl(CacheKey::fromUrl(tern::testing::crashUrl(k)).value());
      continue;
    }
    ++version;
    size_t size = rng() % 4 == 0 ? rng() % (300 * 1024) : rng() % 4096;
    std::string body = tern::testing::crashBody(k, version, size);
    EntryMeta m;
    m.headers = {{"x-version", std::to_string(version)}, {"x-size", std::to_string(size)}};
    m.tags = {"group" + std::to_string(k % 10)};
    m.store_seq = (*store)->appliedSeq();
    auto w = (*store)->beginWrite({CacheKey::fromUrl(tern::testing::crashUrl(k)).value(), {}}, m);
    if (!w.ok()) continue;
    bool ok = true;
    for (size_t off = 0; off < size && ok; off += 5000) {
      ok = (*w)->append(std::string_view(body).substr(off, 5000)).isOk();
    }
    if (ok) (void)(*w)->commit();
  }
}

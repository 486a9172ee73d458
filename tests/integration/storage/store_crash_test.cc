// Crash safety of the persistent store (Guarantee 4): a writer process is
// SIGKILLed at random points, many times; after each kill the store must
// open, and every object it returns must be whole and exactly the bytes that
// were written for its version.

#include <gtest/gtest.h>
#include <signal.h>

#include <random>
#include <thread>

#include "storage/rocksdb/rocks_store.h"
#include "tests/integration/storage/crash_workload.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tern::storage {
namespace {

TEST(StoreCrashTest, KilledWriterNeverLeavesATornOrCorruptObject) {
  tern::testing::TempDir dir;
  const std::string path = dir.sub("store");
  const std::string writer = tern::testing::selfDir() + "/store_crash_writer";
  const int iterations =
      std::getenv("TERN_CRASH_ITERATIONS") ? std::atoi(std::getenv("TERN_CRASH_ITERATIONS")) : 25;
  std::mt19937 rng(20261123);
  uint64_t last_seq = 0;
  size_t verified = 0, stale = 0;
  for (int iter = 0; iter < iterations; ++iter) {
    {
      tern::testing::Process p({writer, path, std::to_string(rng())}, dir.sub("writer.log"));
      std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
      ASSERT_TRUE(p.running()) << "writer exited early; see " << dir.sub("writer.log");
      p.signal(SIGKILL);
      p.wait(5000);
    }
    RocksStoreOptions o;
    o.path = path;
    o.background = false;
    auto store = RocksStore::open(o);
    ASSERT_TRUE(store.ok()) << store.status().toString();
    ASSERT_FALSE((*store)->openReport().recreated) << (*store)->openReport().reason;
    EXPECT_GE((*store)->appliedSeq(), last_seq) << "an applied purge was lost";
    last_seq = (*store)->appliedSeq();
    for (uint64_t k = 0; k < 200; ++k) {
      auto r = (*store)->lookup({CacheKey::fromUrl(tern::testing::crashUrl(k)).value(), {}});
      if (r.status().isNotFound()) continue;
      ASSERT_TRUE(r.ok()) << "iteration " << iter << " key " << k << ": " << r.status().toString();
      uint64_t version = std::stoull(r->meta->headers.at(0).value);
      size_t size = std::stoull(r->meta->headers.at(1).value);
      std::string body;
      while (true) {
        auto c = r->body->next();
        ASSERT_TRUE(c.ok()) << "iteration " << iter << " key " << k << ": "
                            << c.status().toString();
        if (c->empty()) break;
        body.append(*c);
      }
      ASSERT_EQ(body.size(), size);
      ASSERT_TRUE(body == tern::testing::crashBody(k, version, size))
          << "wrong bytes for key " << k;
      ++verified;
      if (r->must_revalidate) ++stale;
    }
    EXPECT_EQ((*store)->stats().corrupt_objects, 0u);
  }
  RecordProperty("objects_verified", std::to_string(verified));
  std::cout << "crash iterations=" << iterations << " objects verified=" << verified
            << " (soft-purged " << stale << ") applied_seq=" << last_seq << "\n";
  EXPECT_GT(verified, 0u);
  EXPECT_GT(last_seq, 0u);
}

}  // namespace
}  // namespace tern::storage

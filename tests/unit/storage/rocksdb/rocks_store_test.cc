// RocksStore behaviour beyond the conformance suite: persistence, crash
// left-overs, corruption, and opening broken stores.

#include "storage/rocksdb/rocks_store.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "storage/format/codec.h"
#include "storage/format/format.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/storage/rocksdb/store_access.h"

namespace tern::storage {
namespace {

using store_access::get;
using store_access::key;
using store_access::put;

namespace fs = std::filesystem;

class RocksStoreTest : public ::testing::Test {
 protected:
  RocksStoreOptions opts() {
    RocksStoreOptions o;
    o.path = dir_.sub("store");
    o.chunk_bytes = 100;
    o.background = false;
    return o;
  }
  // Bodies as chunks in RocksDB (body_files off): how format 2 stored them.
  RocksStoreOptions chunked() {
    RocksStoreOptions o = opts();
    o.body_files = false;
    return o;
  }
  std::unique_ptr<RocksStore> open(const RocksStoreOptions& o) {
    return store_access::openStore(o);
  }
  testing::TempDir dir_;
};

TEST_F(RocksStoreTest, ObjectsPurgesAndCountersSurviveReopen) {
  std::string big(1000, 'q');
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/1"), "one", {"t1"}).isOk());
    ASSERT_TRUE(put(*st, key("http://a.example/2"), big, {"t2"}).isOk());
    ASSERT_TRUE(put(*st, key("http://a.example/3"), "three").isOk());
    ASSERT_TRUE(st->applyPurge({7, PurgeMode::kHard, {{SelectorKind::kTag, "t1"}}}).isOk());
    ASSERT_TRUE(st->applyPurge({8, PurgeMode::kSoft, {{SelectorKind::kTag, "t2"}}}).isOk());
  }
  auto st = open(opts());
  EXPECT_EQ(st->appliedSeq(), 8u);
  EXPECT_EQ(get(*st, key("http://a.example/1")), "<miss>");
  bool reval = false;
  EXPECT_EQ(get(*st, key("http://a.example/2"), &reval), big);
  EXPECT_TRUE(reval);
  EXPECT_EQ(get(*st, key("http://a.example/3"), &reval), "three");
  EXPECT_FALSE(reval);
  EXPECT_EQ(st->stats().objects, 3u);  // the purged one is still there until clean-up
  EXPECT_EQ(st->stats().purge_markers, 2u);
  st->runMaintenanceForTesting();
  EXPECT_EQ(st->stats().objects, 2u);
  EXPECT_EQ(st->stats().purge_markers, 0u);
  EXPECT_EQ(get(*st, key("http://a.example/2"), &reval), big);
  EXPECT_TRUE(reval);  // flagged stale on disk by the clean-up
}

TEST_F(RocksStoreTest, AppliedSeqAndMarkersAreOneAtomicWrite) {
  // applyPurges writes markers and applied_seq in one synced batch; after a
  // reopen both are there or neither. Check that a batch of purges lands whole.
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/x"), "x", {"a"}).isOk());
    std::vector<PurgeSpec> specs;
    for (uint64_t s = 1; s <= 100; ++s) {
      specs.push_back({s, PurgeMode::kHard, {{SelectorKind::kTag, "z" + std::to_string(s)}}});
    }
    specs.push_back({101, PurgeMode::kHard, {{SelectorKind::kTag, "a"}}});
    ASSERT_TRUE(st->applyPurges(specs).isOk());
  }
  auto st = open(opts());
  EXPECT_EQ(st->appliedSeq(), 101u);
  EXPECT_EQ(st->stats().purge_markers, 101u);
  EXPECT_EQ(get(*st, key("http://a.example/x")), "<miss>");
}

TEST_F(RocksStoreTest, CorruptChunkIsAMissAndIsRemoved) {
  auto st = open(chunked());
  ASSERT_TRUE(put(*st, key("http://a.example/c"), std::string(250, 'c')).isOk());
  // Find the object id through the metadata and damage its second chunk.
  std::string meta_key = format::metaKey(key("http://a.example/c"));
  auto r = st->lookup(key("http://a.example/c"));
  ASSERT_TRUE(r.ok());
  // Object ids start at the reserved block's base; the first object is id 0.
  ASSERT_TRUE(st->putRawForTesting("body", format::chunkKey(0, 1), "garbage-bytes").isOk());
  std::string got = get(*st, key("http://a.example/c"));
  EXPECT_NE(got.find("Corruption"), std::string::npos) << got;
  EXPECT_EQ(get(*st, key("http://a.example/c")), "<miss>");
  EXPECT_EQ(st->stats().corrupt_objects, 1u);
  EXPECT_EQ(st->stats().objects, 0u);
}

TEST_F(RocksStoreTest, ValidChunkOfAnotherObjectIsCaughtByBodyHash) {
  auto st = open(chunked());
  ASSERT_TRUE(put(*st, key("http://a.example/p"), std::string(150, 'p')).isOk());  // id 0
  // A chunk with a valid checksum but the wrong bytes.
  ASSERT_TRUE(st->putRawForTesting("body", format::chunkKey(0, 1),
                                   format::encodeChunk(std::string(50, 'X')))
                  .isOk());
  std::string got = get(*st, key("http://a.example/p"));
  EXPECT_NE(got.find("Corruption"), std::string::npos) << got;
}

TEST_F(RocksStoreTest, OneChunkObjectIsCheckedByItsBodyHash) {
  // An object of one chunk is verified by its body hash alone: damaged
  // bytes, a well-formed chunk of other bytes, and a short record all fail.
  auto st = open(chunked());
  const std::vector<std::string> damages = {"garbage-bytes",
                                            format::encodeChunk(std::string(50, 'X')), "ab",
                                            format::encodeChunk(std::string(49, 'o'))};
  uint64_t id = 0;
  for (const auto& damage : damages) {
    ASSERT_TRUE(put(*st, key("http://a.example/one"), std::string(50, 'o')).isOk());
    ASSERT_TRUE(st->putRawForTesting("body", format::chunkKey(id++, 0), damage).isOk());
    std::string got = get(*st, key("http://a.example/one"));
    EXPECT_NE(got.find("Corruption"), std::string::npos) << got;
    EXPECT_EQ(get(*st, key("http://a.example/one")), "<miss>");
  }
  EXPECT_EQ(st->stats().corrupt_objects, damages.size());
  ASSERT_TRUE(put(*st, key("http://a.example/one"), std::string(50, 'o')).isOk());
  EXPECT_EQ(get(*st, key("http://a.example/one")), std::string(50, 'o'));
}

TEST_F(RocksStoreTest, CorruptMetadataIsAMissAndIsRemoved) {
  auto st = open(opts());
  ASSERT_TRUE(put(*st, key("http://a.example/m"), "m").isOk());
  ASSERT_TRUE(
      st->putRawForTesting("meta", format::metaKey(key("http://a.example/m")), "TRN\x01junk")
          .isOk());
  EXPECT_NE(get(*st, key("http://a.example/m")).find("Corruption"), std::string::npos);
  EXPECT_EQ(get(*st, key("http://a.example/m")), "<miss>");
}

TEST_F(RocksStoreTest, HalfWrittenObjectIsRemovedAtOpen) {
  // A child process writes three chunks of an object and dies without
  // committing or aborting, as a crash would leave it.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto st = RocksStore::open(chunked());
    if (!st.ok()) _exit(1);
    EntryMeta m;
    auto w = (*st)->beginWrite(key("http://a.example/half"), m);
    if (!w.ok() || !(*w)->append(std::string(350, 'h')).isOk()) _exit(1);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto st = open(chunked());
  EXPECT_EQ(st->openReport().pending_removed, 1u);
  EXPECT_EQ(get(*st, key("http://a.example/half")), "<miss>");
}

TEST_F(RocksStoreTest, BrokenStoreIsMovedAsideAndAFreshOneStarts) {
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/1"), "one").isOk());
  }
  // Destroy the manifest pointer.
  {
    std::ofstream current(opts().path + "/CURRENT", std::ios::trunc);
    current << "MANIFEST-999999\n";
  }
  ::testing::internal::CaptureStderr();
  auto st = open(opts());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(st->openReport().recreated);
  EXPECT_TRUE(fs::exists(st->openReport().moved_aside_to));
  EXPECT_NE(log.find("moved aside"), std::string::npos);
  EXPECT_EQ(get(*st, key("http://a.example/1")), "<miss>");
  EXPECT_TRUE(put(*st, key("http://a.example/1"), "again").isOk());
  EXPECT_EQ(get(*st, key("http://a.example/1")), "again");
}

// A store of format version 1 (records without sections) is read as it is
// and marked 2; only an unknown version is moved aside.
TEST_F(RocksStoreTest, AStoreOfVersionOneIsReadAndMarkedTwo) {
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/old"), "kept").isOk());
    ASSERT_TRUE(
        st->putRawForTesting("default", format::kFormatKey, format::encodeFixed64(1)).isOk());
  }
  ::testing::internal::CaptureStderr();
  auto st = open(opts());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(st, nullptr);
  EXPECT_FALSE(st->openReport().recreated) << log;
  EXPECT_NE(log.find("store format upgraded"), std::string::npos) << log;
  EXPECT_EQ(get(*st, key("http://a.example/old")), "kept");
  st.reset();
  ::testing::internal::CaptureStderr();
  st = open(opts());
  log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("store format upgraded"), std::string::npos) << "marked 2 the first time";
  EXPECT_EQ(get(*st, key("http://a.example/old")), "kept");
}

TEST_F(RocksStoreTest, UnknownFormatVersionIsMovedAside) {
  {
    auto st = open(opts());
    ASSERT_TRUE(
        st->putRawForTesting("default", format::kFormatKey, format::encodeFixed64(999)).isOk());
  }
  ::testing::internal::CaptureStderr();
  auto st = open(opts());
  ::testing::internal::GetCapturedStderr();
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(st->openReport().recreated);
  // The control for the check above: a broken store IS moved aside, under
  // the name that check looks for.
  const std::string aside = fs::path(opts().path).filename().string() + ".broken-";
  int moved = 0;
  for (const auto& e : fs::directory_iterator(fs::path(opts().path).parent_path()))
    moved += e.path().filename().string().rfind(aside, 0) == 0;
  EXPECT_EQ(moved, 1);
}

TEST_F(RocksStoreTest, StoreInUseIsNotMovedAside) {
  auto first = open(opts());
  auto second = RocksStore::open(opts());
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  // Nothing named "<path>.broken-<ms>" (how a broken store is moved aside).
  const fs::path dir = fs::path(opts().path).parent_path();
  const std::string aside = fs::path(opts().path).filename().string() + ".broken";
  int moved = 0;
  for (const auto& e : fs::directory_iterator(dir))
    moved += e.path().filename().string().rfind(aside, 0) == 0;
  EXPECT_EQ(moved, 0) << "a store in use was moved aside";
  EXPECT_TRUE(put(*first, key("http://a.example/ok"), "ok").isOk());
}

TEST_F(RocksStoreTest, ObjectIdsAreNeverReusedAcrossRestarts) {
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/1"), "one").isOk());
  }
  auto st = open(opts());
  ASSERT_TRUE(put(*st, key("http://a.example/2"), "two").isOk());
  // The second object lives in the next id block: chunk 0 of id 0 is still
  // the first object's.
  EXPECT_EQ(get(*st, key("http://a.example/1")), "one");
  EXPECT_EQ(get(*st, key("http://a.example/2")), "two");
}

TEST_F(RocksStoreTest, IndexLoadsInBackgroundAndBudgetHoldsAfterReopen) {
  auto o = opts();
  o.budget_bytes = 1 << 20;
  {
    auto st = open(o);
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(
          put(*st, key("http://a.example/" + std::to_string(i)), std::string(3000, 'x')).isOk());
    }
  }
  o.budget_bytes = 300 * 1024;  // shrink: the loader evicts down to the budget
  o.background = true;
  auto st = open(o);
  st->waitForIndex();
  for (int i = 0; i < 200 && st->stats().bytes > o.budget_bytes; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(st->stats().bytes, o.budget_bytes);
  EXPECT_GT(st->stats().bytes, o.budget_bytes * 9 / 10);
}

}  // namespace
}  // namespace tern::storage

namespace tern::storage {
namespace {

// A full disk: writes fail with a clear error, nothing crashes, and objects
// already stored keep being served. Needs root to mount a small tmpfs.
TEST(RocksStoreDiskFullTest, WritesFailCleanlyAndReadsGoOn) {
  testing::TempDir dir;
  const std::string mnt = dir.sub("small");
  fs::create_directories(mnt);
  if (geteuid() != 0 ||
      std::system(("mount -t tmpfs -o size=24m tmpfs " + mnt + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "needs root to mount a small tmpfs";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { [[maybe_unused]] int r = std::system(("umount -l " + path).c_str()); }
  } unmount{mnt};
  Status last;
  {
    RocksStoreOptions o;
    o.path = mnt + "/store";
    o.background = false;
    o.budget_bytes = 1ULL << 30;  // larger than the disk
    o.min_free_disk_bytes = 4ULL << 20;
    auto st = RocksStore::open(o);
    ASSERT_TRUE(st.ok()) << st.status().toString();
    const std::string body(256 * 1024, 'f');
    int stored = 0;
    for (int i = 0; i < 400; ++i) {
      EntryMeta m;
      auto w = (*st)->beginWrite(key("http://full.example/" + std::to_string(i)), m);
      if (!w.ok()) {
        last = w.status();
        break;
      }
      last = (*w)->append(body);
      if (last.isOk()) last = (*w)->commit();
      if (!last.isOk()) break;
      ++stored;
    }
    ASSERT_FALSE(last.isOk()) << "the disk never filled up";
    EXPECT_EQ(last.code(), StatusCode::kResourceExhausted) << last.toString();
    EXPECT_NE(last.message().find("disk nearly full"), std::string::npos);
    ASSERT_GT(stored, 0);
    auto r = (*st)->lookup(key("http://full.example/0"));
    ASSERT_TRUE(r.ok()) << r.status().toString();
    size_t n = 0;
    while (true) {
      auto c = r->body->next();
      ASSERT_TRUE(c.ok()) << c.status().toString();
      if (c->empty()) break;
      n += c->size();
    }
    EXPECT_EQ(n, body.size());
  }
}

// The metadata of disk objects is kept in memory after a lookup; every kind
// of write of a key must be seen by the next lookup, as without it.
TEST_F(RocksStoreTest, KeptMetadataFollowsEveryWriteOfItsKey) {
  auto st = open(opts());
  const auto k = key("http://a.example/m");
  ASSERT_TRUE(put(*st, k, "one", {"t"}).isOk());
  EXPECT_EQ(get(*st, k), "one");
  EXPECT_EQ(get(*st, k), "one");
  EXPECT_EQ(st->stats().meta_cache_misses, 1u);
  EXPECT_EQ(st->stats().meta_cache_hits, 1u);
  EXPECT_GT(st->stats().meta_cache_bytes, 0u);

  // A new version.
  ASSERT_TRUE(put(*st, k, "two", {"t"}).isOk());
  EXPECT_EQ(get(*st, k), "two");
  EXPECT_EQ(get(*st, k), "two");
  // A metadata update (a 304 refresh).
  {
    EntryMeta m;
    m.headers.push_back({"X-Version", "3"});
    m.tags = {"t"};
    ASSERT_TRUE(st->updateMeta(k, m).isOk());
    auto r = st->lookup(k);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->meta->headers.size(), 1u);
    EXPECT_EQ(r->meta->headers[0].value, "3");
  }
  // A soft purge flags it (judged at lookup), and the clean-up's flag on
  // disk is seen too; a hard purge removes it.
  bool reval = false;
  ASSERT_TRUE(st->applyPurge({1, PurgeMode::kSoft, {{SelectorKind::kTag, "t"}}}).isOk());
  EXPECT_EQ(get(*st, k, &reval), "two");
  EXPECT_TRUE(reval);
  st->runMaintenanceForTesting();
  EXPECT_EQ(get(*st, k, &reval), "two");
  EXPECT_TRUE(reval);
  ASSERT_TRUE(st->applyPurge({2, PurgeMode::kHard, {{SelectorKind::kTag, "t"}}}).isOk());
  EXPECT_EQ(get(*st, k), "<miss>");
  st->runMaintenanceForTesting();
  EXPECT_EQ(get(*st, k), "<miss>");
  // Stored again, then removed by URL (an unsafe method's invalidation).
  ASSERT_TRUE(put(*st, k, "four").isOk());
  EXPECT_EQ(get(*st, k), "four");
  ASSERT_TRUE(st->removeUrl(k.url).isOk());
  EXPECT_EQ(get(*st, k), "<miss>");
  // Stored again, then its metadata damaged on disk.
  ASSERT_TRUE(put(*st, k, "five").isOk());
  EXPECT_EQ(get(*st, k), "five");
  ASSERT_TRUE(st->putRawForTesting("meta", format::metaKey(k), "garbage").isOk());
  EXPECT_NE(get(*st, k).find("Corruption"), std::string::npos);
  EXPECT_EQ(get(*st, k), "<miss>");
}

TEST_F(RocksStoreTest, AnEvictedObjectIsAMissNotAKeptHeadWithoutABody) {
  auto o = opts();
  o.budget_bytes = 2000;  // a few objects of 300 bytes
  auto st = open(o);
  std::vector<ObjectKey> keys;
  for (int i = 0; i < 30; ++i) {
    keys.push_back(key("http://a.example/e" + std::to_string(i)));
    ASSERT_TRUE(put(*st, keys.back(), std::string(300, static_cast<char>('a' + i % 26))).isOk());
    EXPECT_EQ(get(*st, keys.back()).size(), 300u);  // its metadata now kept
  }
  int misses = 0;
  for (const auto& k : keys) {
    std::string got = get(*st, k);
    if (got == "<miss>") {
      ++misses;
    } else {
      EXPECT_EQ(got.size(), 300u) << got;
    }
  }
  EXPECT_GE(misses, 20);
  EXPECT_EQ(st->stats().corrupt_objects, 0u);
}

TEST_F(RocksStoreTest, ReadersNeverSeeAnOlderVersionAfterANewer) {
  auto st = open(opts());
  const auto k = key("http://a.example/v");
  ASSERT_TRUE(put(*st, k, "v000").isOk());
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  auto reader = [&] {
    int last = 0;
    while (!done.load()) {
      std::string got = get(*st, k);
      if (got.size() != 4 || got[0] != 'v') continue;  // replaced while read
      int v = std::stoi(got.substr(1));
      EXPECT_GE(v, last) << "read v" << v << " after v" << last;
      last = v;
      reads.fetch_add(1);
    }
  };
  std::thread r1(reader), r2(reader);
  for (int v = 1; v <= 300; ++v) {
    char body[16];
    std::snprintf(body, sizeof body, "v%03d", v);
    ASSERT_TRUE(put(*st, k, body).isOk());
    EXPECT_EQ(get(*st, k), body);  // a write is seen as soon as it returns
  }
  done = true;
  r1.join();
  r2.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(get(*st, k), "v300");
}

}  // namespace
}  // namespace tern::storage

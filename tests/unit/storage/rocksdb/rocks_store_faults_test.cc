// RocksStore when the file system fails its writes (storage/rocksdb/
// fault_env.h): a failed write is reported, counted and changes nothing
// already stored or counted; purges are never undone by a failed clean-up;
// an object id is never handed out unpersisted. And which open errors mean
// "held by another process".

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/rocksdb/fault_env.h"
#include "storage/rocksdb/rocks_store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/storage/rocksdb/store_access.h"

namespace tern::storage {
namespace {

using store_access::get;
using store_access::key;
using store_access::put;

class RocksStoreFaultTest : public ::testing::Test {
 protected:
  std::unique_ptr<RocksStore> open(uint64_t budget = 1ULL << 30, uint64_t id_block = 1 << 20) {
    RocksStoreOptions o;
    o.object_id_block = id_block;
    o.path = dir_.sub("store");
    o.chunk_bytes = 100;
    o.background = false;
    o.budget_bytes = budget;
    o.env = faults_.env();
    auto s = RocksStore::open(o);
    EXPECT_TRUE(s.ok()) << s.status().toString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  testing::TempDir dir_;
  FaultEnv faults_;  // outlives the stores opened on it
};

TEST_F(RocksStoreFaultTest, AFailedWriteIsReportedAndChangesNothingStoredOrCounted) {
  auto st = open();
  ASSERT_TRUE(put(*st, key("http://h/a"), "alpha").isOk());
  const StoreStats before = st->stats();
  faults_.failWrites(true);
  // A new object, and a replacement of a stored one: both fail.
  EXPECT_FALSE(put(*st, key("http://h/b"), std::string(350, 'b')).isOk());
  EXPECT_FALSE(put(*st, key("http://h/a"), "replacement").isOk());
  EXPECT_GT(faults_.failedWrites(), 0u);
  const StoreStats during = st->stats();
  EXPECT_GE(during.write_failures, 1u);
  EXPECT_EQ(during.objects, before.objects) << "counted an object that was not written";
  EXPECT_EQ(during.bytes, before.bytes);
  // What was stored before is still served, whole.
  EXPECT_EQ(get(*st, key("http://h/a")), "alpha");
  EXPECT_EQ(get(*st, key("http://h/b")), "<miss>");
  // A removal that cannot be written leaves the object counted.
  EXPECT_FALSE(st->removeUrl(*CacheKey::fromUrl("http://h/a")).isOk());
  EXPECT_EQ(st->stats().objects, before.objects);
  EXPECT_EQ(st->stats().bytes, before.bytes);
  faults_.failWrites(false);
  // The next open (the disk is good again) has everything acknowledged.
  st.reset();
  st = open();
  EXPECT_EQ(get(*st, key("http://h/a")), "alpha");
  EXPECT_EQ(st->stats().objects, before.objects);
  EXPECT_TRUE(put(*st, key("http://h/b"), "beta").isOk());
  EXPECT_EQ(get(*st, key("http://h/b")), "beta");
}

TEST_F(RocksStoreFaultTest, NoObjectIdWithoutItsBlockOnDisk) {
  // Ids are reserved two at a time (a synced write of the reservation's end).
  auto st = open(1ULL << 30, /*id_block=*/2);
  ASSERT_TRUE(put(*st, key("http://h/x"), "x-body").isOk());
  ASSERT_TRUE(put(*st, key("http://h/y"), "y-body").isOk());
  // The next id needs the next reservation on disk; when that write fails,
  // no id (and no object) is handed out.
  faults_.failWrites(true);
  auto w = st->beginWrite(key("http://h/z"), EntryMeta{});
  ASSERT_FALSE(w.ok()) << "an object id from a reservation that is not on disk";
  EXPECT_GE(st->stats().write_failures, 1u);
  faults_.failWrites(false);
  // After a restart, new objects get ids of their own: the ones stored
  // before keep their bodies.
  st.reset();
  st = open(1ULL << 30, 2);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(put(*st, key("http://h/n" + std::to_string(i)), "n-body").isOk());
  EXPECT_EQ(get(*st, key("http://h/x")), "x-body");
  EXPECT_EQ(get(*st, key("http://h/y")), "y-body");
}

TEST_F(RocksStoreFaultTest, AFailedPurgeCleanUpNeverBringsAPurgedObjectBack) {
  auto st = open();
  ASSERT_TRUE(put(*st, key("http://h/p1"), "one", {"t"}).isOk());
  ASSERT_TRUE(put(*st, key("http://h/p2"), "two", {"t"}).isOk());
  PurgeSpec spec;
  spec.seq = 1;
  spec.selectors.push_back({SelectorKind::kTag, "t"});
  ASSERT_TRUE(st->applyPurge(spec).isOk());
  EXPECT_EQ(get(*st, key("http://h/p1")), "<miss>");
  // The clean-up cannot delete the objects: the marker must stay, or the
  // objects would be served again.
  faults_.failWrites(true);
  st->runMaintenanceForTesting();
  faults_.failWrites(false);
  EXPECT_EQ(get(*st, key("http://h/p1")), "<miss>");
  EXPECT_EQ(get(*st, key("http://h/p2")), "<miss>");
  EXPECT_GE(st->stats().purge_markers, 1u);
  // Reopened (RocksDB keeps refusing writes after a failed one until then),
  // the clean-up runs through and the objects stay purged.
  st.reset();
  st = open();
  st->runMaintenanceForTesting();
  EXPECT_EQ(get(*st, key("http://h/p1")), "<miss>");
  EXPECT_EQ(get(*st, key("http://h/p2")), "<miss>");
  EXPECT_EQ(st->stats().objects, 0u);
}

TEST(RocksStoreOpenTest, OnlyTheLockFileMeansHeldByAnotherProcess) {
  testing::TempDir dir;
  RocksStoreOptions o;
  o.path = dir.sub("store");
  o.background = false;
  auto first = RocksStore::open(o);
  ASSERT_TRUE(first.ok()) << first.status().toString();
  // A second open of a live store: refused, never moved aside.
  auto second = RocksStore::open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition) << second.status().toString();
  EXPECT_FALSE((*first)->openReport().recreated);
  // The messages RocksDB gives for its LOCK file, and a corruption that
  // mentions a block (which must be moved aside, not called "in use").
  EXPECT_TRUE(isHeldElsewhere(Status::ioError(
      "IO error: While lock file: /var/cache/tern/LOCK: Resource temporarily unavailable")));
  EXPECT_FALSE(isHeldElsewhere(
      Status::corruption("Corruption: block checksum mismatch: stored = 1, computed = 2 in "
                         "/var/cache/tern/000012.sst offset 0 size 4096")));
  EXPECT_FALSE(isHeldElsewhere(Status::ioError("IO error: while reading block: short read")));
}

}  // namespace
}  // namespace tern::storage

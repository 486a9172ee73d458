// MetaCache: bounded, entries not used since last passed over out first,
// and never keeps a value read before a write of its key.

#include "storage/rocksdb/meta_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace tern::storage {
namespace {

std::shared_ptr<const format::MetaRecord> record(uint64_t object_id) {
  auto r = std::make_shared<format::MetaRecord>();
  r->object_id = object_id;
  return r;
}

void put(MetaCache& c, const std::string& key, uint64_t id, size_t charge = 100) {
  c.insert(c.ticket(key), key, record(id), charge);
}

void write(MetaCache& c, std::string_view key) { auto w = c.writing({key}); }

TEST(MetaCacheTest, KeepsWhatWasInsertedAndDropsWhatIsWritten) {
  MetaCache c(1 << 20);
  EXPECT_EQ(c.find("a"), nullptr);
  put(c, "a", 1);
  put(c, "b", 2);
  ASSERT_NE(c.find("a"), nullptr);
  EXPECT_EQ(c.find("a")->object_id, 1u);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.bytes(), 200u);
  write(c, "a");
  EXPECT_EQ(c.find("a"), nullptr);
  EXPECT_EQ(c.find("b")->object_id, 2u);
  put(c, "b", 3);  // replaces
  EXPECT_EQ(c.find("b")->object_id, 3u);
  EXPECT_EQ(c.bytes(), 100u);
  { auto w = c.writing({}, /*every_key=*/true); }
  EXPECT_EQ(c.find("b"), nullptr);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
}

TEST(MetaCacheTest, AValueReadBeforeAWriteIsNeverKept) {
  MetaCache c(1 << 20);
  // A reader takes its ticket and reads the old value; a writer writes the
  // key; the reader's insert comes after the write and must be refused.
  auto t = c.ticket("k");
  write(c, "k");
  c.insert(t, "k", record(1), 100);
  EXPECT_EQ(c.find("k"), nullptr);
  // Nor while the write is under way, whenever the ticket was taken: what a
  // reader read may be older than what another reader already saw.
  {
    auto w = c.writing({"k"});
    c.insert(c.ticket("k"), "k", record(1), 100);
    EXPECT_EQ(c.find("k"), nullptr);
    t = c.ticket("k");
  }
  c.insert(t, "k", record(1), 100);
  EXPECT_EQ(c.find("k"), nullptr);
  // A write of every key refuses too.
  t = c.ticket("k");
  { auto w = c.writing({}, /*every_key=*/true); }
  c.insert(t, "k", record(1), 100);
  EXPECT_EQ(c.find("k"), nullptr);
  // A ticket taken after the write is good.
  put(c, "k", 2);
  EXPECT_EQ(c.find("k")->object_id, 2u);
}

TEST(MetaCacheTest, StaysWithinItsBytesDroppingWhatIsNotUsed) {
  // 16 shards of 1,000 bytes: at most 10 entries of 100 bytes per shard.
  MetaCache c(16 * 1000);
  for (int i = 0; i < 2000; ++i) {
    put(c, "k" + std::to_string(i), static_cast<uint64_t>(i));
    c.find("k0");  // kept in use: always given a second chance
  }
  EXPECT_LE(c.bytes(), 16u * 1000u);
  EXPECT_GE(c.size(), 16u);
  EXPECT_NE(c.find("k0"), nullptr);
  EXPECT_EQ(c.find("k1"), nullptr);  // long out
  EXPECT_NE(c.find("k1999"), nullptr);
  // An entry larger than a shard is not kept at all.
  put(c, "huge", 9, 5000);
  EXPECT_EQ(c.find("huge"), nullptr);
}

TEST(MetaCacheTest, OffKeepsNothing) {
  MetaCache c(0);
  EXPECT_FALSE(c.enabled());
  put(c, "a", 1);
  EXPECT_EQ(c.find("a"), nullptr);
  EXPECT_EQ(c.size(), 0u);
}

}  // namespace
}  // namespace tern::storage
